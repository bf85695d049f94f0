// The podSecurity rule: the Kubernetes Pod Security Standards, level and version as a namespace's
// pod-security.kubernetes.io/* labels name them, checked the way Pod Security Admission checks
// them (pod_security_checks.cc), so one webhook gives PSA's verdict and imagegate's image rules
// with one audit trail.

#include <charconv>

#include "policy/rules/pod_security_checks.h"
#include "policy/rules/rule_support.h"

namespace imagegate::policy {
namespace {

std::string_view levelName(pss::Level level) {
  return level == pss::Level::kBaseline ? "baseline" : "restricted";
}

std::string supportedVersions() {
  return "latest or v1.0 to v1." + std::to_string(pss::kNewestMinor);
}

/// "latest" or "v1.<minor>" with 0 <= minor <= kNewestMinor; nullopt otherwise.
std::optional<int> parseVersion(const std::string& text) {
  if (text == "latest") return pss::kNewestMinor;
  constexpr std::string_view kPrefix = "v1.";
  if (text.rfind(kPrefix, 0) != 0 || text.size() == kPrefix.size()) return std::nullopt;
  const char* begin = text.data() + kPrefix.size();
  const char* end = text.data() + text.size();
  // Digits only (no sign), and Kubernetes writes v1.25, never v1.025.
  if (*begin < '0' || *begin > '9' || (*begin == '0' && end - begin > 1)) return std::nullopt;
  int minor = 0;
  const auto [ptr, ec] = std::from_chars(begin, end, minor);
  if (ec != std::errc() || ptr != end || minor > pss::kNewestMinor) return std::nullopt;
  return minor;
}

class PodSecurity final : public RuleCheck {
 public:
  PodSecurity(pss::Level level, int minor, std::string version,
              std::set<std::string, std::less<>> exclude)
      : level_(level), minor_(minor), version_(std::move(version)), exclude_(std::move(exclude)) {}

  Finding check(const Target& target) const override {
    const auto violations = pss::evaluate(level_, minor_, target.pod, exclude_);
    if (violations.empty()) return pass();
    // PSA's "violates PodSecurity "restricted:latest": reason (detail), ...", with each
    // check's id in front so that it can be looked up and excluded.
    std::string message =
        "violates PodSecurity \"" + std::string(levelName(level_)) + ":" + version_ + "\": ";
    for (std::size_t i = 0; i < violations.size(); ++i) {
      const auto& [id, forbidden] = violations[i];
      message += (i == 0 ? "" : "; ") + std::string(id) + ": " + forbidden.reason;
      if (!forbidden.detail.empty()) message += " (" + forbidden.detail + ")";
    }
    return fail(message, "set the fields named above to values the Pod Security Standards \"" +
                             std::string(levelName(level_)) +
                             "\" level allows (https://kubernetes.io/docs/concepts/security/"
                             "pod-security-standards/), or exclude the check by its id");
  }

  static std::shared_ptr<const RuleCheck> read(const Fields& rule, std::string_view key) {
    const Fields body = rule.sub(key, Fields::Keys{"level", "version", "exclude"});
    const pss::Level level = readLevel(body);
    std::string version = "latest";
    int minor = pss::kNewestMinor;
    if (auto text = body.string("version")) {
      version = text->text;
      if (auto parsed = parseVersion(text->text)) {
        minor = *parsed;
      } else {
        body.report(text->mark, body.pathOf("version") + " must be " + supportedVersions() +
                                    " (the Pod Security Standards versions imagegate knows), " +
                                    "got \"" + text->text + "\"");
      }
    }
    return std::make_shared<const PodSecurity>(level, minor, version, readExclude(body));
  }

 private:
  /// Required; a problem is reported and baseline returned so the rest of the body is read.
  static pss::Level readLevel(const Fields& body) {
    if (!body.value("level")) {
      (void)body.required("level");
      return pss::Level::kBaseline;
    }
    const auto text = body.string("level");
    if (!text || text->text == "baseline") return pss::Level::kBaseline;
    if (text->text == "restricted") return pss::Level::kRestricted;
    std::string problem =
        body.pathOf("level") + " must be baseline or restricted, got \"" + text->text + "\"";
    // PSA's third level allows everything: there is nothing for a rule to check.
    if (text->text == "privileged") {
      problem += " (privileged allows everything: remove the rule instead)";
    }
    body.report(text->mark, problem);
    return pss::Level::kBaseline;
  }

  static std::set<std::string, std::less<>> readExclude(const Fields& body) {
    std::set<std::string, std::less<>> exclude;
    const auto ids = pss::checkIds();
    const auto entries = body.strings("exclude");
    if (!entries) return exclude;
    for (std::size_t i = 0; i < entries->size(); ++i) {
      const Scalar& entry = (*entries)[i];
      if (std::find(ids.begin(), ids.end(), entry.text) == ids.end()) {
        body.report(entry.mark, indexed(body.pathOf("exclude"), i) + ": unknown check \"" +
                                    entry.text + "\" (known checks: " + joinWords(ids) + ")");
        continue;
      }
      exclude.insert(entry.text);
    }
    return exclude;
  }

  pss::Level level_;
  int minor_;
  std::string version_;  ///< As written, for messages: "latest" or "v1.25".
  std::set<std::string, std::less<>> exclude_;
};

}  // namespace

std::vector<RuleType> podSecurityRuleTypes() {
  return {
      {"podSecurity", RuleLevel::kPod,
       "the pod meets a Kubernetes Pod Security Standards level (baseline or restricted) at a "
       "given version, as Pod Security Admission checks it",
       PodSecurity::read},
  };
}

}  // namespace imagegate::policy
