#include "server/routes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace imagegate::server {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

RouteTable table() {
  RouteTable routes;
  routes.addReview("/validate");
  routes.addGet("/healthz", [] { return textReply(200, "ok"); });
  return routes;
}

RequestHead post(std::string_view target, std::string_view contentType = "application/json") {
  RequestHead head;
  head.method = "POST";
  head.target = target;
  head.hasHost = true;
  head.contentType = contentType;
  return head;
}

RequestHead get(std::string_view target) {
  RequestHead head;
  head.method = "GET";
  head.target = target;
  head.hasHost = true;
  return head;
}

TEST(RouteTable, ReviewRouteTakesJsonPosts) {
  const RouteTable routes = table();
  const auto decision = routes.decide(post("/validate?timeout=10s"));
  ASSERT_NE(decision.route, nullptr);
  EXPECT_EQ(decision.route->kind, RouteTable::Kind::kReview);
  EXPECT_FALSE(decision.refusal);
  EXPECT_NE(routes.decide(post("/validate", "Application/JSON; charset=utf-8")).route, nullptr);
}

TEST(RouteTable, ReviewRouteRefusesOtherMethodsAndMediaTypes) {
  const RouteTable routes = table();
  const auto wrongMethod = routes.decide(get("/validate"));
  ASSERT_TRUE(wrongMethod.refusal);
  EXPECT_EQ(wrongMethod.refusal->http.status, 405u);
  EXPECT_EQ(wrongMethod.refusal->allow, "POST");
  EXPECT_FALSE(wrongMethod.refusal->close);
  const auto wrongType = routes.decide(post("/validate", "text/plain"));
  ASSERT_TRUE(wrongType.refusal);
  EXPECT_EQ(wrongType.refusal->http.status, 415u);
  RequestHead noType = post("/validate");
  noType.contentType.reset();
  EXPECT_EQ(routes.decide(noType).refusal->http.status, 415u);
}

TEST(RouteTable, GetRoutesAnswerAndRefuseOtherMethods) {
  const RouteTable routes = table();
  const auto decision = routes.decide(get("/healthz"));
  ASSERT_NE(decision.route, nullptr);
  EXPECT_EQ(decision.route->answer().http.body, "ok\n");
  const auto posted = routes.decide(post("/healthz"));
  ASSERT_TRUE(posted.refusal);
  EXPECT_EQ(posted.refusal->http.status, 405u);
  EXPECT_EQ(posted.refusal->allow, "GET");
}

TEST(RouteTable, UnknownPathsListTheRoutes) {
  const auto decision = table().decide(get("/metrics"));
  ASSERT_TRUE(decision.refusal);
  EXPECT_EQ(decision.refusal->http.status, 404u);
  EXPECT_THAT(decision.refusal->http.body,
              HasSubstr("imagegate serves POST /validate, GET /healthz"));
}

TEST(RouteTable, AnyTransferEncodingIsRefusedAndCloses) {
  const RouteTable routes = table();
  for (const char* coding : {"chunked", "xchunked", "chunked, identity", "identity", "gzip"}) {
    RequestHead head = post("/validate");
    head.transferEncoding = coding;
    const auto decision = routes.decide(head);
    ASSERT_TRUE(decision.refusal) << coding;
    EXPECT_EQ(decision.refusal->http.status, 400u) << coding;
    EXPECT_TRUE(decision.refusal->close) << coding;
    EXPECT_THAT(decision.refusal->http.body, HasSubstr("Content-Length"));
    // Framing decides before the path: a probe with a chunked body is refused the same way.
    head.target = "/healthz";
    EXPECT_EQ(routes.decide(head).refusal->http.status, 400u);
  }
}

TEST(RouteTable, Http11WithoutHostIsRefused) {
  RequestHead head = get("/healthz");
  head.hasHost = false;
  const auto decision = table().decide(head);
  ASSERT_TRUE(decision.refusal);
  EXPECT_EQ(decision.refusal->http.status, 400u);
  EXPECT_TRUE(decision.refusal->close);
  EXPECT_THAT(decision.refusal->http.body, HasSubstr("Host"));
  head.version = 10;  // HTTP/1.0 has no Host requirement
  EXPECT_FALSE(table().decide(head).refusal);
}

TEST(ReviewBudget, TakesTheApiServersTimeout) {
  EXPECT_EQ(reviewBudget("timeout=7s", milliseconds(10'000), milliseconds(30'000)),
            milliseconds(7'000));
  EXPECT_EQ(reviewBudget("a=b&timeout=500ms", milliseconds(10'000), milliseconds(30'000)),
            milliseconds(500));
}

TEST(ReviewBudget, FallsBackWhenMissingOrUnusable) {
  for (const char* query : {"", "timeout=", "timeout=abc", "timeout=0s", "timeout=-5s", "x=1"}) {
    EXPECT_EQ(reviewBudget(query, milliseconds(10'000), milliseconds(30'000)), milliseconds(10'000))
        << query;
  }
}

TEST(ReviewBudget, NeverExceedsTheCapOrThirtySeconds) {
  // A client asking for a day must not pin review and fetch threads for a day.
  EXPECT_EQ(reviewBudget("timeout=24h", milliseconds(10'000), milliseconds(30'000)),
            milliseconds(30'000));
  EXPECT_EQ(reviewBudget("timeout=24h", milliseconds(10'000), milliseconds(12'000)),
            milliseconds(12'000));
  EXPECT_EQ(reviewBudget("timeout=24h", milliseconds(10'000), milliseconds(90'000)),
            kMaxReviewBudget);
  EXPECT_EQ(reviewBudget("", milliseconds(60'000), milliseconds(20'000)), milliseconds(20'000));
}

}  // namespace
}  // namespace imagegate::server
