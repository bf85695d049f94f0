#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "policy/loader.h"
#include "service/admission_service.h"

namespace imagegate::service {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

/// A rule read by the loader from a one-line rule type and body, e.g. "runAsNonRoot: {}".
policy::Rule rule(const std::string& name, const std::string& ruleYaml) {
  const std::string yaml =
      "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: p}\n"
      "spec:\n  rules:\n    - name: " +
      name + "\n      " + ruleYaml + "\n";
  return policy::loadPoliciesFromString(yaml, "test.yaml").policies.front().rules.front();
}

policy::Policy makePolicy(std::string name, policy::Action action,
                          std::vector<policy::Rule> rules) {
  policy::Policy p;
  p.name = std::move(name);
  p.action = action;
  p.rules = std::move(rules);
  return p;
}

AdmissionService serviceWith(std::vector<policy::Policy> policies) {
  auto set = std::make_shared<policy::PolicySet>();
  set->policies = std::move(policies);
  return AdmissionService(set, ServiceOptions{});
}

json podReview(json spec, std::string operation = "CREATE", bool dryRun = false) {
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", "uid-42"},
            {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
            {"namespace", "shop"},
            {"name", "web"},
            {"operation", operation},
            {"dryRun", dryRun},
            {"object", {{"metadata", {{"name", "web"}, {"namespace", "shop"}}}, {"spec", spec}}}}}};
}

json rootPod() {
  return {
      {"containers",
       {{{"name", "app"}, {"image", "nginx:1.27"}, {"securityContext", {{"runAsUser", 0}}}}}},
      {"initContainers",
       {{{"name", "setup"}, {"image", "busybox:1.36"}, {"securityContext", {{"runAsUser", 0}}}}}}};
}

json response(const ReviewOutcome& outcome) {
  return json::parse(outcome.reply.body).at("response");
}

const Deadline kDeadline = Deadline::after(std::chrono::seconds(10));

TEST(AdmissionService, UnreadableBodyIsAnHttpError) {
  const auto outcome = serviceWith({}).review("not json", kDeadline);
  EXPECT_FALSE(outcome.answered);
  EXPECT_EQ(outcome.reply.status, 400u);
  EXPECT_THAT(outcome.reply.body, HasSubstr("not valid JSON"));
}

TEST(AdmissionService, MalformedRequestIsDeniedWithTheProblem) {
  const auto outcome = serviceWith({}).review(podReview({{"containers", "x"}}).dump(), kDeadline);
  ASSERT_TRUE(outcome.answered);
  EXPECT_FALSE(outcome.allowed);
  const json r = response(outcome);
  EXPECT_EQ(r["uid"], "uid-42");
  EXPECT_EQ(r["status"]["code"], 400);
  EXPECT_THAT(r["status"]["message"].get<std::string>(),
              HasSubstr("request.object.spec.containers must be an array"));
}

TEST(AdmissionService, EnforceDenialNamesPolicyRuleContainerAndFix) {
  auto service = serviceWith(
      {makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")})});
  const auto outcome = service.review(podReview(rootPod()).dump(), kDeadline);
  EXPECT_FALSE(outcome.allowed);
  EXPECT_EQ(outcome.violations, 2u);
  const json r = response(outcome);
  EXPECT_EQ(r["uid"], "uid-42");
  EXPECT_EQ(r["status"]["code"], 403);
  const std::string message = r["status"]["message"];
  EXPECT_THAT(message, HasSubstr("Pod \"shop/web\""));
  EXPECT_THAT(message, HasSubstr("policy \"prod\" rule \"non-root\""));
  EXPECT_THAT(message, HasSubstr("container \"app\""));
  EXPECT_THAT(message, HasSubstr("init container \"setup\""));
  EXPECT_THAT(message, HasSubstr("fix:"));
}

TEST(AdmissionService, AuditAllowsWithWarningsAndAnnotations) {
  auto service = serviceWith({makePolicy("hardening", policy::Action::kAudit,
                                         {rule("ro-rootfs", "readOnlyRootFilesystem: {}")})});
  const auto outcome = service.review(podReview(rootPod()).dump(), kDeadline);
  EXPECT_TRUE(outcome.allowed);
  const json r = response(outcome);
  EXPECT_EQ(r["allowed"], true);
  ASSERT_EQ(r["warnings"].size(), 2u);
  EXPECT_THAT(r["warnings"][0].get<std::string>(), HasSubstr("audit hardening/ro-rootfs"));
  EXPECT_THAT(r["auditAnnotations"]["hardening"].get<std::string>(),
              HasSubstr("container \"app\""));
}

TEST(AdmissionService, WarnGivesWarningsOnly) {
  auto service = serviceWith({makePolicy("soft", policy::Action::kWarn,
                                         {rule("ro-rootfs", "readOnlyRootFilesystem: {}")})});
  const json r = response(service.review(podReview(rootPod()).dump(), kDeadline));
  EXPECT_EQ(r["allowed"], true);
  EXPECT_EQ(r["warnings"].size(), 2u);
  EXPECT_FALSE(r.contains("auditAnnotations"));
}

TEST(AdmissionService, AuditWarningsAccompanyAnEnforceDenial) {
  auto service = serviceWith(
      {makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")}),
       makePolicy("hardening", policy::Action::kAudit,
                  {rule("ro-rootfs", "readOnlyRootFilesystem: {}")})});
  const json r = response(service.review(podReview(rootPod()).dump(), kDeadline));
  EXPECT_EQ(r["allowed"], false);
  EXPECT_EQ(r["warnings"].size(), 2u);
  EXPECT_THAT(r["status"]["message"].get<std::string>(), Not(HasSubstr("ro-rootfs")));
}

TEST(AdmissionService, DryRunGetsTheSameVerdict) {
  auto service = serviceWith(
      {makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")})});
  const json normal = response(service.review(podReview(rootPod()).dump(), kDeadline));
  const json dry = response(service.review(podReview(rootPod(), "CREATE", true).dump(), kDeadline));
  EXPECT_EQ(normal, dry);
}

TEST(AdmissionService, DeleteAndConnectAreAllowedUntouched) {
  auto service = serviceWith(
      {makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")})});
  for (const char* op : {"DELETE", "CONNECT"}) {
    const json r = response(service.review(podReview(rootPod(), op).dump(), kDeadline));
    EXPECT_EQ(r["allowed"], true) << op;
    EXPECT_FALSE(r.contains("warnings")) << op;
  }
}

TEST(AdmissionService, UpdateIsEvaluated) {
  auto service = serviceWith(
      {makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")})});
  EXPECT_FALSE(service.review(podReview(rootPod(), "UPDATE").dump(), kDeadline).allowed);
}

TEST(AdmissionService, OtherKindsAreAllowedUntouched) {
  auto service = serviceWith(
      {makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")})});
  json body = podReview(rootPod());
  body["request"]["kind"] = {{"group", ""}, {"version", "v1"}, {"kind", "Service"}};
  EXPECT_TRUE(service.review(body.dump(), kDeadline).allowed);
}

TEST(AdmissionService, DenialMessageIsBounded) {
  json containers = json::array();
  for (int i = 0; i < 200; ++i) {
    containers.push_back({{"name", "c" + std::to_string(i)}, {"image", "x:1"}});
  }
  auto service = serviceWith(
      {makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")})});
  const json r =
      response(service.review(podReview({{"containers", containers}}).dump(), kDeadline));
  const std::string message = r["status"]["message"];
  EXPECT_THAT(message, HasSubstr("200 violations"));
  EXPECT_THAT(message, HasSubstr("and 180 more"));
  EXPECT_LT(message.size(), 8192u);
}

TEST(AdmissionService, UnparsableImageUnderEnforceIsDenied) {
  auto service =
      serviceWith({makePolicy("regs", policy::Action::kEnforce,
                              {rule("registries", "allowedRegistries: [\"ghcr.io/*\"]")})});
  const auto outcome = service.review(
      podReview({{"containers", {{{"name", "app"}, {"image", "Bad Image!!"}}}}}).dump(), kDeadline);
  EXPECT_FALSE(outcome.allowed);
  EXPECT_THAT(response(outcome)["status"]["message"].get<std::string>(),
              HasSubstr("could not be evaluated"));
}

}  // namespace
}  // namespace imagegate::service

#include "../testutil/fake_registry.h"

namespace imagegate::service {
namespace {

json openPod(std::vector<std::string> images) {
  json containers = json::array();
  for (std::size_t i = 0; i < images.size(); ++i) {
    containers.push_back({{"name", "c" + std::to_string(i)}, {"image", images[i]}});
  }
  return {{"containers", containers}};
}

AdmissionService serviceWithRegistry(std::vector<policy::Policy> policies,
                                     std::shared_ptr<testutil::FakeRegistry> registry) {
  auto set = std::make_shared<policy::PolicySet>();
  set->policies = std::move(policies);
  ServiceOptions options;
  options.registry = std::move(registry);
  options.answerMargin = std::chrono::milliseconds(0);
  return AdmissionService(set, std::move(options));
}

TEST(AdmissionServiceImageFacts, ImageUserDecidesTheVerdict) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->add("ghcr.io/acme/root:1", "root");
  fake->add("ghcr.io/acme/app:1", "65532");
  auto service = serviceWithRegistry(
      {makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")})}, fake);
  EXPECT_TRUE(service.review(podReview(openPod({"ghcr.io/acme/app:1"})).dump(), kDeadline).allowed);
  const auto denied = service.review(podReview(openPod({"ghcr.io/acme/root:1"})).dump(), kDeadline);
  EXPECT_FALSE(denied.allowed);
  EXPECT_THAT(response(denied)["status"]["message"].get<std::string>(),
              HasSubstr("the image's USER is \"root\""));
}

TEST(AdmissionServiceImageFacts, FetchErrorDeniesWithTheRegistryMessageUnderDeny) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  auto service = serviceWithRegistry(
      {makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")})}, fake);
  const auto outcome =
      service.review(podReview(openPod({"ghcr.io/acme/gone:1"})).dump(), kDeadline);
  EXPECT_FALSE(outcome.allowed);
  EXPECT_THAT(response(outcome)["status"]["message"].get<std::string>(),
              HasSubstr("manifest unknown (HTTP 404)"));
}

TEST(AdmissionServiceImageFacts, FetchErrorAllowsWithAWarningUnderAllow) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  auto policy =
      makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")});
  policy.onFetchError = policy::OnFetchError::kAllow;
  auto service = serviceWithRegistry({policy}, fake);
  const auto outcome =
      service.review(podReview(openPod({"ghcr.io/acme/gone:1"})).dump(), kDeadline);
  EXPECT_TRUE(outcome.allowed);
  const json r = response(outcome);
  ASSERT_EQ(r["warnings"].size(), 1u);
  EXPECT_THAT(r["warnings"][0].get<std::string>(), HasSubstr("not checked"));
}

TEST(AdmissionServiceImageFacts, ContainersOfOnePodAreFetchedConcurrently) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  std::vector<std::string> images;
  for (int i = 0; i < 10; ++i) {
    images.push_back("ghcr.io/acme/app" + std::to_string(i) + ":1");
    fake->add(images.back(), "1000");
  }
  // Each fetch waits until all ten are in flight: one after another would time out instead.
  fake->holdUntilConcurrent(10);
  auto service = serviceWithRegistry(
      {makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")})}, fake);
  const auto outcome = service.review(podReview(openPod(images)).dump(), kDeadline);
  EXPECT_TRUE(outcome.allowed) << outcome.reply.body;
  EXPECT_EQ(fake->maxConcurrent(), 10);
  EXPECT_EQ(fake->calls(), 10);
}

TEST(AdmissionServiceImageFacts, DuplicateImagesAreFetchedOnce) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->add("ghcr.io/acme/app:1", "1000");
  auto service = serviceWithRegistry(
      {makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")})}, fake);
  service.review(podReview(openPod({"ghcr.io/acme/app:1", "ghcr.io/acme/app:1"})).dump(),
                 kDeadline);
  EXPECT_EQ(fake->calls(), 1);
}

TEST(AdmissionServiceImageFacts, SlowRegistryIsCutOffAtTheDeadline) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->add("ghcr.io/acme/app:1", "1000");
  fake->holdUntilConcurrent(2);  // never reached: the single fetch waits out its deadline
  auto service = serviceWithRegistry(
      {makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")})}, fake);
  const auto outcome = service.review(podReview(openPod({"ghcr.io/acme/app:1"})).dump(),
                                      Deadline::after(std::chrono::milliseconds(200)));
  ASSERT_TRUE(outcome.answered);
  // Either the fetch gave up at its deadline or the service stopped waiting: both deny under Deny.
  EXPECT_FALSE(outcome.allowed);
}

}  // namespace
}  // namespace imagegate::service

#include <future>
#include <thread>

namespace imagegate::service {
namespace {

TEST(AdmissionServiceAsync, AnswersInlineWhenNoRegistryRoundTripIsNeeded) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  auto service = serviceWithRegistry(
      {makePolicy("prod", policy::Action::kEnforce, {rule("ro", "readOnlyRootFilesystem: {}")})},
      fake);
  std::optional<ReviewOutcome> got;
  std::thread::id answeredOn;
  service.reviewAsync(podReview(openPod({"ghcr.io/acme/app:1"})).dump(), kDeadline,
                      [&](ReviewOutcome outcome) {
                        got = std::move(outcome);
                        answeredOn = std::this_thread::get_id();
                      });
  ASSERT_TRUE(got.has_value());  // before reviewAsync returned
  EXPECT_EQ(answeredOn, std::this_thread::get_id());
  EXPECT_FALSE(got->allowed);
  EXPECT_EQ(fake->calls(), 0);
}

TEST(AdmissionServiceAsync, WaitsForRegistriesOffTheCallingThread) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->add("ghcr.io/acme/root:1", "root");
  auto service = serviceWithRegistry(
      {makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")})}, fake);
  std::promise<std::pair<ReviewOutcome, std::thread::id>> answer;
  service.reviewAsync(podReview(openPod({"ghcr.io/acme/root:1"})).dump(), kDeadline,
                      [&](ReviewOutcome outcome) {
                        answer.set_value({std::move(outcome), std::this_thread::get_id()});
                      });
  auto [outcome, thread] = answer.get_future().get();
  EXPECT_NE(thread, std::this_thread::get_id());
  EXPECT_FALSE(outcome.allowed);
  EXPECT_THAT(response(outcome)["status"]["message"].get<std::string>(),
              HasSubstr("the image's USER is \"root\""));
}

TEST(AdmissionServiceAsync, BadInputIsAnsweredInline) {
  auto service = serviceWith({});
  bool answered = false;
  service.reviewAsync("not json", kDeadline, [&](ReviewOutcome outcome) {
    answered = true;
    EXPECT_EQ(outcome.reply.status, 400u);
  });
  EXPECT_TRUE(answered);
}

}  // namespace
}  // namespace imagegate::service
