#include "policy/evaluator.h"

#include <map>

#include "common/glob.h"
#include "image/reference_glob.h"
#include "policy/label_selector.h"
#include "policy/rules/rule_support.h"

namespace imagegate::policy {
namespace {

using admission::AdmissionRequest;
using admission::Container;
using admission::PodSpec;
using image::ImageRef;

std::vector<Subject> parseImages(const PodSpec& pod, const ImageFactsMap& facts) {
  std::vector<Subject> subjects;
  subjects.reserve(pod.containers.size());
  for (const Container& container : pod.containers) {
    Subject subject{&container, std::nullopt, "", nullptr};
    try {
      subject.image = image::parseImageRef(container.image);
      const auto found = facts.find(subject.image->str());
      if (found != facts.end()) subject.lookup = &found->second;
    } catch (const image::InvalidReference& e) {
      subject.imageProblem = e.what();
    }
    subjects.push_back(std::move(subject));
  }
  return subjects;
}

/// Whether `rule` will consult the registry facts of `subject`'s image.
bool needsFacts(const Rule& rule, const PodSpec& pod, const Subject& subject) {
  if (!subject.image || rule.type->level == RuleLevel::kPod) return false;
  return rule.check->needs(Target{pod, &subject}).any();
}

/// An unparsable image cannot be shown to be outside the policy, so it stays in scope (fail
/// closed) and the image rules report it as an error.
bool imageInScope(const Match& match, const Subject& subject) {
  if (!subject.image) return true;
  const std::string reference = subject.image->str();
  return anyMatches(match.images, reference, image::imageGlobMatch) &&
         !anyMatches(match.excludeImages, reference, image::imageGlobMatch);
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
    results.push_back(makeResult(policy, rule, subject, rule.check->check(target)));
  };
  for (const Rule& rule : policy.rules) {
    if (rule.type->level == RuleLevel::kPod) {
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
        if (needsFacts(rule, pod, subject)) images.insert(subject.image->str());
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
      if (rule.type->level != RuleLevel::kImage) continue;
      const Target target{pod, &subject, policy.onFetchError};
      results.push_back(makeResult(policy, rule, &subject, rule.check->check(target)));
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
