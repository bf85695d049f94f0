#include "policy/rules/rule_support.h"

namespace imagegate::policy {

Finding unresolved(const Target& target, const std::string& why) {
  if (target.onFetchError == OnFetchError::kAllow) {
    return {
        RuleStatus::kWarning, "not checked: " + why + " (allowed by onFetchError: Allow)", "", {}};
  }
  return {RuleStatus::kError,
          why,
          "make the image readable by imagegate (registry reachable, credentials configured), "
          "or set onFetchError: Allow on the policy",
          {}};
}

Finding withImage(const Target& target,
                  const std::function<Finding(const image::ImageRef&)>& rule) {
  const Subject& subject = *target.subject;
  if (!subject.image) {
    return {RuleStatus::kError,
            *subject.imageProblem,
            "set image to a valid reference such as registry.example.com/team/app:1.2.3",
            {}};
  }
  return rule(*subject.image);
}

Finding withFacts(const Target& target,
                  const std::function<Finding(const image::ImageFacts&)>& rule) {
  return withImage(target, [&](const image::ImageRef& image) {
    const ImageLookup* lookup = target.subject->lookup;
    if (lookup == nullptr) {
      return unresolved(target, "no registry facts were fetched for " + image.str());
    }
    if (!lookup->facts) return unresolved(target, lookup->error);
    return rule(*lookup->facts);
  });
}

std::string podField(const admission::PodSpec& pod, std::string_view field) {
  return (pod.path.empty() ? std::string("spec") : pod.path) + "." + std::string(field);
}

std::string describeImage(const Subject& subject) {
  const std::string& written = subject.container->image;
  const std::string normalized = subject.image->str();
  return "\"" + written + "\"" + (normalized == written ? "" : " (" + normalized + ")");
}

std::string joinPatterns(const std::vector<std::string>& patterns) {
  std::string text;
  for (const std::string& pattern : patterns) text += (text.empty() ? "" : ", ") + pattern;
  return text;
}

bool readAllowed(const Fields& rule, std::string_view key) {
  return rule.sub(key, Fields::Keys{"allowed"}).boolean("allowed").value_or(false);
}

}  // namespace imagegate::policy
