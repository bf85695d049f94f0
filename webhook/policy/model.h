#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

// The in-memory form of the ImagePolicy YAML (apiVersion imagegate.dev/v1alpha1). The format is
// documented in policies/README.md; this header mirrors it one to one.
namespace imagegate::policy {

enum class Action {
  kEnforce,  ///< Deny on violation.
  kAudit,    ///< Dry run: allow, report as warnings, auditAnnotations, logs and metrics.
  kWarn,     ///< Allow, report as warnings only.
};

struct LabelSelectorRequirement {
  enum class Operator { kIn, kNotIn, kExists, kDoesNotExist };
  std::string key;
  Operator op = Operator::kIn;
  std::vector<std::string> values;
};

/// A Kubernetes metav1.LabelSelector. An empty selector matches every object.
struct LabelSelector {
  std::map<std::string, std::string> matchLabels;
  std::vector<LabelSelectorRequirement> matchExpressions;
};

struct Match {
  std::vector<std::string> namespaces{"*"};  ///< Globs.
  std::vector<std::string> excludeNamespaces;
  LabelSelector objectSelector;
  std::vector<std::string> images{"*"};  ///< Image globs on the normalized reference.
  std::vector<std::string> excludeImages;
};

// One struct per rule type. The YAML key of each is given in the comment.
struct RunAsNonRoot {};            ///< runAsNonRoot: {}
struct ReadOnlyRootFilesystem {};  ///< readOnlyRootFilesystem: {}
struct Privileged {                ///< privileged: {allowed: false}
  bool allowed = false;
};
struct AllowPrivilegeEscalation {  ///< allowPrivilegeEscalation: {allowed: false}
  bool allowed = false;
};
struct AllowedRegistries {  ///< allowedRegistries: ["registry.example.com/*"]
  std::vector<std::string> patterns;
};
struct DisallowedRegistries {  ///< disallowedRegistries: ["k8s.gcr.io/*"]
  std::vector<std::string> patterns;
};
struct ImageReference {  ///< imageReference: {disallowTags: [latest], requireDigest: false,
                         ///< requireTag: false}
  std::vector<std::string> disallowTags;  ///< Globs on the tag; an implied tag counts as "latest".
  bool requireDigest = false;
  bool requireTag = false;  ///< The reference must spell out a tag.
};
struct HostNamespaces {  ///< hostNamespaces: {allowed: false}
  bool allowed = false;
};

struct MaxImageSize {                 ///< maxImageSize: {compressed: 200Mi}
  std::uint64_t compressedBytes = 0;  ///< Limit on the sum of the manifest's layer sizes.
  std::string compressedText;         ///< As written, for messages.
};

using RuleSpec = std::variant<RunAsNonRoot, ReadOnlyRootFilesystem, Privileged,
                              AllowPrivilegeEscalation, AllowedRegistries, DisallowedRegistries,
                              ImageReference, HostNamespaces, MaxImageSize>;

struct Rule {
  std::string name;
  RuleSpec spec;
};

/// What happens when a rule needs image facts (config, sizes) that cannot be fetched.
enum class OnFetchError {
  kDeny,   ///< The rule fails with the registry error (a denial under Enforce).
  kAllow,  ///< The rule passes with a warning naming the registry error.
};

struct Policy {
  std::string name;
  std::string sourceFile;  ///< Where it was loaded from, for messages.
  Action action = Action::kEnforce;
  OnFetchError onFetchError = OnFetchError::kDeny;
  Match match;
  std::vector<Rule> rules;
};

struct PolicySet {
  std::vector<Policy> policies;
};

}  // namespace imagegate::policy
