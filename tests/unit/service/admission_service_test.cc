#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "policy/loader.h"
#include "service/admission_service.h"

namespace imagegate::service {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
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
  // One warning for the rule, naming both containers it concerns.
  ASSERT_EQ(r["warnings"].size(), 1u);
  EXPECT_THAT(r["warnings"][0].get<std::string>(),
              HasSubstr("audit hardening/ro-rootfs: containers app, setup: "));
  EXPECT_THAT(r["auditAnnotations"]["hardening"].get<std::string>(),
              HasSubstr("container \"app\""));
}

TEST(AdmissionService, EachReviewLogsOneJsonLineWithItsFindingsAndDuration) {
  auto service = serviceWith({makePolicy("soft", policy::Action::kWarn,
                                         {rule("ro-rootfs", "readOnlyRootFilesystem: {}")})});
  ::testing::internal::CaptureStderr();
  service.review(podReview(rootPod()).dump(), kDeadline);
  const std::string logged = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(std::count(logged.begin(), logged.end(), '\n'), 1) << logged;
  const json line = json::parse(logged);
  EXPECT_EQ(line["msg"], "admission review");
  EXPECT_EQ(line["level"], "info");
  EXPECT_EQ(line["uid"], "uid-42");
  EXPECT_EQ(line["namespace"], "shop");
  EXPECT_EQ(line["operation"], "CREATE");
  EXPECT_EQ(line["allowed"], true);
  EXPECT_EQ(line["imageFacts"], "none");
  EXPECT_GE(line["durationMs"].get<double>(), 0.0);
  ASSERT_EQ(line["findings"].size(), 2u);
  EXPECT_EQ(line["findings"][0]["rule"], "ro-rootfs");
  EXPECT_THAT(line["findings"][0]["remediation"].get<std::string>(),
              HasSubstr("readOnlyRootFilesystem: true"));
}

TEST(AdmissionService, WarnGivesWarningsOnly) {
  auto service = serviceWith({makePolicy("soft", policy::Action::kWarn,
                                         {rule("ro-rootfs", "readOnlyRootFilesystem: {}")})});
  const json r = response(service.review(podReview(rootPod()).dump(), kDeadline));
  EXPECT_EQ(r["allowed"], true);
  EXPECT_EQ(r["warnings"].size(), 1u);
  EXPECT_FALSE(r.contains("auditAnnotations"));
}

TEST(AdmissionService, AuditWarningsAccompanyAnEnforceDenial) {
  auto service = serviceWith(
      {makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")}),
       makePolicy("hardening", policy::Action::kAudit,
                  {rule("ro-rootfs", "readOnlyRootFilesystem: {}")})});
  const json r = response(service.review(podReview(rootPod()).dump(), kDeadline));
  EXPECT_EQ(r["allowed"], false);
  EXPECT_EQ(r["warnings"].size(), 1u);
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

#include "testutil/fake_registry.h"

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
  options.facts.registry = std::move(registry);
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
  auto set = std::make_shared<policy::PolicySet>();
  set->policies = {
      makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")})};
  ServiceOptions options;
  options.facts.registry = fake;
  options.facts.perRegistry = 10;  // all on one host, which the default limit would hold to 4
  AdmissionService service(set, std::move(options));
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

namespace imagegate::service {
namespace {

using namespace std::chrono_literals;

policy::Policy nonRootPolicy() {
  return makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")});
}

std::string podOf(std::vector<std::string> images) { return podReview(openPod(images)).dump(); }

std::vector<std::string> imagesOn(const std::string& host, int count) {
  std::vector<std::string> images;
  for (int i = 0; i < count; ++i) images.push_back(host + "/acme/app" + std::to_string(i) + ":1");
  return images;
}

std::string denialOf(const ReviewOutcome& outcome) {
  return response(outcome)["status"]["message"].get<std::string>();
}

/// Starts a review in the background; its answer arrives in the returned future.
std::future<ReviewOutcome> startReview(const AdmissionService& service, const std::string& body,
                                       Deadline deadline) {
  auto answer = std::make_shared<std::promise<ReviewOutcome>>();
  service.reviewAsync(body, deadline,
                      [answer](ReviewOutcome outcome) { answer->set_value(std::move(outcome)); });
  return answer->get_future();
}

TEST(AdmissionServiceFetchScheduling, AHangingRegistryDoesNotStarveAnother) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->holdUntilReleased("hang.example");
  fake->answerEveryImage("65532", 100);
  auto service = serviceWithRegistry({nonRootPolicy()}, fake);
  testutil::ReleaseOnExit release(*fake);
  // More hanging images than there are fetch threads: without a per-host limit they take all.
  auto hanging = startReview(service, podOf(imagesOn("hang.example", 20)), Deadline::after(30s));
  ASSERT_TRUE(fake->waitUntilInFlight(4));

  const auto outcome = service.review(podOf({"ghcr.io/acme/app:1"}), Deadline::after(5s));
  EXPECT_TRUE(outcome.allowed) << outcome.reply.body;
  EXPECT_EQ(fake->callsFor("ghcr.io/acme/app:1"), 1);
  EXPECT_EQ(fake->maxConcurrentForHost("hang.example"), 4);  // the default per-host limit
  fake->releaseHeldFetches();
  EXPECT_TRUE(hanging.get().allowed);
}

TEST(AdmissionServiceFetchScheduling, ARegistryThatJustFailedIsNotAskedAgain) {
  for (const auto kind :
       {registry::FetchError::Kind::kUnreachable, registry::FetchError::Kind::kServerError}) {
    auto fake = std::make_shared<testutil::FakeRegistry>();
    fake->failHost("down.example", kind, "cannot connect to down.example:443: connection refused");
    auto service = serviceWithRegistry({nonRootPolicy()}, fake);
    const auto first = service.review(podOf({"down.example/acme/a:1"}), Deadline::after(10s));
    EXPECT_THAT(denialOf(first), HasSubstr("connection refused"));

    const auto second = service.review(podOf({"down.example/acme/b:1", "down.example/acme/c:1"}),
                                       Deadline::after(10s));
    EXPECT_FALSE(second.allowed);
    const std::string message = denialOf(second);
    EXPECT_THAT(message, HasSubstr("cannot fetch down.example/acme/b:1 from down.example: "
                                   "registry down.example failed"));
    EXPECT_THAT(message,
                HasSubstr("s ago: cannot connect to down.example:443: connection refused"));
    EXPECT_THAT(message, HasSubstr("not retried for another"));
    EXPECT_EQ(fake->callsForHost("down.example"), 1);
  }
}

TEST(AdmissionServiceFetchScheduling, ARegistryThatTimedOutIsNotAskedAgain) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->holdUntilReleased("hang.example");
  auto service = serviceWithRegistry({nonRootPolicy()}, fake);
  testutil::ReleaseOnExit release(*fake);
  // Long enough a budget that the timeout says something about the host, not about the budget.
  const auto first = service.review(podOf({"hang.example/acme/a:1"}), Deadline::after(1500ms));
  EXPECT_FALSE(first.allowed);
  // The review answered at its deadline; its fetch gives up at the same moment and only then
  // records the host's failure. On a loaded machine that can come a little later.
  ASSERT_TRUE(service.waitForFetches(10s));
  const auto second = service.review(podOf({"hang.example/acme/b:1"}), Deadline::after(10s));
  EXPECT_THAT(denialOf(second), HasSubstr("registry hang.example failed"));
  EXPECT_EQ(fake->callsForHost("hang.example"), 1);
}

TEST(AdmissionServiceFetchScheduling, AnImageTheRegistryRefusesSaysNothingAboutTheHost) {
  for (const auto kind :
       {registry::FetchError::Kind::kNotFound, registry::FetchError::Kind::kUnauthorized,
        registry::FetchError::Kind::kForbidden}) {
    auto fake = std::make_shared<testutil::FakeRegistry>();
    fake->failHost("ghcr.io", kind, "denied (HTTP 4xx)");
    auto service = serviceWithRegistry({nonRootPolicy()}, fake);
    service.review(podOf({"ghcr.io/acme/a:1"}), Deadline::after(10s));
    const auto second = service.review(podOf({"ghcr.io/acme/b:1"}), Deadline::after(10s));
    EXPECT_THAT(denialOf(second), Not(HasSubstr("registry ghcr.io failed")));
    EXPECT_EQ(fake->callsForHost("ghcr.io"), 2);
  }
}

TEST(AdmissionServiceFetchScheduling, AQueuedFetchWhoseDeadlinePassedIsNeverStarted) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->holdUntilReleased("slow.example");
  fake->answerEveryImage("65532", 100);
  auto service = serviceWithRegistry({nonRootPolicy()}, fake);
  testutil::ReleaseOnExit release(*fake);
  auto held = startReview(service, podOf(imagesOn("slow.example", 4)), Deadline::after(30s));
  ASSERT_TRUE(fake->waitUntilInFlight(4));  // the host's limit: the next fetch queues

  const auto late = service.review(podOf({"slow.example/acme/late:1"}), Deadline::after(100ms));
  EXPECT_FALSE(late.allowed);
  fake->releaseHeldFetches();
  EXPECT_TRUE(held.get().allowed);
  // A host's fetches start in order, so this one starts after the late one left the queue.
  EXPECT_TRUE(service.review(podOf({"slow.example/acme/after:1"}), Deadline::after(10s)).allowed);
  EXPECT_EQ(fake->callsFor("slow.example/acme/late:1"), 0);
  EXPECT_EQ(fake->callsForHost("slow.example"), 5);
}

TEST(AdmissionServiceAsync, LargeBodiesAreDecodedOffTheCallingThread) {
  auto service = serviceWith({});
  std::string body = "[";
  for (int i = 0; i < 40'000; ++i) body += "{},";
  body += "{}]";  // ~120 KB of what the attack sent
  std::promise<std::pair<ReviewOutcome, std::thread::id>> answer;
  service.reviewAsync(body, Deadline::after(10s), [&](ReviewOutcome outcome) {
    answer.set_value({std::move(outcome), std::this_thread::get_id()});
  });
  auto [outcome, thread] = answer.get_future().get();
  EXPECT_NE(thread, std::this_thread::get_id());
  EXPECT_EQ(outcome.reply.status, 400u);
}

}  // namespace
}  // namespace imagegate::service

#include "cache/caching_registry.h"

namespace imagegate::service {
namespace {

using namespace std::chrono_literals;

const std::string kPinnedImage = "ghcr.io/acme/app@sha256:" + std::string(64, 'b');

AdmissionService serviceWithOptions(ServiceOptions options) {
  auto set = std::make_shared<policy::PolicySet>();
  set->policies = {nonRootPolicy()};
  options.answerMargin = 0ms;
  return AdmissionService(set, std::move(options));
}

TEST(AdmissionServiceCache, ACachedImageIsAnsweredInlineWhileEveryFetchThreadIsBusy) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->answerEveryImage("65532", 100);
  fake->holdUntilReleased("hang.example");
  auto caching = std::make_shared<cache::CachingRegistry>(fake, cache::CacheOptions{});
  ServiceOptions options;
  options.facts.registry = caching;
  options.facts.cache = caching;
  options.facts.threads = 2;
  options.facts.perRegistry = 2;
  auto service = serviceWithOptions(options);
  testutil::ReleaseOnExit release(*fake);
  ASSERT_TRUE(service.review(podOf({kPinnedImage}), Deadline::after(10s)).allowed);
  auto hanging = startReview(service, podOf(imagesOn("hang.example", 2)), Deadline::after(30s));
  ASSERT_TRUE(fake->waitUntilInFlight(2));  // every fetch thread is taken

  std::optional<ReviewOutcome> got;
  std::thread::id answeredOn;
  service.reviewAsync(podOf({kPinnedImage}), Deadline::after(10s), [&](ReviewOutcome outcome) {
    got = std::move(outcome);
    answeredOn = std::this_thread::get_id();
  });
  ASSERT_TRUE(got.has_value());  // before reviewAsync returned
  EXPECT_EQ(answeredOn, std::this_thread::get_id());
  EXPECT_TRUE(got->allowed) << got->reply.body;
  EXPECT_EQ(fake->callsFor(kPinnedImage), 1);
  fake->releaseHeldFetches();
  EXPECT_TRUE(hanging.get().allowed);
}

TEST(AdmissionServiceCache, OnlyTheImagesNotCachedAreFetched) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->answerEveryImage("65532", 100);
  auto caching = std::make_shared<cache::CachingRegistry>(fake, cache::CacheOptions{});
  ServiceOptions options;
  options.facts.registry = caching;
  options.facts.cache = caching;
  auto service = serviceWithOptions(options);
  service.review(podOf({kPinnedImage}), Deadline::after(10s));
  auto answer =
      startReview(service, podOf({kPinnedImage, "ghcr.io/acme/other:1"}), Deadline::after(10s));
  EXPECT_TRUE(answer.get().allowed);
  EXPECT_EQ(fake->callsFor(kPinnedImage), 1);
  EXPECT_EQ(fake->callsFor("ghcr.io/acme/other:1"), 1);
}

TEST(AdmissionServiceFetchScheduling, ThePerRegistryLimitIsConfigurable) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->holdUntilReleased("hang.example");
  fake->answerEveryImage("65532", 100);
  ServiceOptions options;
  options.facts.registry = fake;
  options.facts.perRegistry = 2;
  auto service = serviceWithOptions(options);
  testutil::ReleaseOnExit release(*fake);
  auto hanging = startReview(service, podOf(imagesOn("hang.example", 6)), Deadline::after(30s));
  ASSERT_TRUE(fake->waitUntilInFlight(2));
  EXPECT_TRUE(service.review(podOf({"ghcr.io/acme/app:1"}), Deadline::after(10s)).allowed);
  fake->releaseHeldFetches();
  EXPECT_TRUE(hanging.get().allowed);
  EXPECT_EQ(fake->maxConcurrentForHost("hang.example"), 2);
  EXPECT_EQ(fake->callsForHost("hang.example"), 6);
}

TEST(AdmissionServiceFetchScheduling, NoFailureMemoryAsksTheRegistryEveryTime) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->failHost("down.example", registry::FetchError::Kind::kUnreachable, "connection refused");
  ServiceOptions options;
  options.facts.registry = fake;
  options.facts.failureMemory = 0ms;
  auto service = serviceWithOptions(options);
  service.review(podOf({"down.example/acme/a:1"}), Deadline::after(10s));
  const auto second = service.review(podOf({"down.example/acme/b:1"}), Deadline::after(10s));
  EXPECT_THAT(denialOf(second), Not(HasSubstr("registry down.example failed")));
  EXPECT_EQ(fake->callsForHost("down.example"), 2);
}

TEST(AdmissionServiceShutdown, JoinIsBoundedWhenAFetchIgnoresItsDeadline) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->holdIgnoringDeadline("stuck.example");
  ServiceOptions options;
  options.facts.registry = fake;
  auto service = serviceWithOptions(options);
  testutil::ReleaseOnExit release(*fake);
  auto stuck = startReview(service, podOf({"stuck.example/acme/app:1"}), Deadline::after(100ms));
  ASSERT_TRUE(fake->waitUntilInFlight(1));
  // The review answers at its deadline although its fetch never returns.
  ASSERT_EQ(stuck.wait_for(10s), std::future_status::ready);
  EXPECT_THAT(denialOf(stuck.get()), HasSubstr("timed out fetching"));

  auto joining = std::async(std::launch::async, [&] { return service.join(100ms); });
  ASSERT_EQ(joining.wait_for(10s), std::future_status::ready);  // liveness only
  EXPECT_THAT(joining.get(), ElementsAre(HasSubstr("fetch of stuck.example/acme/app:1")));
  fake->releaseHeldFetches();
  EXPECT_THAT(service.join(10s), IsEmpty());
}

TEST(AdmissionServiceShutdown, JoinDropsQueuedFetchesAndTheirReviewsAnswerAtOnce) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->holdUntilReleased("slow.example");
  fake->answerEveryImage("65532", 100);
  ServiceOptions options;
  options.facts.registry = fake;
  options.facts.perRegistry = 1;
  auto service = serviceWithOptions(options);
  testutil::ReleaseOnExit release(*fake);
  auto running = startReview(service, podOf({"slow.example/acme/a:1"}), Deadline::after(30s));
  ASSERT_TRUE(fake->waitUntilInFlight(1));
  auto queued = startReview(service, podOf({"slow.example/acme/b:1"}), Deadline::after(30s));

  auto joining = std::async(std::launch::async, [&] { return service.join(30s); });
  ASSERT_EQ(queued.wait_for(10s), std::future_status::ready);  // long before its deadline
  EXPECT_THAT(denialOf(queued.get()), HasSubstr("shutting down"));
  fake->releaseHeldFetches();
  EXPECT_THAT(joining.get(), IsEmpty());
  EXPECT_TRUE(running.get().allowed);
  EXPECT_EQ(fake->callsFor("slow.example/acme/b:1"), 0);
}

}  // namespace
}  // namespace imagegate::service

namespace imagegate::service {
namespace {

TEST(AdmissionServicePolicies, ASwappedSetDecidesTheReviewsThatStartAfterwards) {
  AdmissionService service = serviceWith({});
  const auto empty = service.policies();
  EXPECT_TRUE(service.review(podReview(rootPod()).dump(), kDeadline).allowed);

  auto strict = std::make_shared<policy::PolicySet>();
  strict->policies.push_back(
      makePolicy("strict", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")}));
  service.setPolicies(strict);
  EXPECT_EQ(service.policies(), strict);
  EXPECT_FALSE(service.review(podReview(rootPod()).dump(), kDeadline).allowed);
  // The set a review started with stays alive as long as the review needs it; the old one is
  // released once nothing uses it.
  EXPECT_EQ(empty.use_count(), 1);
}

}  // namespace
}  // namespace imagegate::service

namespace imagegate::service {
namespace {

TEST(AdmissionServicePolicies, AReviewInFlightFinishesOnTheSetItStartedWith) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->add("ghcr.io/acme/root:1", "root");
  fake->holdUntilReleased("ghcr.io");
  auto service = serviceWithRegistry(
      {makePolicy("prod", policy::Action::kEnforce, {rule("non-root", "runAsNonRoot: {}")})}, fake);
  testutil::ReleaseOnExit release(*fake);
  std::weak_ptr<const policy::PolicySet> started = service.policies();
  std::promise<ReviewOutcome> answer;
  service.reviewAsync(podReview(openPod({"ghcr.io/acme/root:1"})).dump(), kDeadline,
                      [&](ReviewOutcome outcome) { answer.set_value(std::move(outcome)); });
  ASSERT_TRUE(fake->waitUntilInFlight(1));

  // A reload to a set that allows everything while the review waits on the registry.
  service.setPolicies(std::make_shared<policy::PolicySet>());
  EXPECT_FALSE(started.expired());  // the waiting review holds it
  fake->releaseHeldFetches();
  const ReviewOutcome outcome = answer.get_future().get();
  EXPECT_FALSE(outcome.allowed);
  EXPECT_THAT(response(outcome)["status"]["message"].get<std::string>(),
              HasSubstr("the image's USER is \"root\""));
  EXPECT_TRUE(
      service.review(podReview(openPod({"ghcr.io/acme/root:1"})).dump(), kDeadline).allowed);
}

}  // namespace
}  // namespace imagegate::service

namespace imagegate::service {
namespace {

TEST(AdmissionServiceRuleResults, ImageRulesRunOncePerImageAndAReloadStartsOver) {
  AdmissionService service =
      serviceWith({makePolicy("registries", policy::Action::kEnforce,
                              {rule("allowed", "allowedRegistries: [\"registry.example.com/*\"]"),
                               rule("pinned", "imageReference: {requireDigest: true}")})});
  const std::string body =
      podReview(openPod({"registry.example.com/shop/app:1", "docker.io/library/redis:7",
                         "registry.example.com/shop/app:1"}))
          .dump();
  const ReviewOutcome first = service.review(body, kDeadline);
  EXPECT_FALSE(first.allowed);
  ASSERT_TRUE(service.ruleResultCacheStats());
  const cache::CacheStats cold = *service.ruleResultCacheStats();
  EXPECT_EQ(cold.entries, 2u);  // two distinct images
  EXPECT_EQ(cold.hits, 0u);

  const ReviewOutcome second = service.review(body, kDeadline);
  EXPECT_EQ(second.reply.body, first.reply.body);
  const cache::CacheStats warm = *service.ruleResultCacheStats();
  EXPECT_EQ(warm.hits, 2u);
  EXPECT_EQ(warm.misses, cold.misses);
  EXPECT_GT(warm.bytes, 0u);

  // A reload to rules every image passes: decided by the new rules, the old findings dropped.
  auto relaxed = std::make_shared<policy::PolicySet>();
  relaxed->policies.push_back(makePolicy("registries", policy::Action::kEnforce,
                                         {rule("allowed", "allowedRegistries: [\"*\"]")}));
  service.setPolicies(relaxed);
  EXPECT_TRUE(service.review(body, kDeadline).allowed);
  EXPECT_EQ(service.ruleResultCacheStats()->entries, 2u);
  EXPECT_EQ(service.ruleResultCacheStats()->hits, 2u);
}

TEST(AdmissionServiceRuleResults, AZeroBudgetTurnsTheCacheOff) {
  auto set = std::make_shared<policy::PolicySet>();
  set->policies.push_back(makePolicy("registries", policy::Action::kEnforce,
                                     {rule("allowed", "allowedRegistries: [\"ghcr.io/*\"]")}));
  ServiceOptions options;
  options.ruleResultCacheBytes = 0;
  AdmissionService service(set, options);
  EXPECT_FALSE(service.ruleResultCacheStats());
  EXPECT_FALSE(service.review(podReview(openPod({"nginx:1.27"})).dump(), kDeadline).allowed);
}

}  // namespace
}  // namespace imagegate::service
