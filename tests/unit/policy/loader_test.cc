#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <string>
#include <thread>

#include "policy/loader.h"

namespace imagegate::policy {

// Failure output shows "file:line:column: message" instead of bytes.
void PrintTo(const LoadProblem& problem, std::ostream* os) { *os << problem.str(); }

namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// Lines 1-5; a test's spec body starts on line 6.
constexpr std::string_view kHeader =
    "apiVersion: imagegate.dev/v1alpha1\n"
    "kind: ImagePolicy\n"
    "metadata:\n"
    "  name: p\n"
    "spec:\n";

std::string policyWith(std::string_view spec) { return std::string(kHeader) + std::string(spec); }

std::vector<std::string_view> ruleKeysOf(const Policy& policy) {
  std::vector<std::string_view> keys;
  for (const Rule& rule : policy.rules) keys.push_back(rule.type->key);
  return keys;
}

std::vector<LoadProblem> problemsOf(std::string_view yaml) {
  try {
    loadPoliciesFromString(yaml, "test.yaml");
  } catch (const PolicyLoadError& e) {
    return e.problems();
  }
  ADD_FAILURE() << "expected a PolicyLoadError for:\n" << yaml;
  return {};
}

auto problemAt(int line, int column, const std::string& text) {
  return AllOf(Field(&LoadProblem::file, "test.yaml"), Field(&LoadProblem::line, line),
               Field(&LoadProblem::column, column), Field(&LoadProblem::message, HasSubstr(text)));
}

/// A scratch directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "imagegate-loader-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  void write(const std::string& name, std::string_view text) const {
    std::ofstream(path_ / name) << text;
  }

 private:
  fs::path path_;
};

// -------------------------------------------------------------------------------------------
// Valid policies

TEST(PolicyLoader, ReadsEveryFieldOfTheDocumentedExample) {
  const PolicySet set = loadPoliciesFromString(R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: production-images
spec:
  action: Audit
  match:
    namespaces: ["prod-*", "default"]
    excludeNamespaces: ["kube-system"]
    objectSelector:
      matchLabels: {tier: web}
      matchExpressions:
        - {key: env, operator: In, values: [prod, staging]}
        - {key: legacy, operator: DoesNotExist}
    images: ["*"]
    excludeImages: ["registry.example.com/base/*"]
  rules:
    - name: non-root
      runAsNonRoot: {}
    - name: ro-rootfs
      readOnlyRootFilesystem: {}
    - name: no-privileged
      privileged: {allowed: false}
    - name: no-escalation
      allowPrivilegeEscalation: {allowed: true}
    - name: registries
      allowedRegistries: ["registry.example.com/*", "ghcr.io/acme/*"]
    - name: no-gcr
      disallowedRegistries: ["k8s.gcr.io"]
    - name: tags
      imageReference: {disallowTags: ["latest", "dev-*"], requireDigest: true, requireTag: true}
    - name: host-namespaces
      hostNamespaces: {allowed: false}
)",
                                               "example.yaml");
  ASSERT_EQ(set.policies.size(), 1u);
  const Policy& p = set.policies[0];
  EXPECT_EQ(p.name, "production-images");
  EXPECT_EQ(p.sourceFile, "example.yaml");
  EXPECT_EQ(p.action, Action::kAudit);
  EXPECT_THAT(p.match.namespaces, ElementsAre("prod-*", "default"));
  EXPECT_THAT(p.match.excludeNamespaces, ElementsAre("kube-system"));
  EXPECT_EQ(p.match.objectSelector.matchLabels.at("tier"), "web");
  ASSERT_EQ(p.match.objectSelector.matchExpressions.size(), 2u);
  EXPECT_EQ(p.match.objectSelector.matchExpressions[0].key, "env");
  EXPECT_EQ(p.match.objectSelector.matchExpressions[0].op, LabelSelectorRequirement::Operator::kIn);
  EXPECT_THAT(p.match.objectSelector.matchExpressions[0].values, ElementsAre("prod", "staging"));
  EXPECT_EQ(p.match.objectSelector.matchExpressions[1].op,
            LabelSelectorRequirement::Operator::kDoesNotExist);
  EXPECT_THAT(p.match.excludeImages, ElementsAre("registry.example.com/base/*"));

  ASSERT_EQ(p.rules.size(), 8u);
  EXPECT_EQ(p.rules[0].name, "non-root");
  // What each body says is the rule's own business: tests/data/rules/<key>/ shows it.
  EXPECT_THAT(ruleKeysOf(p),
              ElementsAre("runAsNonRoot", "readOnlyRootFilesystem", "privileged",
                          "allowPrivilegeEscalation", "allowedRegistries", "disallowedRegistries",
                          "imageReference", "hostNamespaces"));
}

TEST(PolicyLoader, AppliesDefaults) {
  const PolicySet set = loadPoliciesFromString(policyWith(R"(  rules:
    - name: r
      runAsNonRoot:
    - name: p
      privileged: {}
    - name: t
      imageReference: {}
)"),
                                               "d.yaml");
  ASSERT_EQ(set.policies.size(), 1u);
  const Policy& p = set.policies[0];
  EXPECT_EQ(p.action, Action::kEnforce);
  EXPECT_THAT(p.match.namespaces, ElementsAre("*"));
  EXPECT_THAT(p.match.images, ElementsAre("*"));
  EXPECT_THAT(p.match.excludeNamespaces, IsEmpty());
  EXPECT_THAT(p.match.excludeImages, IsEmpty());
  EXPECT_TRUE(p.match.objectSelector.matchLabels.empty());
  EXPECT_TRUE(p.match.objectSelector.matchExpressions.empty());
  EXPECT_THAT(ruleKeysOf(p), ElementsAre("runAsNonRoot", "privileged", "imageReference"));
}

TEST(PolicyLoader, ReadsEveryAction) {
  for (const auto& [text, action] :
       {std::pair{"Enforce", Action::kEnforce}, std::pair{"Audit", Action::kAudit},
        std::pair{"Warn", Action::kWarn}}) {
    const PolicySet set = loadPoliciesFromString(
        policyWith(std::string("  action: ") + text + "\n  rules: [{name: r, runAsNonRoot: {}}]\n"),
        "a.yaml");
    EXPECT_EQ(set.policies.at(0).action, action) << text;
  }
}

TEST(PolicyLoader, SeveralDocumentsWithEmptyOnesSkipped) {
  const PolicySet set = loadPoliciesFromString(R"(---
# nothing here
---
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: first}
spec: {rules: [{name: r, runAsNonRoot: {}}]}
---
---
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: second}
spec: {rules: [{name: r, privileged: {allowed: false}}]}
...
)",
                                               "multi.yaml");
  ASSERT_EQ(set.policies.size(), 2u);
  EXPECT_EQ(set.policies[0].name, "first");
  EXPECT_EQ(set.policies[1].name, "second");
}

TEST(PolicyLoader, EmptyTextHasNoPolicies) {
  EXPECT_TRUE(loadPoliciesFromString("", "empty.yaml").policies.empty());
  EXPECT_TRUE(loadPoliciesFromString("# only a comment\n", "c.yaml").policies.empty());
}

TEST(PolicyLoader, AcceptsMetadataLabelsAndAnnotations) {
  const PolicySet set = loadPoliciesFromString(R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: p.v2
  labels: {team: platform}
  annotations: {owner: "platform@example.com"}
spec: {rules: [{name: r, runAsNonRoot: {}}]}
)",
                                               "m.yaml");
  EXPECT_EQ(set.policies.at(0).name, "p.v2");
}

// -------------------------------------------------------------------------------------------
// Problems, each with its position

TEST(PolicyLoaderErrors, UnknownFieldsEverywhere) {
  const auto problems = problemsOf(R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: p
  namespace: default
spec:
  mode: Enforce
  match:
    namespace: ["a"]
    objectSelector:
      matchLabel: {a: b}
  rules:
    - name: r
      runAsNonRoot: {enabled: true}
    - name: s
      privileged: {allowed: false, really: true}
      severity: high
status: {}
)");
  EXPECT_THAT(problems,
              UnorderedElementsAre(
                  problemAt(5, 3,
                            "metadata.namespace: unknown field \"namespace\" (allowed here: "
                            "name, labels, annotations)"),
                  problemAt(7, 3, "spec.mode: unknown field"),
                  problemAt(9, 5, "spec.match.namespace: unknown field"),
                  problemAt(11, 7, "spec.match.objectSelector.matchLabel: unknown field"),
                  problemAt(14, 22, "unknown field \"enabled\" (this takes no options; write {})"),
                  problemAt(16, 36, "spec.rules[1].privileged.really: unknown field"),
                  problemAt(17, 7, "spec.rules[1].severity: unknown field"),
                  problemAt(18, 1, "status: unknown field")));
}

TEST(PolicyLoaderErrors, WrongTypes) {
  const auto problems = problemsOf(policyWith(R"(  action: [Enforce]
  match:
    namespaces: default
    images: [{host: x}]
  rules:
    - name: a
      privileged: {allowed: "false"}
    - name: b
      imageReference: {requireDigest: yes}
    - name: c
      allowedRegistries: ghcr.io
    - name: d
      runAsNonRoot: true
)"));
  EXPECT_THAT(
      problems,
      UnorderedElementsAre(
          problemAt(6, 11, "spec.action must be a string, got a list"),
          problemAt(8, 17, "spec.match.namespaces must be a list of strings, got \"default\""),
          problemAt(9, 14, "spec.match.images[0] must be a string, got a mapping"),
          problemAt(12, 29,
                    "spec.rules[0].privileged.allowed must be a boolean (true or "
                    "false), got \"false\""),
          problemAt(14, 39, "spec.rules[1].imageReference.requireDigest must be a boolean"),
          problemAt(16, 26, "spec.rules[2].allowedRegistries must be a list of strings"),
          problemAt(18, 21, "spec.rules[3].runAsNonRoot must be a mapping, got \"true\"")));
}

TEST(PolicyLoaderErrors, RulesMustBeANonEmptyList) {
  EXPECT_THAT(problemsOf(policyWith("  rules: {name: r}\n")),
              ElementsAre(problemAt(6, 10, "spec.rules must be a non-empty list of rules")));
  EXPECT_THAT(problemsOf(policyWith("  rules: []\n")),
              ElementsAre(problemAt(6, 10, "spec.rules must be a non-empty list")));
  EXPECT_THAT(problemsOf(policyWith("  action: Warn\n")),
              ElementsAre(problemAt(6, 3, "spec.rules is required")));
  EXPECT_THAT(problemsOf(policyWith("  rules:\n    -\n    - name: r\n      runAsNonRoot: {}\n")),
              ElementsAre(problemAt(8, 5, "spec.rules[0] must be a rule mapping, got null")));
}

TEST(PolicyLoaderErrors, InvalidAction) {
  EXPECT_THAT(problemsOf(policyWith("  action: Deny\n  rules: [{name: r, runAsNonRoot: {}}]\n")),
              ElementsAre(problemAt(6, 11,
                                    "spec.action must be one of Enforce, Audit, Warn, got "
                                    "\"Deny\"")));
}

TEST(PolicyLoaderErrors, WrongOrMissingApiVersionAndKind) {
  EXPECT_THAT(problemsOf(R"(apiVersion: imagegate.dev/v1
kind: Policy
metadata: {name: p}
spec: {rules: [{name: r, runAsNonRoot: {}}]}
)"),
              ElementsAre(problemAt(1, 13,
                                    "apiVersion must be \"imagegate.dev/v1alpha1\", got "
                                    "\"imagegate.dev/v1\""),
                          problemAt(2, 7, "kind must be \"ImagePolicy\", got \"Policy\"")));
  EXPECT_THAT(problemsOf(R"(metadata: {name: p}
spec: {rules: [{name: r, runAsNonRoot: {}}]}
)"),
              ElementsAre(problemAt(1, 1, "apiVersion is required (imagegate.dev/v1alpha1)"),
                          problemAt(1, 1, "kind is required (ImagePolicy)")));
}

TEST(PolicyLoaderErrors, MissingOrInvalidMetadataName) {
  EXPECT_THAT(problemsOf(R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  labels: {a: b}
spec: {rules: [{name: r, runAsNonRoot: {}}]}
)"),
              ElementsAre(problemAt(4, 3, "metadata.name is required")));
  EXPECT_THAT(problemsOf(R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
spec: {rules: [{name: r, runAsNonRoot: {}}]}
)"),
              ElementsAre(problemAt(1, 1, "metadata.name is required")));
  EXPECT_THAT(problemsOf(R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
spec: {rules: [{name: r, runAsNonRoot: {}}]}
)"),
              ElementsAre(problemAt(3, 1, "metadata.name is required")));
  for (const std::string& bad :
       std::vector<std::string>{"Prod_Images", "-prod", "prod-", std::string(64, 'a'), "a b"}) {
    EXPECT_THAT(
        problemsOf("apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: \"" +
                   bad + "\"}\nspec: {rules: [{name: r, runAsNonRoot: {}}]}\n"),
        ElementsAre(problemAt(3, 18, "metadata.name \"" + bad + "\" must be 1-63 lowercase")))
        << bad;
  }
}

TEST(PolicyLoaderErrors, InvalidRuleName) {
  EXPECT_THAT(
      problemsOf(policyWith("  rules:\n    - name: No_Root\n      runAsNonRoot: {}\n")),
      ElementsAre(problemAt(7, 13, "spec.rules[0].name \"No_Root\" must be 1-63 lowercase")));
  EXPECT_THAT(problemsOf(policyWith("  rules:\n    - runAsNonRoot: {}\n")),
              ElementsAre(problemAt(7, 7, "spec.rules[0].name is required")));
}

TEST(PolicyLoaderErrors, FileRulesNameTheAllowedPresetsAndScopes) {
  const auto problems = problemsOf(policyWith(R"(  rules:
    - name: a
      forbiddenFiles: {presets: [shells, editors], scope: layer}
    - name: b
      forbiddenFiles: {}
    - name: c
      requiredFiles: {}
)"));
  const auto message = [](const std::string& text) {
    return Field(&LoadProblem::message, HasSubstr(text));
  };
  EXPECT_THAT(problems,
              UnorderedElementsAre(
                  message("spec.rules[0].forbiddenFiles.presets: unknown preset \"editors\"; the "
                          "presets are shells, compilers, packageManagers, networkTools"),
                  message("spec.rules[0].forbiddenFiles.scope must be image or finalLayer, got "
                          "\"layer\""),
                  message("spec.rules[1].forbiddenFiles.presets or "
                          "spec.rules[1].forbiddenFiles.paths is required"),
                  message("spec.rules[2].requiredFiles.paths is required")));
}

TEST(PolicyLoaderErrors, BadGlobs) {
  const auto problems = problemsOf(policyWith(R"(  match:
    namespaces: ["team-[ab", ""]
    excludeImages: ["a b"]
  rules:
    - name: r
      disallowedRegistries: ["ghcr.io/[x"]
    - name: t
      imageReference: {disallowTags: ["v1\\"]}
)"));
  EXPECT_THAT(problems,
              UnorderedElementsAre(
                  problemAt(7, 18,
                            "spec.match.namespaces[0]: invalid pattern \"team-[ab\": "
                            "unbalanced '['"),
                  problemAt(7, 30,
                            "spec.match.namespaces[1]: invalid pattern \"\": an empty "
                            "pattern matches nothing"),
                  problemAt(8, 21, "spec.match.excludeImages[0]: invalid pattern \"a b\""),
                  problemAt(11, 30, "spec.rules[0].disallowedRegistries[0]: invalid pattern"),
                  problemAt(13, 39,
                            "spec.rules[1].imageReference.disallowTags[0]: invalid "
                            "pattern \"v1\\\": a pattern must not end with a lone "
                            "backslash")));
}

TEST(PolicyLoaderErrors, EmptyListsThatWouldMatchNothing) {
  const auto problems = problemsOf(policyWith(R"(  match:
    namespaces: []
    images: []
  rules:
    - name: r
      allowedRegistries: []
    - name: s
      disallowedRegistries:
)"));
  EXPECT_THAT(problems,
              UnorderedElementsAre(
                  problemAt(7, 17, "spec.match.namespaces is an empty list, which matches nothing"),
                  problemAt(8, 13, "spec.match.images is an empty list"),
                  problemAt(11, 26,
                            "spec.rules[0].allowedRegistries is an empty list, which "
                            "would deny every image"),
                  problemAt(13, 7,
                            "spec.rules[1].disallowedRegistries must be a list of registry "
                            "patterns")));
}

TEST(PolicyLoaderErrors, RuleWithZeroOrTwoRuleTypes) {
  const auto problems = problemsOf(policyWith(R"(  rules:
    - name: none
    - name: both
      runAsNonRoot: {}
      privileged: {allowed: false}
)"));
  EXPECT_THAT(problems,
              ElementsAre(problemAt(7, 7,
                                    "spec.rules[0] has no rule type; a rule needs exactly one of: "
                                    "runAsNonRoot, readOnlyRootFilesystem, privileged, "
                                    "allowPrivilegeEscalation, allowedRegistries, "
                                    "disallowedRegistries, imageReference, hostNamespaces"),
                          problemAt(8, 7,
                                    "spec.rules[1] has several rule types (runAsNonRoot, "
                                    "privileged)")));
}

TEST(PolicyLoader, ReadsPodSecurityLevelsAndVersions) {
  const PolicySet set = loadPoliciesFromString(policyWith(R"(  rules:
    - name: a
      podSecurity: {level: baseline}
    - name: b
      podSecurity: {level: restricted, version: v1.0, exclude: [runAsUser, hostPathVolumes]}
    - name: c
      podSecurity: {level: restricted, version: v1.37}
)"),
                                               "test.yaml");
  ASSERT_EQ(set.policies.size(), 1u);
  EXPECT_THAT(ruleKeysOf(set.policies[0]),
              ElementsAre("podSecurity", "podSecurity", "podSecurity"));
}

TEST(PolicyLoaderErrors, PodSecurityBody) {
  const auto problems = problemsOf(policyWith(R"(  rules:
    - name: a
      podSecurity: {}
    - name: b
      podSecurity: {level: privileged, version: v1.38}
    - name: c
      podSecurity: {level: baseline, version: v0.9, exclude: [hostNamespaces, seccompProfile]}
    - name: d
      podSecurity: {level: Baseline, version: "1.25", levle: x}
    - name: e
      podSecurity: {level: baseline, version: v1.025, exclude: hostPorts}
)"));
  EXPECT_THAT(problems,
              ElementsAre(problemAt(8, 20, "spec.rules[0].podSecurity.level is required"),
                          problemAt(10, 28,
                                    "spec.rules[1].podSecurity.level must be baseline or "
                                    "restricted, got \"privileged\" (privileged allows "
                                    "everything: remove the rule instead)"),
                          problemAt(10, 49,
                                    "spec.rules[1].podSecurity.version must be latest or v1.0 to "
                                    "v1.37 (the Pod Security Standards versions imagegate knows), "
                                    "got \"v1.38\""),
                          problemAt(12, 47, "version must be latest or v1.0 to v1.37"),
                          problemAt(12, 79,
                                    "spec.rules[2].podSecurity.exclude[1]: unknown check "
                                    "\"seccompProfile\" (known checks: appArmorProfile, "),
                          problemAt(14, 55, "unknown field \"levle\""),
                          problemAt(14, 28, "must be baseline or restricted, got \"Baseline\""),
                          problemAt(14, 47, "got \"1.25\""), problemAt(16, 47, "got \"v1.025\""),
                          problemAt(16, 64, "exclude must be a list of strings")));
}

TEST(PolicyLoaderErrors, DuplicateRuleNames) {
  const auto problems = problemsOf(policyWith(R"(  rules:
    - name: r
      runAsNonRoot: {}
    - name: s
      privileged: {}
    - name: r
      readOnlyRootFilesystem: {}
)"));
  EXPECT_THAT(problems, ElementsAre(problemAt(11, 13,
                                              "spec.rules[2]: rule name \"r\" is already used at "
                                              "test.yaml:7:13")));
}

TEST(PolicyLoaderErrors, DuplicatePolicyNamesInOneFile) {
  const auto problems = problemsOf(R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: same}
spec: {rules: [{name: r, runAsNonRoot: {}}]}
---
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: same}
spec: {rules: [{name: r, runAsNonRoot: {}}]}
)");
  EXPECT_THAT(problems, ElementsAre(problemAt(8, 18,
                                              "policy name \"same\" is already defined at "
                                              "test.yaml:3:18")));
}

TEST(PolicyLoaderErrors, DuplicateKeysInAMapping) {
  const auto problems = problemsOf(policyWith(R"(  action: Enforce
  action: Audit
  rules: [{name: r, runAsNonRoot: {}}]
)"));
  EXPECT_THAT(problems, ElementsAre(problemAt(7, 3,
                                              "spec.action is given more than once (first "
                                              "at test.yaml:6:3)")));
}

TEST(PolicyLoaderErrors, SelectorValidatedLikeKubernetes) {
  const auto problems = problemsOf(policyWith(R"(  match:
    objectSelector:
      matchLabels: {"bad key!": x, app: "bad value!"}
      matchExpressions:
        - {key: a, operator: In}
        - {key: b, operator: NotIn, values: []}
        - {key: c, operator: Exists, values: [x]}
        - {key: d, operator: DoesNotExist, values: [y]}
        - {key: e, operator: in, values: [x]}
        - {operator: Exists}
        - {key: f, operator: Exists, extra: 1}
  rules: [{name: r, runAsNonRoot: {}}]
)"));
  EXPECT_THAT(problems,
              UnorderedElementsAre(
                  problemAt(8, 21, "spec.match.objectSelector.matchLabels: label key \"bad key!\""),
                  problemAt(8, 41,
                            "spec.match.objectSelector.matchLabels.app: label value "
                            "\"bad value!\""),
                  problemAt(10, 11,
                            "matchExpressions[0]: operators In and NotIn need at least "
                            "one value"),
                  problemAt(11, 11, "matchExpressions[1]: operators In and NotIn need"),
                  problemAt(12, 11,
                            "matchExpressions[2]: operators Exists and DoesNotExist must "
                            "not have values"),
                  problemAt(13, 11, "matchExpressions[3]: operators Exists and DoesNotExist"),
                  problemAt(14, 30,
                            "matchExpressions[4].operator must be one of In, NotIn, "
                            "Exists, DoesNotExist, got \"in\""),
                  problemAt(15, 11, "matchExpressions[5].key is required"),
                  problemAt(16, 38, "matchExpressions[6].extra: unknown field")));
}

TEST(PolicyLoaderErrors, DocumentThatIsNotAMapping) {
  EXPECT_THAT(problemsOf("- a\n- b\n"),
              ElementsAre(problemAt(1, 1, "a policy document must be a mapping, got a list")));
}

TEST(PolicyLoaderErrors, YamlSyntaxErrorHasItsPosition) {
  const auto problems = problemsOf(policyWith("  rules: [{name: r, runAsNonRoot: {}}\n"));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0].message, HasSubstr("YAML syntax error: end of sequence flow not found"));
  EXPECT_EQ(problems[0].line, 7);
  EXPECT_EQ(problems[0].column, 1);
  EXPECT_THAT(problemsOf("a: [1\nb: 2\n"),
              ElementsAre(problemAt(2, 2, "YAML syntax error: end of sequence flow not found")));
}

/// Runs `body` and ends the process if it has not returned within `seconds`: a regression of the
/// bug below loops forever allocating gigabytes a minute, which must fail the test, not hang CI.
template <typename Body>
void finishesWithin(int seconds, Body body) {
  std::promise<void> done;
  std::future<void> finished = done.get_future();
  std::thread([&body, done = std::move(done)]() mutable {
    body();
    done.set_value();
  }).detach();
  if (finished.wait_for(std::chrono::seconds(seconds)) == std::future_status::timeout) {
    std::cerr << "FAILED: policy loading did not finish within " << seconds << " s\n";
    std::_Exit(1);
  }
}

// yaml-cpp 0.7's LoadAll never returns on some malformed streams, a lone ',' for one
// (jbeder/yaml-cpp#1040; found by tests/fuzz).
TEST(PolicyLoaderErrors, StreamsThatStallTheYamlParserAreSyntaxErrors) {
  for (const std::string_view yaml : {",", "\n,\n", "apiVersion: v1\n---\n,\n", "- !+(.,.)\n"}) {
    finishesWithin(20, [&] {
      const auto problems = problemsOf(yaml);
      ASSERT_EQ(problems.size(), 1u) << yaml;
      EXPECT_THAT(problems[0].message, HasSubstr("YAML syntax error")) << yaml;
      EXPECT_GT(problems[0].line, 0) << yaml;
    });
  }
}

TEST(PolicyLoaderErrors, CollectsEveryProblemOfEveryDocument) {
  const auto problems = problemsOf(R"(apiVersion: v1
kind: ImagePolicy
metadata: {name: a}
spec:
  action: Block
  rules: [{name: r}]
---
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: B}
spec: {rules: [{name: r, privileged: {allowed: maybe}}]}
)");
  EXPECT_THAT(problems, ElementsAre(problemAt(1, 13, "apiVersion must be"),
                                    problemAt(5, 11, "spec.action must be one of"),
                                    problemAt(6, 11, "spec.rules[0] has no rule type"),
                                    problemAt(10, 18, "metadata.name \"B\""),
                                    problemAt(11, 48, "allowed must be a boolean")));
}

TEST(PolicyLoaderErrors, ProblemTextAndErrorMessage) {
  EXPECT_EQ((LoadProblem{"a.yaml", 3, 7, "bad"}).str(), "a.yaml:3:7: bad");
  EXPECT_EQ((LoadProblem{"a.yaml", 0, 0, "missing"}).str(), "a.yaml: missing");
  try {
    loadPoliciesFromString(policyWith("  action: x\n  rules: []\n"), "f.yaml");
    FAIL() << "expected PolicyLoadError";
  } catch (const PolicyLoadError& e) {
    EXPECT_EQ(std::string(e.what()),
              "f.yaml:6:11: spec.action must be one of Enforce, Audit, Warn, got \"x\"\n"
              "f.yaml:7:10: spec.rules must be a non-empty list of rules, got a list");
  }
}

// -------------------------------------------------------------------------------------------
// Files and directories

TEST(PolicyLoaderFiles, MissingPathIsAProblem) {
  try {
    loadPolicies("/nonexistent/imagegate/policies");
    FAIL() << "expected PolicyLoadError";
  } catch (const PolicyLoadError& e) {
    EXPECT_THAT(e.problems(),
                ElementsAre(AllOf(Field(&LoadProblem::file, "/nonexistent/imagegate/policies"),
                                  Field(&LoadProblem::line, 0),
                                  Field(&LoadProblem::message, "no such file or directory"))));
  }
}

// A policy path pointing at a huge file (or /dev/zero) must fail with a message, not exhaust
// memory.
TEST(PolicyLoaderFiles, FilesAreBoundedLikeAConfigMap) {
  const TempDir dir;
  dir.write("huge.yaml", "# " + std::string(1024 * 1024, 'x') + "\n");
  try {
    loadPolicies(dir.path() / "huge.yaml");
    FAIL() << "expected PolicyLoadError";
  } catch (const PolicyLoadError& e) {
    ASSERT_EQ(e.problems().size(), 1u);
    EXPECT_THAT(e.problems()[0].message, HasSubstr("larger than"));
  }
}

TEST(PolicyLoaderFiles, LoadsASingleFileWithItsPathAsSource) {
  const TempDir dir;
  dir.write("one.yaml", policyWith("  rules: [{name: r, runAsNonRoot: {}}]\n"));
  const PolicySet set = loadPolicies(dir.path() / "one.yaml");
  ASSERT_EQ(set.policies.size(), 1u);
  EXPECT_EQ(set.policies[0].sourceFile, (dir.path() / "one.yaml").string());
}

TEST(PolicyLoaderFiles, DirectoryLoadsYamlAndYmlSortedAndIgnoresOthers) {
  const TempDir dir;
  const auto policyNamed = [](const std::string& name) {
    return "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: " + name +
           "}\nspec: {rules: [{name: r, runAsNonRoot: {}}]}\n";
  };
  dir.write("b.yml", policyNamed("from-b"));
  dir.write("a.yaml", policyNamed("from-a"));
  dir.write("c.yaml", policyNamed("from-c") + "---\n" + policyNamed("from-c2"));
  dir.write("README.md", "not: a policy");
  dir.write("d.yaml.bak", "broken: [");
  fs::create_directory(dir.path() / "sub.yaml");
  const PolicySet set = loadPolicies(dir.path());
  std::vector<std::string> names;
  for (const Policy& p : set.policies) names.push_back(p.name);
  EXPECT_THAT(names, ElementsAre("from-a", "from-b", "from-c", "from-c2"));
}

TEST(PolicyLoaderFiles, DuplicatePolicyNamesAcrossFilesAndProblemsFromEveryFile) {
  const TempDir dir;
  dir.write("a.yaml", policyWith("  rules: [{name: r, runAsNonRoot: {}}]\n"));
  dir.write("b.yaml", "# same name again\n" + policyWith("  rules: [{name: r, bogus: {}}]\n"));
  dir.write("c.yaml", "key: [unterminated\n");
  try {
    loadPolicies(dir.path());
    FAIL() << "expected PolicyLoadError";
  } catch (const PolicyLoadError& e) {
    const std::string a = (dir.path() / "a.yaml").string();
    const std::string b = (dir.path() / "b.yaml").string();
    const std::string c = (dir.path() / "c.yaml").string();
    EXPECT_THAT(e.problems(),
                ElementsAre(AllOf(Field(&LoadProblem::file, b), Field(&LoadProblem::line, 7),
                                  Field(&LoadProblem::column, 21),
                                  Field(&LoadProblem::message,
                                        HasSubstr("spec.rules[0].bogus: unknown field"))),
                            AllOf(Field(&LoadProblem::file, b), Field(&LoadProblem::line, 7),
                                  Field(&LoadProblem::column, 11),
                                  Field(&LoadProblem::message, HasSubstr("no rule type"))),
                            AllOf(Field(&LoadProblem::file, b), Field(&LoadProblem::line, 5),
                                  Field(&LoadProblem::column, 9),
                                  Field(&LoadProblem::message,
                                        "policy name \"p\" is already defined at " + a + ":4:9")),
                            AllOf(Field(&LoadProblem::file, c), Field(&LoadProblem::line, 2),
                                  Field(&LoadProblem::message, HasSubstr("YAML syntax error")))));
  }
}

TEST(PolicyLoaderFiles, DirectoryWithoutPolicyFilesIsAProblem) {
  const TempDir dir;
  dir.write("notes.txt", "nothing");
  try {
    loadPolicies(dir.path());
    FAIL() << "expected PolicyLoadError";
  } catch (const PolicyLoadError& e) {
    EXPECT_THAT(e.problems(), ElementsAre(Field(&LoadProblem::message,
                                                "contains no *.yaml or *.yml policy files")));
  }
}

}  // namespace
}  // namespace imagegate::policy

namespace imagegate::policy {
namespace {

TEST(PolicyLoaderImageFacts, ReadsMaxImageSizeAndOnFetchError) {
  const PolicySet set =
      loadPoliciesFromString(policyWith("  onFetchError: Allow\n"
                                        "  rules:\n"
                                        "    - name: size\n"
                                        "      maxImageSize: {compressed: 1.5Gi}\n"),
                             "test.yaml");
  ASSERT_EQ(set.policies.size(), 1u);
  EXPECT_EQ(set.policies[0].onFetchError, OnFetchError::kAllow);
  // The limit in bytes: tests/data/rules/maxImageSize/{pass,fail}-at-the-limit.yaml.
  EXPECT_THAT(ruleKeysOf(set.policies[0]), ElementsAre("maxImageSize"));
}

TEST(PolicyLoaderImageFacts, OnFetchErrorDefaultsToDeny) {
  const PolicySet set = loadPoliciesFromString(
      policyWith("  rules:\n    - name: size\n      maxImageSize: {compressed: 200Mi}\n"),
      "test.yaml");
  EXPECT_EQ(set.policies.at(0).onFetchError, OnFetchError::kDeny);
}

TEST(PolicyLoaderImageFacts, RejectsBadQuantitiesAndValues) {
  EXPECT_THAT(problemsOf(policyWith("  rules:\n    - name: size\n"
                                    "      maxImageSize: {compressed: 200MB}\n")),
              ElementsAre(problemAt(8, 34, "must be a positive quantity")));
  EXPECT_THAT(problemsOf(policyWith("  rules:\n    - name: size\n      maxImageSize: {}\n")),
              ElementsAre(problemAt(8, 21, "compressed is required")));
  EXPECT_THAT(problemsOf(policyWith("  rules:\n    - name: size\n"
                                    "      maxImageSize: {compressed: 1Mi, layers: 3}\n")),
              ElementsAre(problemAt(8, 39, "unknown field")));
  EXPECT_THAT(problemsOf(policyWith("  onFetchError: Ignore\n  rules:\n    - name: r\n"
                                    "      runAsNonRoot: {}\n")),
              ElementsAre(problemAt(6, 17, "must be Deny or Allow")));
}

}  // namespace
}  // namespace imagegate::policy
