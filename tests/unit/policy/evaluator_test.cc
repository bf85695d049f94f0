#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "policy/evaluator.h"
#include "policy/loader.h"

namespace imagegate::policy {
namespace {

using admission::AdmissionRequest;
using admission::Container;
using admission::ContainerKind;
using admission::PodSpec;
using admission::ReviewedObject;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using Operator = LabelSelectorRequirement::Operator;

const std::string kDigest = "sha256:" + std::string(64, 'c');

Container container(std::string name, std::string image,
                    ContainerKind kind = ContainerKind::kContainer) {
  Container c;
  c.kind = kind;
  c.name = std::move(name);
  c.image = std::move(image);
  return c;
}

/// A container that satisfies every security rule.
Container hardened(std::string name, std::string image = "registry.example.com/app:1.0") {
  Container c = container(std::move(name), std::move(image));
  c.securityContext.runAsNonRoot = true;
  c.securityContext.runAsUser = 10001;
  c.securityContext.readOnlyRootFilesystem = true;
  c.securityContext.privileged = false;
  c.securityContext.allowPrivilegeEscalation = false;
  return c;
}

AdmissionRequest podRequest(std::vector<Container> containers, std::string ns = "default") {
  AdmissionRequest request;
  request.uid = "uid-1";
  request.kind = "Pod";
  request.kindVersion = "v1";
  request.namespaceName = ns;
  request.name = "web";
  ReviewedObject object;
  object.apiVersion = "v1";
  object.kind = "Pod";
  object.name = "web";
  object.namespaceName = ns;
  object.podSpec = PodSpec{};
  object.podSpec->path = "spec";
  object.podSpec->containers = std::move(containers);
  request.object = std::move(object);
  return request;
}

PodSpec& podOf(AdmissionRequest& request) { return *request.object->podSpec; }

// The request-shaped calls the tests read best, over the object-and-namespace API.
std::vector<RuleResult> evaluateRequest(const PolicySet& set, const AdmissionRequest& request,
                                        const ImageFactsMap& facts = {}) {
  return evaluate(set, *request.object, request.namespaceName, facts);
}

bool matchesRequest(const Policy& policy, const AdmissionRequest& request) {
  return policyMatchesObject(policy, *request.object, request.namespaceName);
}

/// The images the plan fetches facts for, as normalized references.
std::vector<std::string> imagesNeedingFacts(const PolicySet& set, const AdmissionRequest& request) {
  std::vector<std::string> images;
  for (const auto& [image, needs] :
       planReview(set, *request.object, request.namespaceName).images) {
    images.push_back(image.str());
  }
  return images;
}

std::vector<RuleResult> evaluateImage(const PolicySet& set, const image::ImageRef& image,
                                      const ImageLookup& lookup) {
  return evaluate(planImage(set, image), ImageFactsMap{{image, lookup}});
}

/// A policy "p" with one rule named `ruleName`, read by the loader from `ruleYaml`, a one-line
/// rule type and body such as "privileged: {allowed: false}".
Policy policyWith(std::string_view ruleYaml, std::string ruleName = "r") {
  const std::string yaml =
      "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: p}\n"
      "spec:\n  rules:\n    - name: " +
      ruleName + "\n      " + std::string(ruleYaml) + "\n";
  return loadPoliciesFromString(yaml, "test.yaml").policies.front();
}

Rule ruleFrom(std::string_view ruleYaml, std::string ruleName) {
  return policyWith(ruleYaml, std::move(ruleName)).rules.front();
}

std::vector<RuleResult> run(const Policy& policy, const AdmissionRequest& request) {
  return evaluateRequest(PolicySet{{policy}}, request);
}

/// The single result of a one-rule policy on a one-container pod.
RuleResult only(const Policy& policy, const AdmissionRequest& request) {
  const auto results = run(policy, request);
  EXPECT_EQ(results.size(), 1u);
  return results.empty() ? RuleResult{} : results.front();
}

RuleResult onlyFor(std::string_view ruleYaml, const Container& c) {
  return only(policyWith(ruleYaml), podRequest({c}));
}

// -------------------------------------------------------------------------------------------
// runAsNonRoot

TEST(RunAsNonRoot, NonZeroUidPasses) {
  Container c = container("app", "nginx");
  c.securityContext.runAsUser = 1000;
  const RuleResult r = onlyFor("runAsNonRoot: {}", c);
  EXPECT_EQ(r.status, RuleStatus::kPass);
  EXPECT_EQ(r.container, "app");
}

TEST(RunAsNonRoot, UidZeroInContainerFails) {
  Container c = container("app", "nginx");
  c.securityContext.runAsUser = 0;
  c.securityContext.runAsNonRoot = true;  // the UID decides; the kubelet would refuse to start it
  const RuleResult r = onlyFor("runAsNonRoot: {}", c);
  EXPECT_EQ(r.status, RuleStatus::kFail);
  EXPECT_EQ(r.message, "runs as root: securityContext.runAsUser is 0");
  EXPECT_EQ(r.remediation, "set securityContext.runAsUser to a non-zero UID");
}

TEST(RunAsNonRoot, UidZeroFromPodFailsAndNamesThePod) {
  AdmissionRequest request = podRequest({container("app", "nginx")});
  podOf(request).path = "spec.template.spec";
  podOf(request).securityContext.runAsUser = 0;
  const RuleResult r = only(policyWith("runAsNonRoot: {}"), request);
  EXPECT_EQ(r.status, RuleStatus::kFail);
  EXPECT_EQ(r.message,
            "runs as root: the pod's spec.template.spec.securityContext.runAsUser is 0 and the "
            "container does not override it");
  EXPECT_THAT(r.remediation, HasSubstr("set securityContext.runAsUser to a non-zero UID in the "
                                       "container, or change "
                                       "spec.template.spec.securityContext.runAsUser"));
}

TEST(RunAsNonRoot, ContainerUidOverridesPodUid) {
  Container c = container("app", "nginx");
  c.securityContext.runAsUser = 1000;
  AdmissionRequest request = podRequest({c});
  podOf(request).securityContext.runAsUser = 0;
  EXPECT_EQ(only(policyWith("runAsNonRoot: {}"), request).status, RuleStatus::kPass);

  request = podRequest({container("app", "nginx")});
  podOf(request).containers[0].securityContext.runAsUser = 0;
  podOf(request).securityContext.runAsUser = 1000;
  EXPECT_EQ(only(policyWith("runAsNonRoot: {}"), request).status, RuleStatus::kFail);
}

/// Registry facts for `image` with config USER `user` and the given compressed layer sizes.
ImageFactsMap factsFor(const std::string& image, const std::string& user,
                       std::vector<std::uint64_t> layerSizes = {100}) {
  image::ImageFacts facts;
  facts.ref = image::parseImageRef(image);
  facts.manifestDigest = kDigest;
  facts.imageConfig.user = user;
  for (std::uint64_t size : layerSizes) facts.layers.push_back({"", kDigest, size});
  ImageFactsMap map;
  map[facts.ref].facts = facts;
  return map;
}

RuleResult onlyWithFacts(const Policy& policy, const AdmissionRequest& request,
                         const ImageFactsMap& facts) {
  const auto results = evaluateRequest(PolicySet{{policy}}, request, facts);
  EXPECT_EQ(results.size(), 1u);
  return results.empty() ? RuleResult{} : results.front();
}

TEST(RunAsNonRoot, NothingSetAndNoFactsIsAnErrorUnderDeny) {
  const RuleResult r = onlyFor("runAsNonRoot: {}", container("app", "nginx"));
  EXPECT_EQ(r.status, RuleStatus::kError);
  EXPECT_THAT(r.message, HasSubstr("no registry facts were fetched for docker.io/library/nginx"));
  EXPECT_THAT(r.remediation, HasSubstr("onFetchError: Allow"));
}

TEST(RunAsNonRoot, NothingSetAndNoFactsWarnsUnderAllow) {
  Policy policy = policyWith("runAsNonRoot: {}");
  policy.onFetchError = OnFetchError::kAllow;
  const RuleResult r = only(policy, podRequest({container("app", "nginx")}));
  EXPECT_EQ(r.status, RuleStatus::kWarning);
  EXPECT_THAT(r.message, HasSubstr("not checked"));
}

TEST(RunAsNonRoot, FetchErrorIsReportedVerbatim) {
  ImageFactsMap facts;
  facts[image::parseImageRef("docker.io/library/nginx:latest")].error =
      "cannot fetch docker.io/library/nginx: HTTP 503";
  const RuleResult r =
      onlyWithFacts(policyWith("runAsNonRoot: {}"), podRequest({container("app", "nginx")}), facts);
  EXPECT_EQ(r.status, RuleStatus::kError);
  EXPECT_EQ(r.message, "cannot fetch docker.io/library/nginx: HTTP 503");
}

TEST(RunAsNonRoot, ImageUserDecidesWhenThePodLeavesItOpen) {
  const auto verdict = [](const std::string& user) {
    return onlyWithFacts(policyWith("runAsNonRoot: {}"), podRequest({container("app", "nginx:1")}),
                         factsFor("nginx:1", user));
  };
  for (const char* root : {"", "root", "0", "0:0", "root:root", "00"}) {
    const RuleResult r = verdict(root);
    EXPECT_EQ(r.status, RuleStatus::kFail) << root;
    EXPECT_THAT(r.message, HasSubstr("runs as root")) << root;
    EXPECT_THAT(r.remediation, HasSubstr("USER 65532:65532")) << root;
  }
  for (const char* nonRoot : {"1000", "65532:65532", "1:0"}) {
    EXPECT_EQ(verdict(nonRoot).status, RuleStatus::kPass) << nonRoot;
  }
  const RuleResult named = verdict("app");
  EXPECT_EQ(named.status, RuleStatus::kError);
  EXPECT_THAT(named.message, HasSubstr("USER \"app\" is a name"));
}

TEST(RunAsNonRoot, ImageUserIsNotNeededWhenThePodsUidDecides) {
  Container byUid = container("app", "nginx:1");
  byUid.securityContext.runAsUser = 1000;
  Container byFlag = container("b", "nginx:2");
  byFlag.securityContext.runAsNonRoot = true;
  Container open = container("c", "nginx:3");
  const PolicySet set{{policyWith("runAsNonRoot: {}")}};
  // runAsNonRoot: true leaves the UID to the image, whose USER the kubelet will check.
  EXPECT_THAT(imagesNeedingFacts(set, podRequest({byUid, byFlag, open})),
              ::testing::ElementsAre("docker.io/library/nginx:2", "docker.io/library/nginx:3"));
  // Root by the image's USER is overridden by the pod's UID.
  EXPECT_EQ(onlyWithFacts(policyWith("runAsNonRoot: {}"), podRequest({byUid}),
                          factsFor("nginx:1", "root"))
                .status,
            RuleStatus::kPass);
}

TEST(RunAsNonRoot, RunAsNonRootTrueWithoutUidPredictsTheKubelet) {
  AdmissionRequest request = podRequest({container("app", "nginx")});
  podOf(request).securityContext.runAsNonRoot = true;
  EXPECT_EQ(
      onlyWithFacts(policyWith("runAsNonRoot: {}"), request, factsFor("nginx", "1000")).status,
      RuleStatus::kPass);
  Container c = container("app", "nginx");
  c.securityContext.runAsNonRoot = true;
  const RuleResult named =
      onlyWithFacts(policyWith("runAsNonRoot: {}"), podRequest({c}), factsFor("nginx", "nginx"));
  EXPECT_EQ(named.status, RuleStatus::kFail);
  EXPECT_THAT(named.message, HasSubstr("image has non-numeric user (nginx), cannot verify user is "
                                       "non-root"));
  const RuleResult root =
      onlyWithFacts(policyWith("runAsNonRoot: {}"), podRequest({c}), factsFor("nginx", ""));
  EXPECT_EQ(root.status, RuleStatus::kFail);
  EXPECT_THAT(root.message, HasSubstr("container has runAsNonRoot and image will run as root"));
}

TEST(RunAsNonRoot, ContainerRunAsNonRootFalseOverridesPodTrue) {
  Container c = container("app", "nginx");
  c.securityContext.runAsNonRoot = false;
  AdmissionRequest request = podRequest({c});
  podOf(request).securityContext.runAsNonRoot = true;
  const RuleResult r =
      onlyWithFacts(policyWith("runAsNonRoot: {}"), request, factsFor("nginx", "0"));
  EXPECT_EQ(r.status, RuleStatus::kFail);
  EXPECT_THAT(r.message, HasSubstr("securityContext.runAsNonRoot is false and runAsUser is not "
                                   "set"));
}

TEST(RunAsNonRoot, PodRunAsNonRootFalseIsNamed) {
  AdmissionRequest request = podRequest({container("app", "nginx")});
  podOf(request).securityContext.runAsNonRoot = false;
  EXPECT_THAT(
      onlyWithFacts(policyWith("runAsNonRoot: {}"), request, factsFor("nginx", "root")).message,
      HasSubstr("the pod's spec.securityContext.runAsNonRoot is false"));
}

TEST(MaxImageSize, SumOfLayerSizesAgainstTheLimit) {
  const Policy policy = policyWith("maxImageSize: {compressed: \"1000\"}");
  const AdmissionRequest request = podRequest({container("app", "ghcr.io/acme/app:1")});
  EXPECT_EQ(onlyWithFacts(policy, request, factsFor("ghcr.io/acme/app:1", "1", {400, 600})).status,
            RuleStatus::kPass);
  const RuleResult r =
      onlyWithFacts(policy, request, factsFor("ghcr.io/acme/app:1", "1", {400, 601}));
  EXPECT_EQ(r.status, RuleStatus::kFail);
  EXPECT_THAT(r.message, HasSubstr("1001 B compressed (2 layers), over the limit of 1000"));
  EXPECT_THAT(r.remediation, HasSubstr("multi-stage"));
  const PolicySet set{{policy}};
  EXPECT_THAT(imagesNeedingFacts(set, request), ::testing::ElementsAre("ghcr.io/acme/app:1"));
}

TEST(MaxImageSize, MissingFactsFollowOnFetchError) {
  Policy policy = policyWith("maxImageSize: {compressed: \"1000\"}");
  const AdmissionRequest request = podRequest({container("app", "ghcr.io/acme/app:1")});
  EXPECT_EQ(only(policy, request).status, RuleStatus::kError);
  policy.onFetchError = OnFetchError::kAllow;
  EXPECT_EQ(only(policy, request).status, RuleStatus::kWarning);
}

TEST(EvaluateImage, RunsOnlyImageLevelRulesOfSelectingPolicies) {
  Policy policy;
  policy.name = "p";
  policy.match.images = {"ghcr.io/*"};
  policy.rules = {ruleFrom("runAsNonRoot: {}", "user"),
                  ruleFrom("readOnlyRootFilesystem: {}", "ro"),
                  ruleFrom("hostNamespaces: {}", "hosts"),
                  ruleFrom("imageReference: {disallowTags: [latest]}", "tags"),
                  ruleFrom("maxImageSize: {compressed: \"10\"}", "size")};
  const auto facts = factsFor("ghcr.io/acme/app:1", "root", {50});
  const auto lookup = facts.begin()->second;
  const auto results =
      evaluateImage(PolicySet{{policy}}, image::parseImageRef("ghcr.io/acme/app:1"), lookup);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].rule, "user");
  EXPECT_EQ(results[0].status, RuleStatus::kFail);
  EXPECT_EQ(results[1].rule, "tags");
  EXPECT_EQ(results[1].status, RuleStatus::kPass);
  EXPECT_EQ(results[2].rule, "size");
  EXPECT_EQ(results[2].status, RuleStatus::kFail);
  EXPECT_THAT(evaluateImage(PolicySet{{policy}}, image::parseImageRef("nginx:1"), lookup),
              IsEmpty());
}

// -------------------------------------------------------------------------------------------
// readOnlyRootFilesystem, privileged, allowPrivilegeEscalation

TEST(ReadOnlyRootFilesystem, MustBeExplicitlyTrue) {
  Container c = container("app", "nginx");
  c.securityContext.readOnlyRootFilesystem = true;
  EXPECT_EQ(onlyFor("readOnlyRootFilesystem: {}", c).status, RuleStatus::kPass);

  c.securityContext.readOnlyRootFilesystem = false;
  RuleResult r = onlyFor("readOnlyRootFilesystem: {}", c);
  EXPECT_EQ(r.status, RuleStatus::kFail);
  EXPECT_EQ(r.message,
            "root filesystem is writable: securityContext.readOnlyRootFilesystem is "
            "false");
  EXPECT_THAT(r.remediation, HasSubstr("set securityContext.readOnlyRootFilesystem: true"));

  r = onlyFor("readOnlyRootFilesystem: {}", container("app", "nginx"));
  EXPECT_EQ(r.status, RuleStatus::kFail);
  EXPECT_THAT(r.message, HasSubstr("is not set (Kubernetes defaults it to false)"));
}

TEST(Privileged, PrivilegedContainerFails) {
  Container c = container("app", "nginx");
  c.securityContext.privileged = true;
  const RuleResult r = onlyFor("privileged: {allowed: false}", c);
  EXPECT_EQ(r.status, RuleStatus::kFail);
  EXPECT_THAT(r.message, HasSubstr("runs privileged: securityContext.privileged is true"));
  EXPECT_THAT(r.remediation, HasSubstr("set securityContext.privileged: false"));
}

TEST(Privileged, UnsetOrFalsePassesAndAllowedAlwaysPasses) {
  Container c = container("app", "nginx");
  EXPECT_EQ(onlyFor("privileged: {allowed: false}", c).status, RuleStatus::kPass);
  c.securityContext.privileged = false;
  EXPECT_EQ(onlyFor("privileged: {allowed: false}", c).status, RuleStatus::kPass);
  c.securityContext.privileged = true;
  EXPECT_EQ(onlyFor("privileged: {allowed: true}", c).status, RuleStatus::kPass);
}

TEST(AllowPrivilegeEscalation, UnsetCountsAsTrue) {
  const RuleResult r =
      onlyFor("allowPrivilegeEscalation: {allowed: false}", container("app", "nginx"));
  EXPECT_EQ(r.status, RuleStatus::kFail);
  EXPECT_EQ(r.message,
            "can escalate privileges: securityContext.allowPrivilegeEscalation is not "
            "set (Kubernetes defaults it to true)");
  EXPECT_EQ(r.remediation, "set securityContext.allowPrivilegeEscalation: false");
}

TEST(AllowPrivilegeEscalation, OnlyExplicitFalsePasses) {
  Container c = container("app", "nginx");
  c.securityContext.allowPrivilegeEscalation = true;
  EXPECT_THAT(onlyFor("allowPrivilegeEscalation: {allowed: false}", c).message,
              HasSubstr("is true"));
  c.securityContext.allowPrivilegeEscalation = false;
  EXPECT_EQ(onlyFor("allowPrivilegeEscalation: {allowed: false}", c).status, RuleStatus::kPass);
  c.securityContext.allowPrivilegeEscalation = std::nullopt;
  EXPECT_EQ(onlyFor("allowPrivilegeEscalation: {allowed: true}", c).status, RuleStatus::kPass);
}

TEST(AllowPrivilegeEscalation, PrivilegedContainerCanAlwaysEscalate) {
  Container c = container("app", "nginx");
  c.securityContext.privileged = true;
  c.securityContext.allowPrivilegeEscalation = false;
  const RuleResult r = onlyFor("allowPrivilegeEscalation: {allowed: false}", c);
  EXPECT_EQ(r.status, RuleStatus::kFail);
  EXPECT_THAT(r.message, HasSubstr("a privileged container always can"));
}

TEST(AllowPrivilegeEscalation, SysAdminCanAlwaysEscalateAndIsNamed) {
  for (const char* capability :
       {"SYS_ADMIN", "CAP_SYS_ADMIN", "sys_admin", "Cap_Sys_Admin", "ALL", "all"}) {
    Container c = container("app", "nginx");
    c.securityContext.allowPrivilegeEscalation = false;
    c.securityContext.capabilities.add = {"NET_BIND_SERVICE", capability};
    const RuleResult r = onlyFor("allowPrivilegeEscalation: {allowed: false}", c);
    EXPECT_EQ(r.status, RuleStatus::kFail) << capability;
    EXPECT_EQ(r.message, std::string("can escalate privileges: capability ") + capability +
                             " is added, which always allows it")
        << capability;
    EXPECT_THAT(r.remediation, HasSubstr(std::string("remove ") + capability)) << capability;
  }
}

TEST(AllowPrivilegeEscalation, OtherCapabilitiesAndDroppingDoNotEscalate) {
  Container c = container("app", "nginx");
  c.securityContext.allowPrivilegeEscalation = false;
  c.securityContext.capabilities.add = {"NET_ADMIN", "SYS_ADMINX"};
  c.securityContext.capabilities.drop = {"SYS_ADMIN"};
  EXPECT_EQ(onlyFor("allowPrivilegeEscalation: {allowed: false}", c).status, RuleStatus::kPass);
  c.securityContext.capabilities.add = {"SYS_ADMIN"};
  EXPECT_EQ(onlyFor("allowPrivilegeEscalation: {allowed: true}", c).status, RuleStatus::kPass);
}

// -------------------------------------------------------------------------------------------
// hostNamespaces

TEST(HostNamespaces, OnePodLevelResultWithoutContainer) {
  AdmissionRequest request = podRequest({container("a", "nginx"), container("b", "redis")});
  const auto results = run(policyWith("hostNamespaces: {allowed: false}"), request);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, RuleStatus::kPass);
  EXPECT_EQ(results[0].container, std::nullopt);
  EXPECT_EQ(results[0].containerKind, std::nullopt);
}

TEST(HostNamespaces, NamesEverySharedNamespace) {
  AdmissionRequest request = podRequest({container("a", "nginx")});
  podOf(request).path = "spec.template.spec";
  podOf(request).hostNetwork = true;
  podOf(request).hostPID = true;
  const RuleResult r = only(policyWith("hostNamespaces: {allowed: false}"), request);
  EXPECT_EQ(r.status, RuleStatus::kFail);
  EXPECT_EQ(r.message,
            "shares the host's namespaces: spec.template.spec.hostNetwork is true, "
            "spec.template.spec.hostPID is true");
  EXPECT_EQ(r.remediation,
            "set spec.template.spec.hostNetwork: false and spec.template.spec.hostPID: false (or "
            "remove the field)");
}

TEST(HostNamespaces, HostIpcAloneFailsAndAllowedPasses) {
  AdmissionRequest request = podRequest({container("a", "nginx")});
  podOf(request).hostIPC = true;
  EXPECT_EQ(only(policyWith("hostNamespaces: {allowed: false}"), request).message,
            "shares the host's namespaces: spec.hostIPC is true");
  EXPECT_EQ(only(policyWith("hostNamespaces: {allowed: true}"), request).status, RuleStatus::kPass);
}

// -------------------------------------------------------------------------------------------
// Registries

TEST(AllowedRegistries, NormalizedReferenceMustMatchAPattern) {
  const std::string rule =
      "allowedRegistries: [\"registry.example.com/*\", \"docker.io/library/*\"]";
  EXPECT_EQ(onlyFor(rule, container("a", "registry.example.com/team/app:1")).status,
            RuleStatus::kPass);
  EXPECT_EQ(onlyFor(rule, container("a", "nginx")).status, RuleStatus::kPass);
  const RuleResult r = onlyFor(rule, container("a", "acme/app:2"));
  EXPECT_EQ(r.status, RuleStatus::kFail);
  EXPECT_EQ(r.message,
            "image \"acme/app:2\" (docker.io/acme/app:2) is not from an allowed registry "
            "(allowed: registry.example.com/*, docker.io/library/*)");
  EXPECT_EQ(r.remediation,
            "change image to a reference matching one of: registry.example.com/*, "
            "docker.io/library/*");
}

TEST(AllowedRegistries, LongerHostNameIsNotAllowed) {
  const RuleResult r = onlyFor("allowedRegistries: [\"registry.example.com/*\"]",
                               container("a", "registry.example.com.evil.io/app:1"));
  EXPECT_EQ(r.status, RuleStatus::kFail);
  EXPECT_THAT(r.message, HasSubstr("\"registry.example.com.evil.io/app:1\" is not from"));
}

TEST(DisallowedRegistries, MatchingPatternFailsAndIsNamed) {
  const std::string rule = "disallowedRegistries: [docker.io, \"k8s.gcr.io/*\"]";
  const RuleResult r = onlyFor(rule, container("a", "k8s.gcr.io/pause:3.9"));
  EXPECT_EQ(r.status, RuleStatus::kFail);
  EXPECT_EQ(r.message,
            "image \"k8s.gcr.io/pause:3.9\" is from a disallowed registry (matches "
            "\"k8s.gcr.io/*\")");
  EXPECT_THAT(r.remediation, HasSubstr("matches none of: docker.io, k8s.gcr.io/*"));
  EXPECT_EQ(onlyFor(rule, container("a", "busybox")).status, RuleStatus::kFail);
  EXPECT_EQ(onlyFor(rule, container("a", "registry.k8s.io/pause:3.9")).status, RuleStatus::kPass);
  // Host names compare without case, as DNS does.
  EXPECT_EQ(onlyFor(rule, container("a", "K8S.GCR.IO/pause:3.9")).status, RuleStatus::kFail);
}

// -------------------------------------------------------------------------------------------
// imageReference

TEST(ImageReferenceRule, NoTagNoDigestCountsAsLatest) {
  const RuleResult r = onlyFor("imageReference: {disallowTags: [latest]}", container("a", "nginx"));
  EXPECT_EQ(r.status, RuleStatus::kFail);
  EXPECT_EQ(r.message,
            "image \"nginx\" (docker.io/library/nginx:latest) uses disallowed tag "
            "\"latest\" (implied: the reference has no tag or digest)");
  EXPECT_EQ(r.remediation,
            "set image to a specific version tag or a digest, e.g. "
            "docker.io/library/nginx:<version>");
}

TEST(ImageReferenceRule, ExplicitTagsAreGlobbed) {
  const std::string rule = "imageReference: {disallowTags: [latest, \"dev-*\"]}";
  const RuleResult r = onlyFor(rule, container("a", "nginx:latest"));
  EXPECT_EQ(r.status, RuleStatus::kFail);
  EXPECT_THAT(r.message, Not(HasSubstr("implied")));
  EXPECT_EQ(onlyFor(rule, container("a", "app:dev-42")).status, RuleStatus::kFail);
  EXPECT_EQ(onlyFor(rule, container("a", "app:1.2.3")).status, RuleStatus::kPass);
  EXPECT_EQ(onlyFor(rule, container("a", "app:Latest")).status, RuleStatus::kPass);
}

TEST(ImageReferenceRule, DigestMeansTheTagDoesNotDecide) {
  const std::string rule = "imageReference: {disallowTags: [latest]}";
  EXPECT_EQ(onlyFor(rule, container("a", "nginx@" + kDigest)).status, RuleStatus::kPass);
  EXPECT_EQ(onlyFor(rule, container("a", "nginx:latest@" + kDigest)).status, RuleStatus::kPass);
}

TEST(ImageReferenceRule, RequireDigest) {
  const std::string rule = "imageReference: {requireDigest: true}";
  EXPECT_EQ(onlyFor(rule, container("a", "nginx@" + kDigest)).status, RuleStatus::kPass);
  EXPECT_EQ(onlyFor(rule, container("a", "nginx:1@" + kDigest)).status, RuleStatus::kPass);
  const RuleResult r = onlyFor(rule, container("a", "ghcr.io/acme/app:1"));
  EXPECT_EQ(r.status, RuleStatus::kFail);
  EXPECT_EQ(r.message, "image \"ghcr.io/acme/app:1\" is not pinned by a digest");
  EXPECT_EQ(r.remediation, "pin image by digest, e.g. ghcr.io/acme/app@sha256:<digest>");
}

TEST(ImageReferenceRule, RequireTag) {
  const std::string rule = "imageReference: {requireTag: true}";
  EXPECT_EQ(onlyFor(rule, container("a", "nginx:1.27")).status, RuleStatus::kPass);
  EXPECT_EQ(onlyFor(rule, container("a", "nginx:1.27@" + kDigest)).status, RuleStatus::kPass);
  EXPECT_THAT(onlyFor(rule, container("a", "nginx")).message,
              HasSubstr("does not spell out a tag"));
  EXPECT_EQ(onlyFor(rule, container("a", "nginx@" + kDigest)).status, RuleStatus::kFail);
}

TEST(ImageReferenceRule, SeveralViolationsInOneResult) {
  const RuleResult r =
      onlyFor("imageReference: {disallowTags: [latest], requireDigest: true, requireTag: true}",
              container("a", "ghcr.io/acme/app"));
  EXPECT_EQ(r.status, RuleStatus::kFail);
  EXPECT_EQ(r.message,
            "image \"ghcr.io/acme/app\" (ghcr.io/acme/app:latest) uses disallowed tag "
            "\"latest\" (implied: the reference has no tag or digest) and does not "
            "spell out a tag and is not pinned by a digest");
  EXPECT_THAT(r.remediation, HasSubstr("; add an explicit tag to image"));
  EXPECT_THAT(r.remediation, HasSubstr("; pin image by digest"));
}

TEST(ImageReferenceRule, NothingRequiredPasses) {
  EXPECT_EQ(onlyFor("imageReference: {}", container("a", "nginx")).status, RuleStatus::kPass);
}

// -------------------------------------------------------------------------------------------
// Unparsable images

TEST(InvalidImage, ImageRulesReportErrorAndOtherRulesStillRun) {
  Policy policy = policyWith("allowedRegistries: [\"*\"]", "registries");
  policy.rules.push_back(ruleFrom("imageReference: {disallowTags: [latest]}", "tags"));
  policy.rules.push_back(ruleFrom("disallowedRegistries: [k8s.gcr.io]", "no-gcr"));
  policy.rules.push_back(ruleFrom("runAsNonRoot: {}", "non-root"));
  Container c = container("app", "Registry/App:1");
  c.securityContext.runAsUser = 1000;
  const auto results = run(policy, podRequest({c}));
  ASSERT_EQ(results.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(results[i].status, RuleStatus::kError) << results[i].rule;
    EXPECT_EQ(results[i].message,
              "invalid image reference \"Registry/App:1\": the repository name must be lowercase");
    EXPECT_THAT(results[i].remediation, HasSubstr("set image to a valid reference"));
  }
  EXPECT_EQ(results[3].rule, "non-root");
  EXPECT_EQ(results[3].status, RuleStatus::kPass);
}

TEST(InvalidImage, DigestTheRuntimeCannotPullIsAnErrorNotAPin) {
  const std::string image = "ghcr.io/acme/app@md5:" + std::string(32, 'a');
  const RuleResult r = onlyFor("imageReference: {requireDigest: true}", container("a", image));
  EXPECT_EQ(r.status, RuleStatus::kError);
  EXPECT_THAT(r.message, HasSubstr("digest algorithm \"md5\" cannot be pulled"));
}

TEST(InvalidImage, StaysInScopeDespiteImageGlobs) {
  Policy policy = policyWith("runAsNonRoot: {}");
  policy.match.images = {"registry.example.com/*"};
  policy.match.excludeImages = {"*"};
  const auto results = run(policy, podRequest({container("app", "")}));
  ASSERT_EQ(results.size(), 1u);
  // The image's USER would decide, and the image cannot even be named: an error, never a pass.
  EXPECT_EQ(results[0].status, RuleStatus::kError);
}

// -------------------------------------------------------------------------------------------
// Container kinds and image scoping

TEST(Containers, InitAndEphemeralContainersAreEvaluatedAlike) {
  AdmissionRequest request = podRequest({
      hardened("app"),
      container("setup", "busybox", ContainerKind::kInitContainer),
      container("debug", "busybox", ContainerKind::kEphemeralContainer),
  });
  const auto results = run(policyWith("allowPrivilegeEscalation: {allowed: false}"), request);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].status, RuleStatus::kPass);
  EXPECT_EQ(results[1].container, "setup");
  EXPECT_EQ(results[1].containerKind, ContainerKind::kInitContainer);
  EXPECT_EQ(results[1].status, RuleStatus::kFail);
  EXPECT_EQ(results[2].container, "debug");
  EXPECT_EQ(results[2].containerKind, ContainerKind::kEphemeralContainer);
  EXPECT_EQ(results[2].status, RuleStatus::kFail);
}

TEST(Containers, ImagesGlobSelectsContainers) {
  Policy policy = policyWith("privileged: {allowed: false}");
  policy.match.images = {"ghcr.io/acme/*"};
  const auto results =
      run(policy, podRequest({container("a", "nginx"), container("b", "ghcr.io/acme/x:1")}));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].container, "b");
}

TEST(Containers, ExcludeImagesRemovesContainers) {
  Policy policy = policyWith("readOnlyRootFilesystem: {}");
  policy.match.excludeImages = {"docker.io/library/busybox:*"};
  const auto results =
      run(policy, podRequest({container("a", "busybox:1.36"), container("b", "nginx:1")}));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].container, "b");
}

TEST(Containers, PodLevelRulesNeedAContainerInScope) {
  Policy policy = policyWith("hostNamespaces: {allowed: false}");
  policy.match.images = {"ghcr.io/acme/*"};
  AdmissionRequest request = podRequest({container("a", "nginx")});
  podOf(request).hostNetwork = true;
  EXPECT_THAT(run(policy, request), IsEmpty());
  podOf(request).containers.push_back(container("b", "ghcr.io/acme/x:1"));
  EXPECT_EQ(only(policy, request).status, RuleStatus::kFail);
}

TEST(Containers, ResultsCarryPolicyRuleAndAction) {
  Policy policy = policyWith("privileged: {allowed: false}", "no-privileged");
  policy.name = "baseline";
  policy.action = Action::kWarn;
  policy.rules.push_back(ruleFrom("hostNamespaces: {allowed: false}", "host"));
  const auto results = run(policy, podRequest({hardened("a"), hardened("b")}));
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].policy, "baseline");
  EXPECT_EQ(results[0].rule, "no-privileged");
  EXPECT_EQ(results[0].action, Action::kWarn);
  EXPECT_EQ(results[0].container, "a");
  EXPECT_EQ(results[1].container, "b");
  EXPECT_EQ(results[2].rule, "host");
  EXPECT_EQ(results[2].container, std::nullopt);
}

TEST(Containers, RequestWithoutPodSpecHasNoResults) {
  AdmissionRequest request = podRequest({container("a", "nginx")});
  request.object->podSpec.reset();
  EXPECT_THAT(run(policyWith("privileged: {allowed: false}"), request), IsEmpty());
  request.object.reset();
  EXPECT_THAT(run(policyWith("privileged: {allowed: false}"), request), IsEmpty());
}

// -------------------------------------------------------------------------------------------
// Object matching: namespaces and objectSelector

TEST(PolicyMatchesObject, NamespaceGlobs) {
  Policy policy = policyWith("privileged: {allowed: false}");
  policy.match.namespaces = {"prod-*", "default"};
  EXPECT_TRUE(matchesRequest(policy, podRequest({}, "prod-eu")));
  EXPECT_TRUE(matchesRequest(policy, podRequest({}, "default")));
  EXPECT_FALSE(matchesRequest(policy, podRequest({}, "staging")));
  EXPECT_FALSE(matchesRequest(policy, podRequest({}, "my-prod-eu")));
}

TEST(PolicyMatchesObject, ExcludeNamespacesWins) {
  Policy policy = policyWith("privileged: {allowed: false}");
  policy.match.excludeNamespaces = {"kube-*"};
  EXPECT_TRUE(matchesRequest(policy, podRequest({}, "default")));
  EXPECT_FALSE(matchesRequest(policy, podRequest({}, "kube-system")));
  AdmissionRequest request = podRequest({container("a", "nginx")}, "kube-system");
  EXPECT_THAT(run(policy, request), IsEmpty());
}

TEST(PolicyMatchesObject, ObjectSelectorUsesTheObjectsOwnLabels) {
  Policy policy = policyWith("privileged: {allowed: false}");
  policy.match.objectSelector.matchLabels = {{"tier", "web"}};
  AdmissionRequest request = podRequest({container("a", "nginx")});
  request.kind = "Deployment";
  request.kindGroup = "apps";
  request.object->kind = "Deployment";
  EXPECT_FALSE(matchesRequest(policy, request));
  request.object->labels = {{"tier", "web"}, {"app", "shop"}};
  EXPECT_TRUE(matchesRequest(policy, request));
  request.object->labels = {{"tier", "db"}};
  EXPECT_FALSE(matchesRequest(policy, request));
}

TEST(PolicyMatchesObject, EmptySelectorMatchesUnlabelledObjects) {
  EXPECT_TRUE(matchesRequest(policyWith("privileged: {allowed: false}"), podRequest({})));
}

// -------------------------------------------------------------------------------------------
// Label selector semantics

TEST(SelectorMatches, ExpressionSelectorGatesEvaluation) {
  Policy policy = policyWith("privileged: {allowed: false}");
  policy.match.objectSelector.matchExpressions = {
      {"imagegate.dev/skip", Operator::kDoesNotExist, {}}};
  AdmissionRequest request = podRequest({container("a", "nginx")});
  EXPECT_EQ(run(policy, request).size(), 1u);
  request.object->labels = {{"imagegate.dev/skip", "true"}};
  EXPECT_THAT(run(policy, request), IsEmpty());
}

TEST(Evaluate, EveryMatchingPolicyInOrder) {
  Policy first = policyWith("privileged: {allowed: false}");
  first.name = "first";
  Policy skipped = policyWith("privileged: {allowed: false}");
  skipped.name = "skipped";
  skipped.match.namespaces = {"other"};
  Policy second = policyWith("readOnlyRootFilesystem: {}");
  second.name = "second";
  const auto results =
      evaluateRequest(PolicySet{{first, skipped, second}}, podRequest({container("a", "nginx")}));
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].policy, "first");
  EXPECT_EQ(results[1].policy, "second");
}

}  // namespace
}  // namespace imagegate::policy
