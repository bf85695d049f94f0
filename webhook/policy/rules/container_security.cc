// Rules on a container's securityContext: who it runs as and what it may do to the host.

#include <cctype>
#include <cstdint>
#include <optional>
#include <string_view>

#include "policy/rules/rule_support.h"

namespace imagegate::policy {
namespace {

using admission::Container;
using admission::PodSpec;

bool isAllDigits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(),
                                      [](unsigned char c) { return std::isdigit(c) != 0; });
}

/// The UID of `name` in the text of an /etc/passwd, or nullopt when it is not there.
std::optional<std::uint64_t> uidOf(std::string_view passwd, std::string_view name) {
  while (!passwd.empty()) {
    const std::size_t end = passwd.find('\n');
    const std::string_view line = passwd.substr(0, end);
    passwd = end == std::string_view::npos ? std::string_view() : passwd.substr(end + 1);
    // name:password:uid:gid:...
    const std::size_t first = line.find(':');
    if (first == std::string_view::npos || line.substr(0, first) != name) continue;
    const std::size_t second = line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    const std::size_t third = line.find(':', second + 1);
    const std::string_view uid = line.substr(
        second + 1, third == std::string_view::npos ? std::string_view::npos : third - second - 1);
    if (!isAllDigits(uid) || uid.size() > 10) return std::nullopt;
    return std::stoull(std::string(uid));
  }
  return std::nullopt;
}

/// The image config's USER ("", "root", "0", "0:0", "1000:1000", "app") when the pod leaves the
/// user to the image. `why` says how the pod left it open.
Finding judgeImageUser(const std::string& user, const std::string& why, const Target& target) {
  const std::string name = user.substr(0, user.find(':'));
  const std::string remediation =
      "set USER to a non-zero UID in the image's final stage (e.g. USER 65532:65532), or set "
      "securityContext.runAsUser to a non-zero UID and runAsNonRoot: true";
  if (name.empty() || name == "root") {
    return fail("runs as root: " + why + " and the image's USER is " +
                    (user.empty() ? std::string("not set (root)") : "\"" + user + "\""),
                remediation);
  }
  if (isAllDigits(name)) {
    if (name.find_first_not_of('0') == std::string::npos) {
      return fail("runs as root: " + why + " and the image's USER is \"" + user + "\"",
                  remediation);
    }
    return pass();
  }
  const ImageLookup& lookup = *target.subject->lookup;
  if (!lookup.files) {
    return unresolved(
        target, "the image's USER \"" + user +
                    "\" is a name; resolving it to a UID needs the image's "
                    "/etc/passwd: " +
                    (lookup.filesError.empty() ? "its layers were not read" : lookup.filesError));
  }
  const auto passwd = lookup.files->passwd();
  const std::optional<std::uint64_t> uid = passwd ? uidOf(*passwd, name) : std::nullopt;
  if (!uid) {
    return fail("the image's USER \"" + user + "\" is not a user of the image's /etc/passwd" +
                    (passwd ? "" : " (the image has none)") + ": the container cannot start",
                "set USER to a numeric UID in the image's final stage (e.g. USER 65532:65532), or "
                "add the user to /etc/passwd there");
  }
  if (*uid == 0) {
    return fail("runs as root: " + why + " and the image's USER \"" + user +
                    "\" is UID 0 in the image's /etc/passwd",
                remediation);
  }
  return pass();
}

Finding runsAsRoot(const PodSpec& pod, bool fromPod) {
  if (!fromPod) {
    return fail("runs as root: securityContext.runAsUser is 0",
                "set securityContext.runAsUser to a non-zero UID");
  }
  const std::string field = podField(pod, "securityContext.runAsUser");
  return fail(
      "runs as root: the pod's " + field + " is 0 and the container does not override it",
      "set securityContext.runAsUser to a non-zero UID in the container, or change " + field);
}

/// What the kubelet does with runAsNonRoot: true and no runAsUser (verifyRunAsNonRoot in
/// pkg/kubelet/kuberuntime): it refuses to start a container whose image USER is root, unset, or
/// a name it cannot map to a UID without reading the image. Said at admission, with the kubelet's
/// own words, instead of as CreateContainerConfigError once the pod is scheduled.
Finding predictKubelet(const std::string& user) {
  const std::string name = user.substr(0, user.find(':'));
  const std::string remediation =
      "set USER to a numeric non-zero UID in the image's final stage (e.g. USER 65532:65532), "
      "or set securityContext.runAsUser";
  if (name.empty() || name == "root" ||
      (isAllDigits(name) && name.find_first_not_of('0') == std::string::npos)) {
    return fail("the kubelet will refuse to start it: runAsNonRoot is true and the image's USER " +
                    (user.empty() ? std::string("is not set (root)") : "is \"" + user + "\"") +
                    " (\"container has runAsNonRoot and image will run as root\")",
                remediation);
  }
  if (!isAllDigits(name)) {
    return fail(
        "the kubelet will refuse to start it: runAsNonRoot is true and the image's USER \"" + user +
            "\" is a name (\"image has non-numeric user (" + name +
            "), cannot verify user is non-root\")",
        remediation);
  }
  return pass();
}

/// True when the pod asks for runAsNonRoot and leaves the UID to the image: the kubelet then
/// checks the image's USER itself.
bool kubeletChecksImageUser(const Target& target) {
  const auto& context = target.subject->container->securityContext;
  const auto& podContext = target.pod.securityContext;
  return !effective(context.runAsUser, podContext.runAsUser).value &&
         effective(context.runAsNonRoot, podContext.runAsNonRoot).value == true;
}

/// Why the image's USER decides, or nullopt when the pod's securityContext settles it.
std::optional<std::string> userLeftToImage(const Target& target) {
  const auto& context = target.subject->container->securityContext;
  const auto& podContext = target.pod.securityContext;
  if (effective(context.runAsUser, podContext.runAsUser).value) return std::nullopt;
  // Without a UID the image's USER decides. With runAsNonRoot: true the kubelet guards it
  // (predictKubelet); otherwise nothing does, so the image's USER is judged here.
  const auto nonRoot = effective(context.runAsNonRoot, podContext.runAsNonRoot);
  if (nonRoot.value == true) return std::nullopt;
  if (!nonRoot.value) return "runAsUser and runAsNonRoot are not set";
  return (nonRoot.fromPod ? "the pod's " + podField(target.pod, "securityContext.runAsNonRoot")
                          : std::string("securityContext.runAsNonRoot")) +
         " is false and runAsUser is not set";
}

class RunAsNonRoot final : public RuleCheck {
 public:
  FactNeeds needs(const Target& target) const override {
    FactNeeds needs;
    needs.filesIfNamedUser = userLeftToImage(target).has_value();
    needs.config = needs.filesIfNamedUser || kubeletChecksImageUser(target);
    return needs;
  }

  Finding check(const Target& target) const override {
    const Container& container = *target.subject->container;
    const auto uid =
        effective(container.securityContext.runAsUser, target.pod.securityContext.runAsUser);
    if (uid.value) return *uid.value != 0 ? pass() : runsAsRoot(target.pod, uid.fromPod);
    if (kubeletChecksImageUser(target)) {
      return withFacts(target, [](const image::ImageFacts& facts) {
        return predictKubelet(facts.imageConfig.user);
      });
    }
    const auto why = userLeftToImage(target);
    if (!why) return pass();
    return withFacts(target, [&](const image::ImageFacts& facts) {
      return judgeImageUser(facts.imageConfig.user, *why, target);
    });
  }
};

class ReadOnlyRootFilesystem final : public RuleCheck {
 public:
  Finding check(const Target& target) const override {
    const auto value = target.subject->container->securityContext.readOnlyRootFilesystem;
    if (value == true) return pass();
    return fail(
        std::string("root filesystem is writable: securityContext.readOnlyRootFilesystem ") +
            (value ? "is false" : "is not set (Kubernetes defaults it to false)"),
        "set securityContext.readOnlyRootFilesystem: true and mount an emptyDir volume "
        "where the application must write");
  }
};

class Privileged final : public RuleCheck {
 public:
  explicit Privileged(bool allowed) : allowed_(allowed) {}

  Finding check(const Target& target) const override {
    if (allowed_ || target.subject->container->securityContext.privileged != true) return pass();
    return fail(
        "runs privileged: securityContext.privileged is true, which grants every capability and "
        "access to the host's devices",
        "set securityContext.privileged: false (or remove it) and add only the capabilities "
        "needed");
  }

 private:
  bool allowed_;
};

/// The first capability in `added` that always allows escalation, as written: CAP_SYS_ADMIN
/// (spelled as runtimes accept it: any case, CAP_ prefix optional) or ALL.
std::optional<std::string> escalatingCapability(const std::vector<std::string>& added) {
  for (const std::string& written : added) {
    std::string name = written;
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (name.rfind("CAP_", 0) == 0) name.erase(0, 4);
    if (name == "SYS_ADMIN" || name == "ALL") return written;
  }
  return std::nullopt;
}

class AllowPrivilegeEscalation final : public RuleCheck {
 public:
  explicit AllowPrivilegeEscalation(bool allowed) : allowed_(allowed) {}

  Finding check(const Target& target) const override {
    if (allowed_) return pass();
    const auto& context = target.subject->container->securityContext;
    if (auto finding = alwaysEscalates(context)) return *finding;
    if (context.allowPrivilegeEscalation == false) return pass();
    return fail(
        std::string("can escalate privileges: securityContext.allowPrivilegeEscalation ") +
            (context.allowPrivilegeEscalation ? "is true"
                                              : "is not set (Kubernetes defaults it to true)"),
        "set securityContext.allowPrivilegeEscalation: false");
  }

 private:
  /// The Kubernetes API reference: escalation is always possible when the container is
  /// privileged or has CAP_SYS_ADMIN, whatever allowPrivilegeEscalation says.
  static std::optional<Finding> alwaysEscalates(
      const admission::ContainerSecurityContext& context) {
    if (context.privileged == true) {
      return fail("can escalate privileges: a privileged container always can",
                  "set securityContext.privileged: false and "
                  "securityContext.allowPrivilegeEscalation: false");
    }
    if (const auto capability = escalatingCapability(context.capabilities.add)) {
      return fail("can escalate privileges: capability " + *capability +
                      " is added, which always allows it",
                  "remove " + *capability +
                      " from securityContext.capabilities.add and set "
                      "securityContext.allowPrivilegeEscalation: false");
    }
    return std::nullopt;
  }

  bool allowed_;
};

}  // namespace

std::vector<RuleType> containerSecurityRuleTypes() {
  return {
      {"runAsNonRoot", RuleLevel::kImage,
       "the container's UID, or else the image's USER, is not root", readEmptyBody<RunAsNonRoot>},
      {"readOnlyRootFilesystem", RuleLevel::kContainer,
       "securityContext.readOnlyRootFilesystem is true", readEmptyBody<ReadOnlyRootFilesystem>},
      {"privileged", RuleLevel::kContainer, "no privileged container (unless allowed: true)",
       readAllowedBody<Privileged>},
      {"allowPrivilegeEscalation", RuleLevel::kContainer,
       "no container that can escalate privileges (unless allowed: true)",
       readAllowedBody<AllowPrivilegeEscalation>},
  };
}

}  // namespace imagegate::policy
