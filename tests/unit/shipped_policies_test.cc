// The policies shipped in policies/ do what their header comments promise: a compliant workload
// passes all of them, and each violation fails exactly the rules meant to catch it.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "admission/review.h"
#include "policy/evaluator.h"
#include "policy/loader.h"
#include "service/admission_service.h"

namespace imagegate::policy {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

const std::string kDigest = "sha256:" + std::string(64, 'e');

const PolicySet& shipped() {
  static const PolicySet set = loadPolicies(IMAGEGATE_SOURCE_DIR "/policies");
  return set;
}

const Policy& shippedPolicy(const std::string& name) {
  const auto& policies = shipped().policies;
  const auto it = std::find_if(policies.begin(), policies.end(),
                               [&](const Policy& p) { return p.name == name; });
  if (it == policies.end()) throw std::runtime_error("no shipped policy " + name);
  return *it;
}

json hardenedContainer(const std::string& name, const std::string& image) {
  return {{"name", name},
          {"image", image},
          {"securityContext",
           {{"runAsNonRoot", true},
            {"runAsUser", 10001},
            {"allowPrivilegeEscalation", false},
            {"readOnlyRootFilesystem", true},
            {"capabilities", {{"drop", {"ALL"}}}},
            {"seccompProfile", {{"type", "RuntimeDefault"}}}}}};
}

json compliantSpec() {
  return {
      {"containers", {hardenedContainer("web", "registry.example.com/shop/web:1.4.2@" + kDigest)}},
      {"initContainers",
       {hardenedContainer("migrate", "registry.example.com/shop/migrate@" + kDigest)}}};
}

/// The spec violates every baseline and hardening rule, in different containers and fields.
json violatingSpec() {
  return {{"hostNetwork", true},
          {"securityContext", {{"runAsUser", 0}}},
          {"containers",
           {{{"name", "web"}, {"image", "nginx"}},
            {{"name", "agent"},
             {"image", "ghcr.io/acme/agent:2.0"},
             {"securityContext", {{"privileged", true}, {"runAsUser", 1000}}}}}}};
}

json review(const std::string& kind, const std::string& group, const json& object,
            const std::string& ns) {
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", "uid-1"},
            {"kind", {{"group", group}, {"version", "v1"}, {"kind", kind}}},
            {"namespace", ns},
            {"operation", "CREATE"},
            {"object", object}}}};
}

json podReview(const json& spec, const std::string& ns = "shop") {
  return review("Pod", "",
                {{"apiVersion", "v1"},
                 {"kind", "Pod"},
                 {"metadata", {{"name", "web"}, {"namespace", ns}}},
                 {"spec", spec}},
                ns);
}

json deploymentReview(const json& podSpec, const std::string& ns = "shop") {
  return review("Deployment", "apps",
                {{"apiVersion", "apps/v1"},
                 {"kind", "Deployment"},
                 {"metadata", {{"name", "web"}, {"namespace", ns}, {"labels", {{"app", "web"}}}}},
                 {"spec", {{"template", {{"spec", podSpec}}}}}},
                ns);
}

admission::AdmissionRequest decode(const json& body) {
  auto decoded = admission::decodeReview(body.dump());
  return std::get<admission::AdmissionRequest>(decoded.request);
}

std::vector<RuleResult> evaluateRequest(const PolicySet& set,
                                        const admission::AdmissionRequest& request) {
  return evaluate(set, *request.object, request.namespaceName);
}

std::vector<RuleResult> evaluateWith(const std::string& policyName, const json& body) {
  return evaluateRequest(PolicySet{{shippedPolicy(policyName)}}, decode(body));
}

/// "rule" or "rule/container" for every result that did not pass.
std::vector<std::string> failures(const std::vector<RuleResult>& results) {
  std::vector<std::string> names;
  for (const RuleResult& r : results) {
    if (r.status == RuleStatus::kPass) continue;
    names.push_back(r.rule + (r.container ? "/" + *r.container : ""));
  }
  return names;
}

TEST(ShippedPolicies, LoadWithTheDocumentedActions) {
  std::vector<std::string> names;
  for (const Policy& p : shipped().policies) names.push_back(p.name);
  EXPECT_THAT(names, ElementsAre("deprecated-registries", "production-baseline",
                                 "production-hardening", "pss-baseline", "pss-restricted"));
  EXPECT_EQ(shippedPolicy("production-baseline").action, Action::kEnforce);
  EXPECT_EQ(shippedPolicy("pss-baseline").action, Action::kEnforce);
  EXPECT_EQ(shippedPolicy("pss-restricted").action, Action::kAudit);
  EXPECT_EQ(shippedPolicy("production-hardening").action, Action::kAudit);
  EXPECT_EQ(shippedPolicy("deprecated-registries").action, Action::kWarn);
}

TEST(ShippedPolicies, CompliantPodPassesEveryPolicy) {
  const auto results = evaluateRequest(shipped(), decode(podReview(compliantSpec())));
  // 5 baseline rules (1 pod-level) + 2 hardening + 1 deprecated, for 2 containers, and the
  // two pod-level Pod Security Standards rules.
  EXPECT_EQ(results.size(), 4u * 2 + 1 + 2 * 2 + 1 * 2 + 2);
  EXPECT_THAT(failures(results), IsEmpty());
}

TEST(ShippedPolicies, CompliantDeploymentPassesEveryPolicy) {
  EXPECT_THAT(failures(evaluateRequest(shipped(), decode(deploymentReview(compliantSpec())))),
              IsEmpty());
}

TEST(ProductionBaseline, ViolatingPodFailsEachRuleWhereItIsBroken) {
  EXPECT_THAT(failures(evaluateWith("production-baseline", podReview(violatingSpec()))),
              UnorderedElementsAre("non-root/web",                   // runAsUser 0 from the pod
                                   "no-privileged/agent",            // privileged: true
                                   "no-privilege-escalation/web",    // unset counts as true
                                   "no-privilege-escalation/agent",  // privileged implies it
                                   "no-host-namespaces",             // hostNetwork
                                   "no-latest-tag/web"));            // "nginx" means :latest
}

TEST(ProductionBaseline, ViolationsInAPodTemplateNameTheTemplatePath) {
  const auto results = evaluateWith("production-baseline", deploymentReview(violatingSpec()));
  EXPECT_THAT(failures(results),
              UnorderedElementsAre("non-root/web", "no-privileged/agent",
                                   "no-privilege-escalation/web", "no-privilege-escalation/agent",
                                   "no-host-namespaces", "no-latest-tag/web"));
  const auto host = std::find_if(results.begin(), results.end(), [](const RuleResult& r) {
    return r.rule == "no-host-namespaces";
  });
  ASSERT_NE(host, results.end());
  EXPECT_THAT(host->message, HasSubstr("spec.template.spec.hostNetwork is true"));
}

TEST(ProductionBaseline, InitAndEphemeralContainersAreChecked) {
  json spec = compliantSpec();
  spec["initContainers"] = {{{"name", "setup"}, {"image", "busybox:1.36"}}};
  spec["ephemeralContainers"] = {{{"name", "debug"}, {"image", "busybox:latest"}}};
  EXPECT_THAT(
      failures(evaluateWith("production-baseline", podReview(spec))),
      UnorderedElementsAre("non-root/setup", "no-privilege-escalation/setup", "non-root/debug",
                           "no-privilege-escalation/debug", "no-latest-tag/debug"));
}

TEST(ProductionBaseline, SystemNamespacesAreExempt) {
  for (const std::string ns : {"kube-system", "kube-public", "kube-node-lease"}) {
    EXPECT_THAT(evaluateWith("production-baseline", podReview(violatingSpec(), ns)), IsEmpty())
        << ns;
  }
  EXPECT_THAT(failures(evaluateWith("production-baseline", podReview(violatingSpec(), "kube"))),
              Not(IsEmpty()));
}

TEST(ProductionHardening, WritableRootAndTagOnlyImagesAreReported) {
  json spec = compliantSpec();
  spec["containers"][0]["image"] = "registry.example.com/shop/web:1.4.2";
  spec["containers"][0]["securityContext"].erase("readOnlyRootFilesystem");
  const auto results = evaluateWith("production-hardening", podReview(spec));
  EXPECT_THAT(failures(results),
              UnorderedElementsAre("read-only-root-filesystem/web", "pinned-by-digest/web"));
  EXPECT_TRUE(std::all_of(results.begin(), results.end(),
                          [](const RuleResult& r) { return r.action == Action::kAudit; }));
}

TEST(ProductionHardening, SystemNamespacesAreExempt) {
  EXPECT_THAT(evaluateWith("production-hardening", podReview(violatingSpec(), "kube-system")),
              IsEmpty());
}

TEST(DeprecatedRegistries, WarnsForK8sGcrIoEverywhere) {
  json spec = compliantSpec();
  spec["containers"][0]["image"] = "k8s.gcr.io/pause:3.9";
  for (const std::string ns : {"shop", "kube-system"}) {
    const auto results = evaluateWith("deprecated-registries", podReview(spec, ns));
    EXPECT_THAT(failures(results), ElementsAre("no-k8s-gcr-io/web")) << ns;
  }
  spec["containers"][0]["image"] = "registry.k8s.io/pause:3.9";
  EXPECT_THAT(failures(evaluateWith("deprecated-registries", podReview(spec))), IsEmpty());
}

TEST(PssBaseline, ViolatingPodFailsWithThePodSecurityCheckIds) {
  const auto results = evaluateWith("pss-baseline", podReview(violatingSpec()));
  EXPECT_THAT(failures(results), ElementsAre("pod-security-baseline"));
  EXPECT_THAT(results.front().message,
              HasSubstr("violates PodSecurity \"baseline:latest\": hostNamespaces: host "
                        "namespaces (hostNetwork=true); privileged: privileged (container "
                        "\"agent\" must not set securityContext.privileged=true)"));
}

TEST(PssBaseline, WorkloadTemplatesGetThePodsVerdictAndSystemNamespacesAreExempt) {
  EXPECT_THAT(failures(evaluateWith("pss-baseline", deploymentReview(violatingSpec()))),
              ElementsAre("pod-security-baseline"));
  EXPECT_THAT(evaluateWith("pss-baseline", podReview(violatingSpec(), "kube-system")), IsEmpty());
}

TEST(PssRestricted, UnhardenedPodIsReportedNotDenied) {
  json spec = compliantSpec();
  spec["containers"][0]["securityContext"].erase("seccompProfile");
  const auto results = evaluateWith("pss-restricted", podReview(spec));
  EXPECT_THAT(failures(results), ElementsAre("pod-security-restricted"));
  EXPECT_EQ(results.front().action, Action::kAudit);
  EXPECT_THAT(results.front().message,
              HasSubstr("seccompProfile_restricted: seccompProfile (pod or container \"web\" "
                        "must set securityContext.seccompProfile.type to \"RuntimeDefault\" or "
                        "\"Localhost\")"));
}

TEST(ShippedPolicies, ServiceDeniesOnlyForTheEnforcedBaseline) {
  const service::AdmissionService service(std::make_shared<const PolicySet>(shipped()),
                                          service::ServiceOptions{});
  const Deadline deadline = Deadline::after(std::chrono::seconds(10));

  const auto compliant = service.review(podReview(compliantSpec()).dump(), deadline);
  EXPECT_TRUE(compliant.answered);
  EXPECT_TRUE(compliant.allowed);
  EXPECT_EQ(compliant.violations, 0u);

  // Audit and Warn findings alone never deny.
  json audited = compliantSpec();
  audited["containers"][0]["image"] = "k8s.gcr.io/pause:3.9";
  audited["containers"][0]["securityContext"].erase("readOnlyRootFilesystem");
  const auto warned = service.review(podReview(audited).dump(), deadline);
  EXPECT_TRUE(warned.allowed);
  EXPECT_EQ(warned.violations, 3u);  // read-only-root-filesystem, pinned-by-digest, no-k8s-gcr-io

  const auto denied = service.review(podReview(violatingSpec()).dump(), deadline);
  EXPECT_TRUE(denied.answered);
  EXPECT_FALSE(denied.allowed);
}

}  // namespace
}  // namespace imagegate::policy
