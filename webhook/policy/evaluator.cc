#include "policy/evaluator.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <variant>

#include "common/glob.h"
#include "common/quantity.h"
#include "policy/label_selector.h"
#include "registry/image_ref.h"

namespace imagegate::policy {
namespace {

using admission::AdmissionRequest;
using admission::Container;
using admission::PodSpec;
using registry::ImageRef;

/// A container with its image parsed once for all policies and rules.
struct Subject {
  const Container* container = nullptr;
  std::optional<ImageRef> image;
  std::string imageProblem;             ///< InvalidReference message when `image` is unset.
  const ImageLookup* lookup = nullptr;  ///< Registry facts, when they were fetched.
};

/// What a rule concluded about its target, before the policy/rule/container are attached.
struct Finding {
  RuleStatus status = RuleStatus::kPass;
  std::string message;
  std::string remediation;
};

/// What a rule looks at: the pod, and the container for container-level rules.
struct Target {
  const PodSpec& pod;
  const Subject* subject = nullptr;
  OnFetchError onFetchError = OnFetchError::kDeny;
};

Finding pass() { return {}; }

Finding fail(std::string message, std::string remediation) {
  return {RuleStatus::kFail, std::move(message), std::move(remediation)};
}

template <typename Matcher>
bool anyMatches(const std::vector<std::string>& patterns, std::string_view text, Matcher matcher) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& pattern) { return matcher(pattern, text); });
}

std::string joinPatterns(const std::vector<std::string>& patterns) {
  std::string text;
  for (const std::string& pattern : patterns) text += (text.empty() ? "" : ", ") + pattern;
  return text;
}

/// A field of the pod spec as a path in the reviewed object, e.g. spec.template.spec.hostPID.
std::string podField(const PodSpec& pod, std::string_view field) {
  return (pod.path.empty() ? std::string("spec") : pod.path) + "." + std::string(field);
}

/// The image as written and, when normalization changed it, as it will be pulled.
std::string describeImage(const Subject& subject) {
  const std::string& written = subject.container->image;
  const std::string normalized = subject.image->str();
  return "\"" + written + "\"" + (normalized == written ? "" : " (" + normalized + ")");
}

// ---------------------------------------------------------------------------------------------
// Container security rules

/// A securityContext field resolved the way the kubelet does: the container's value wins.
template <typename T>
struct Effective {
  std::optional<T> value;
  bool fromPod = false;
};

template <typename T>
Effective<T> effective(const std::optional<T>& containerValue, const std::optional<T>& podValue) {
  if (containerValue) return {containerValue, false};
  return {podValue, podValue.has_value()};
}

/// A rule that needs registry facts it does not have: the policy's onFetchError decides.
Finding unresolved(const Target& target, const std::string& why) {
  if (target.onFetchError == OnFetchError::kAllow) {
    return {RuleStatus::kWarning, "not checked: " + why + " (allowed by onFetchError: Allow)", ""};
  }
  return {RuleStatus::kError, why,
          "make the image readable by imagegate (registry reachable, credentials configured), "
          "or set onFetchError: Allow on the policy"};
}

Finding withImage(const Target& target, const std::function<Finding(const ImageRef&)>& rule);

/// Runs `rule` on the image's registry facts, or applies onFetchError when there are none.
Finding withFacts(const Target& target,
                  const std::function<Finding(const registry::ImageFacts&)>& rule) {
  return withImage(target, [&](const ImageRef& image) {
    const ImageLookup* lookup = target.subject->lookup;
    if (lookup == nullptr) {
      return unresolved(target, "no registry facts were fetched for " + image.str());
    }
    if (!lookup->facts) return unresolved(target, lookup->error);
    return rule(*lookup->facts);
  });
}

bool isAllDigits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(),
                                      [](unsigned char c) { return std::isdigit(c) != 0; });
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
  return unresolved(target, "the image's USER \"" + user +
                                "\" is a name; resolving it to a UID needs the image's "
                                "/etc/passwd, which imagegate does not inspect yet");
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

Finding check(const RunAsNonRoot&, const Target& target) {
  const Container& container = *target.subject->container;
  const auto& podContext = target.pod.securityContext;
  const auto uid = effective(container.securityContext.runAsUser, podContext.runAsUser);
  if (uid.value) return *uid.value != 0 ? pass() : runsAsRoot(target.pod, uid.fromPod);
  // Without a UID the image's USER decides; the kubelet refuses to start a root image only
  // when runAsNonRoot is true, so that is what we require.
  const auto nonRoot = effective(container.securityContext.runAsNonRoot, podContext.runAsNonRoot);
  if (nonRoot.value == true) return pass();
  std::string why = "runAsUser and runAsNonRoot are not set";
  if (nonRoot.value) {
    why = (nonRoot.fromPod ? "the pod's " + podField(target.pod, "securityContext.runAsNonRoot")
                           : std::string("securityContext.runAsNonRoot")) +
          " is false and runAsUser is not set";
  }
  return withFacts(target, [&](const registry::ImageFacts& facts) {
    return judgeImageUser(facts.imageConfig.user, why, target);
  });
}

Finding check(const ReadOnlyRootFilesystem&, const Target& target) {
  const auto value = target.subject->container->securityContext.readOnlyRootFilesystem;
  if (value == true) return pass();
  return fail(std::string("root filesystem is writable: securityContext.readOnlyRootFilesystem ") +
                  (value ? "is false" : "is not set (Kubernetes defaults it to false)"),
              "set securityContext.readOnlyRootFilesystem: true and mount an emptyDir volume "
              "where the application must write");
}

Finding check(const Privileged& rule, const Target& target) {
  if (rule.allowed || target.subject->container->securityContext.privileged != true) return pass();
  return fail(
      "runs privileged: securityContext.privileged is true, which grants every capability and "
      "access to the host's devices",
      "set securityContext.privileged: false (or remove it) and add only the capabilities needed");
}

Finding check(const AllowPrivilegeEscalation& rule, const Target& target) {
  const auto& context = target.subject->container->securityContext;
  if (rule.allowed) return pass();
  if (context.privileged == true) {
    return fail("can escalate privileges: a privileged container always can",
                "set securityContext.privileged: false and "
                "securityContext.allowPrivilegeEscalation: false");
  }
  if (context.allowPrivilegeEscalation == false) return pass();
  return fail(
      std::string("can escalate privileges: securityContext.allowPrivilegeEscalation ") +
          (context.allowPrivilegeEscalation ? "is true"
                                            : "is not set (Kubernetes defaults it to true)"),
      "set securityContext.allowPrivilegeEscalation: false");
}

Finding check(const HostNamespaces& rule, const Target& target) {
  if (rule.allowed) return pass();
  std::vector<std::string> shared;
  if (target.pod.hostNetwork) shared.push_back(podField(target.pod, "hostNetwork"));
  if (target.pod.hostPID) shared.push_back(podField(target.pod, "hostPID"));
  if (target.pod.hostIPC) shared.push_back(podField(target.pod, "hostIPC"));
  if (shared.empty()) return pass();
  std::string message = "shares the host's namespaces:";
  std::string remediation = "set";
  for (std::size_t i = 0; i < shared.size(); ++i) {
    message += (i == 0 ? " " : ", ") + shared[i] + " is true";
    remediation += (i == 0 ? " " : " and ") + shared[i] + ": false";
  }
  return fail(message, remediation + " (or remove the field)");
}

// ---------------------------------------------------------------------------------------------
// Image rules

/// Runs `rule` on the parsed image, or reports that the image cannot be judged.
Finding withImage(const Target& target, const std::function<Finding(const ImageRef&)>& rule) {
  const Subject& subject = *target.subject;
  if (!subject.image) {
    return {RuleStatus::kError, subject.imageProblem,
            "set image to a valid reference such as registry.example.com/team/app:1.2.3"};
  }
  return rule(*subject.image);
}

Finding check(const AllowedRegistries& rule, const Target& target) {
  return withImage(target, [&](const ImageRef& image) {
    if (anyMatches(rule.patterns, image.str(), imageGlobMatch)) return pass();
    return fail("image " + describeImage(*target.subject) +
                    " is not from an allowed registry (allowed: " + joinPatterns(rule.patterns) +
                    ")",
                "change image to a reference matching one of: " + joinPatterns(rule.patterns));
  });
}

Finding check(const DisallowedRegistries& rule, const Target& target) {
  return withImage(target, [&](const ImageRef& image) {
    const std::string reference = image.str();
    const auto hit =
        std::find_if(rule.patterns.begin(), rule.patterns.end(),
                     [&](const std::string& p) { return imageGlobMatch(p, reference); });
    if (hit == rule.patterns.end()) return pass();
    return fail("image " + describeImage(*target.subject) +
                    " is from a disallowed registry (matches \"" + *hit + "\")",
                "change image to a reference that matches none of: " + joinPatterns(rule.patterns));
  });
}

/// Each violated requirement of an imageReference rule, as (problem, remediation).
std::vector<std::pair<std::string, std::string>> referenceProblems(const ImageReference& rule,
                                                                   const ImageRef& image) {
  std::vector<std::pair<std::string, std::string>> problems;
  // With a digest the tag is ignored when pulling, so it cannot make the image mutable.
  const bool tagDecides = image.digest.empty() && !image.tag.empty();
  if (tagDecides && anyMatches(rule.disallowTags, image.tag, globMatch)) {
    problems.emplace_back(
        "uses disallowed tag \"" + image.tag + "\"" +
            (image.tagImplied ? " (implied: the reference has no tag or digest)" : ""),
        "set image to a specific version tag or a digest, e.g. " + image.name() + ":<version>");
  }
  if (rule.requireTag && (image.tag.empty() || image.tagImplied)) {
    problems.emplace_back("does not spell out a tag",
                          "add an explicit tag to image, e.g. " + image.name() + ":<version>");
  }
  if (rule.requireDigest && image.digest.empty()) {
    problems.emplace_back("is not pinned by a digest",
                          "pin image by digest, e.g. " + image.name() + "@sha256:<digest>");
  }
  return problems;
}

Finding check(const ImageReference& rule, const Target& target) {
  return withImage(target, [&](const ImageRef& image) {
    const auto problems = referenceProblems(rule, image);
    if (problems.empty()) return pass();
    std::string message = "image " + describeImage(*target.subject);
    std::string remediation;
    for (std::size_t i = 0; i < problems.size(); ++i) {
      message += (i == 0 ? " " : " and ") + problems[i].first;
      remediation += (i == 0 ? "" : "; ") + problems[i].second;
    }
    return fail(message, remediation);
  });
}

std::string humanBytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(units)) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return text;
}

Finding check(const MaxImageSize& rule, const Target& target) {
  return withFacts(target, [&](const registry::ImageFacts& facts) {
    const std::uint64_t size = facts.compressedSize();
    if (size <= rule.compressedBytes) return pass();
    return fail("image " + describeImage(*target.subject) + " is " + humanBytes(size) +
                    " compressed (" + std::to_string(facts.layers.size()) +
                    " layers), over the limit of " + rule.compressedText,
                "shrink the image: build a multi-stage image whose final stage holds only what "
                "runs (e.g. a distroless or scratch base), or raise maxImageSize");
  });
}

// ---------------------------------------------------------------------------------------------
// Scoping and assembly

bool isPodLevel(const RuleSpec& spec) { return std::holds_alternative<HostNamespaces>(spec); }

/// Rules that look only at the image, so `imagegate check` can run them without a pod.
bool isImageLevel(const RuleSpec& spec) {
  return std::holds_alternative<AllowedRegistries>(spec) ||
         std::holds_alternative<DisallowedRegistries>(spec) ||
         std::holds_alternative<ImageReference>(spec) ||
         std::holds_alternative<MaxImageSize>(spec) || std::holds_alternative<RunAsNonRoot>(spec);
}

std::vector<Subject> parseImages(const PodSpec& pod, const ImageFactsMap& facts) {
  std::vector<Subject> subjects;
  subjects.reserve(pod.containers.size());
  for (const Container& container : pod.containers) {
    Subject subject{&container, std::nullopt, "", nullptr};
    try {
      subject.image = registry::parseImageRef(container.image);
      const auto found = facts.find(subject.image->str());
      if (found != facts.end()) subject.lookup = &found->second;
    } catch (const registry::InvalidReference& e) {
      subject.imageProblem = e.what();
    }
    subjects.push_back(std::move(subject));
  }
  return subjects;
}

/// Whether `rule` will consult the registry facts of `subject`'s image.
bool needsFacts(const RuleSpec& spec, const PodSpec& pod, const Subject& subject) {
  if (!subject.image) return false;
  if (std::holds_alternative<MaxImageSize>(spec)) return true;
  if (!std::holds_alternative<RunAsNonRoot>(spec)) return false;
  const auto& context = subject.container->securityContext;
  if (effective(context.runAsUser, pod.securityContext.runAsUser).value) return false;
  return effective(context.runAsNonRoot, pod.securityContext.runAsNonRoot).value != true;
}

/// An unparsable image cannot be shown to be outside the policy, so it stays in scope (fail
/// closed) and the image rules report it as an error.
bool imageInScope(const Match& match, const Subject& subject) {
  if (!subject.image) return true;
  const std::string reference = subject.image->str();
  return anyMatches(match.images, reference, imageGlobMatch) &&
         !anyMatches(match.excludeImages, reference, imageGlobMatch);
}

RuleResult makeResult(const Policy& policy, const Rule& rule, const Subject* subject,
                      Finding finding) {
  RuleResult result;
  result.policy = policy.name;
  result.rule = rule.name;
  result.action = policy.action;
  result.status = finding.status;
  if (subject != nullptr) {
    result.container = subject->container->name;
    result.containerKind = subject->container->kind;
  }
  result.message = std::move(finding.message);
  result.remediation = std::move(finding.remediation);
  return result;
}

void evaluatePolicy(const Policy& policy, const PodSpec& pod, const std::vector<Subject>& subjects,
                    std::vector<RuleResult>& results) {
  std::vector<const Subject*> inScope;
  for (const Subject& subject : subjects) {
    if (imageInScope(policy.match, subject)) inScope.push_back(&subject);
  }
  // A pod none of whose images the policy selects is not governed by it, pod-level rules included.
  if (inScope.empty()) return;
  const auto run = [&](const Rule& rule, const Subject* subject) {
    const Target target{pod, subject, policy.onFetchError};
    Finding finding = std::visit([&](const auto& spec) { return check(spec, target); }, rule.spec);
    results.push_back(makeResult(policy, rule, subject, std::move(finding)));
  };
  for (const Rule& rule : policy.rules) {
    if (isPodLevel(rule.spec)) {
      run(rule, nullptr);
      continue;
    }
    for (const Subject* subject : inScope) run(rule, subject);
  }
}

}  // namespace

bool policyMatchesObject(const Policy& policy, const AdmissionRequest& request) {
  static const std::map<std::string, std::string> kNoLabels;
  const auto& object = request.object;
  const std::string& namespaceName =
      request.namespaceName.empty() && object ? object->namespaceName : request.namespaceName;
  if (!anyMatches(policy.match.namespaces, namespaceName, globMatch) ||
      anyMatches(policy.match.excludeNamespaces, namespaceName, globMatch)) {
    return false;
  }
  return selectorMatches(policy.match.objectSelector, object ? object->labels : kNoLabels);
}

std::set<std::string> imagesNeedingFacts(const PolicySet& policies,
                                         const AdmissionRequest& request) {
  std::set<std::string> images;
  if (!request.object || !request.object->podSpec) return images;
  const PodSpec& pod = *request.object->podSpec;
  const std::vector<Subject> subjects = parseImages(pod, {});
  for (const Policy& policy : policies.policies) {
    if (!policyMatchesObject(policy, request)) continue;
    for (const Subject& subject : subjects) {
      if (!imageInScope(policy.match, subject)) continue;
      for (const Rule& rule : policy.rules) {
        if (needsFacts(rule.spec, pod, subject)) images.insert(subject.image->str());
      }
    }
  }
  return images;
}

std::vector<RuleResult> evaluateImage(const PolicySet& policies, const ImageRef& image,
                                      const ImageLookup& lookup) {
  // A bare container with no securityContext: the image alone decides every image-level rule.
  admission::Container container;
  container.name = image.str();
  container.image = image.str();
  const PodSpec pod;
  const Subject subject{&container, image, "", &lookup};
  std::vector<RuleResult> results;
  for (const Policy& policy : policies.policies) {
    if (!imageInScope(policy.match, subject)) continue;
    for (const Rule& rule : policy.rules) {
      if (!isImageLevel(rule.spec)) continue;
      const Target target{pod, &subject, policy.onFetchError};
      Finding finding =
          std::visit([&](const auto& spec) { return check(spec, target); }, rule.spec);
      results.push_back(makeResult(policy, rule, &subject, std::move(finding)));
    }
  }
  return results;
}

std::vector<RuleResult> evaluate(const PolicySet& policies, const AdmissionRequest& request,
                                 const ImageFactsMap& facts) {
  std::vector<RuleResult> results;
  if (!request.object || !request.object->podSpec) return results;
  const PodSpec& pod = *request.object->podSpec;
  const std::vector<Subject> subjects = parseImages(pod, facts);
  for (const Policy& policy : policies.policies) {
    if (policyMatchesObject(policy, request)) evaluatePolicy(policy, pod, subjects, results);
  }
  return results;
}

}  // namespace imagegate::policy
