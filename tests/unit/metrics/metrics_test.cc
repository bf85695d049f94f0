#include "metrics/metrics.h"

#include <gtest/gtest.h>

#include <limits>
#include <thread>
#include <vector>

#include "common/error.h"

namespace imagegate::metrics {
namespace {

TEST(MetricsFormat, CounterWithLabelsIsExactText) {
  Registry registry;
  CounterFamily& reviews =
      registry.counter("imagegate_reviews_total", "Reviews answered", {"kind", "verdict"});
  reviews.labels({"Pod", "allowed"}).inc();
  reviews.labels({"Pod", "allowed"}).inc(2);
  reviews.labels({"Deployment", "denied"}).inc();
  EXPECT_EQ(registry.render(),
            "# HELP imagegate_reviews_total Reviews answered\n"
            "# TYPE imagegate_reviews_total counter\n"
            "imagegate_reviews_total{kind=\"Deployment\",verdict=\"denied\"} 1\n"
            "imagegate_reviews_total{kind=\"Pod\",verdict=\"allowed\"} 3\n");
}

TEST(MetricsFormat, FamiliesAreSortedByNameAndDeclaredOnesWithoutSeriesShowHeaders) {
  Registry registry;
  registry.gauge("b_gauge", "B").get().set(1.5);
  registry.counter("a_total", "A", {"x"});
  EXPECT_EQ(registry.render(),
            "# HELP a_total A\n"
            "# TYPE a_total counter\n"
            "# HELP b_gauge B\n"
            "# TYPE b_gauge gauge\n"
            "b_gauge 1.5\n");
}

TEST(MetricsFormat, EscapesHelpAndLabelValues) {
  EXPECT_EQ(escapeHelp("a \\ b\nc \"q\""), "a \\\\ b\\nc \"q\"");
  EXPECT_EQ(escapeLabelValue("a \\ b\nc \"q\""), "a \\\\ b\\nc \\\"q\\\"");
  Registry registry;
  registry.counter("x_total", "line one\nback\\slash", {"host"})
      .labels({"evil\"}\nnext_metric 1"})
      .inc();
  EXPECT_EQ(registry.render(),
            "# HELP x_total line one\\nback\\\\slash\n"
            "# TYPE x_total counter\n"
            "x_total{host=\"evil\\\"}\\nnext_metric 1\"} 1\n");
}

TEST(MetricsFormat, FormatsSpecialValues) {
  EXPECT_EQ(formatValue(0), "0");
  EXPECT_EQ(formatValue(0.25), "0.25");
  EXPECT_EQ(formatValue(1e21), "1e+21");
  EXPECT_EQ(formatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(formatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(formatValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(MetricsHistogram, BucketsAreCumulativeWithInfSumAndCount) {
  Registry registry;
  HistogramFamily& latency = registry.histogram("op_seconds", "Op latency", {0.1, 1, 10}, {"op"});
  Histogram& read = latency.labels({"read"});
  read.observe(0.05);
  read.observe(0.1);  // on the bound: counted in le="0.1"
  read.observe(0.5);
  read.observe(100);
  EXPECT_EQ(registry.render(),
            "# HELP op_seconds Op latency\n"
            "# TYPE op_seconds histogram\n"
            "op_seconds_bucket{op=\"read\",le=\"0.1\"} 2\n"
            "op_seconds_bucket{op=\"read\",le=\"1\"} 3\n"
            "op_seconds_bucket{op=\"read\",le=\"10\"} 3\n"
            "op_seconds_bucket{op=\"read\",le=\"+Inf\"} 4\n"
            "op_seconds_sum{op=\"read\"} 100.65\n"
            "op_seconds_count{op=\"read\"} 4\n");
}

TEST(MetricsHistogram, UnlabelledHistogramHasOnlyLe) {
  Registry registry;
  registry.histogram("h_seconds", "H", {1}).get().observe(2);
  EXPECT_EQ(registry.render(),
            "# HELP h_seconds H\n"
            "# TYPE h_seconds histogram\n"
            "h_seconds_bucket{le=\"1\"} 0\n"
            "h_seconds_bucket{le=\"+Inf\"} 1\n"
            "h_seconds_sum 2\n"
            "h_seconds_count 1\n");
}

TEST(MetricsHistogram, RejectsUnsortedBounds) {
  Registry registry;
  EXPECT_THROW(registry.histogram("h_seconds", "H", {1, 0.5}), Error);
  EXPECT_THROW(registry.histogram("h_seconds", "H", {1, 1}), Error);
}

TEST(MetricsCardinality, NewValuesFoldIntoOtherBeyondTheLimit) {
  Registry registry;
  CounterFamily& requests =
      registry.counter("requests_total", "R", {"registry", "code"}, FamilyOptions{3, {"registry"}});
  requests.labels({"a.io", "2xx"}).inc();
  requests.labels({"b.io", "2xx"}).inc();
  requests.labels({"c.io", "4xx"}).inc();
  for (int i = 0; i < 1000; ++i) {
    requests.labels({"attacker-" + std::to_string(i) + ".io", i % 2 ? "2xx" : "5xx"}).inc();
  }
  requests.labels({"a.io", "2xx"}).inc();  // a known label set still counts as itself
  EXPECT_EQ(requests.size(), 5u);          // three, then one folded series per code
  EXPECT_EQ(requests.labels({"a.io", "2xx"}).value(), 2u);
  EXPECT_EQ(requests.labels({"other", "2xx"}).value(), 500u);
  EXPECT_EQ(requests.labels({"other", "5xx"}).value(), 500u);
}

TEST(MetricsCardinality, WithoutFoldLabelsEveryLabelFolds) {
  Registry registry;
  CounterFamily& family = registry.counter("f_total", "F", {"a", "b"}, FamilyOptions{1, {}});
  family.labels({"1", "1"}).inc();
  family.labels({"2", "2"}).inc();
  family.labels({"3", "3"}).inc();
  EXPECT_EQ(family.size(), 2u);
  EXPECT_EQ(family.labels({"other", "other"}).value(), 2u);
}

TEST(MetricsConcurrency, IncrementsFromManyThreadsAddUp) {
  Registry registry;
  CounterFamily& counter = registry.counter("c_total", "C", {"t"}, FamilyOptions{2, {}});
  HistogramFamily& histogram = registry.histogram("h_seconds", "H", {0.5}, {});
  constexpr int kThreads = 8;
  constexpr int kIncrements = 20'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIncrements; ++i) {
        // Label sets are created concurrently too, past the limit (folding races included).
        counter.labels({std::to_string((t + i) % 4)}).inc();
        histogram.get().observe(i % 2 ? 1.0 : 0.25);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::uint64_t total = 0;
  counter.forEach([&](const std::vector<std::string>&, const Counter& c) { total += c.value(); });
  EXPECT_EQ(total, std::uint64_t{kThreads} * kIncrements);
  EXPECT_LE(counter.size(), 3u);
  const Histogram::Snapshot snap = histogram.get().snapshot();
  EXPECT_EQ(snap.count, std::uint64_t{kThreads} * kIncrements);
  EXPECT_EQ(snap.cumulative[0], std::uint64_t{kThreads} * kIncrements / 2);
  EXPECT_DOUBLE_EQ(snap.sum, kThreads * (kIncrements / 2) * 1.25);
}

TEST(MetricsRegistry, RedeclaringReturnsTheSameFamilyAndConflictsThrow) {
  Registry registry;
  CounterFamily& first = registry.counter("x_total", "X", {"a"});
  EXPECT_EQ(&registry.counter("x_total", "X", {"a"}), &first);
  EXPECT_THROW(registry.counter("x_total", "X", {"b"}), Error);
  EXPECT_THROW(registry.gauge("x_total", "X", {"a"}), Error);
  EXPECT_THROW(registry.counter("bad-name", "X"), Error);
  EXPECT_THROW(registry.counter("y_total", "Y", {"__reserved"}), Error);
  EXPECT_THROW(registry.histogram("z_seconds", "Z", {1}, {"le"}), Error);
  EXPECT_THROW(first.labels({"1", "2"}), Error);
}

TEST(MetricsCollectors, ReportAtScrapeGroupedByNameUntilTheHandleGoes) {
  Registry registry;
  std::uint64_t hits = 3;
  {
    CollectorHandle local = registry.addCollector([&](MetricWriter& out) {
      out.counter("imagegate_cache_hits_total", "Cache hits", static_cast<double>(hits),
                  {{"tier", "local"}});
      out.gauge("imagegate_cache_bytes", "Cache size", 1024, {{"tier", "local"}});
    });
    CollectorHandle redis = registry.addCollector([](MetricWriter& out) {
      out.counter("imagegate_cache_hits_total", "Cache hits", 7, {{"tier", "redis"}});
      out.gauge("bad name", "ignored", 1);
    });
    hits = 5;
    EXPECT_EQ(registry.render(),
              "# HELP imagegate_cache_bytes Cache size\n"
              "# TYPE imagegate_cache_bytes gauge\n"
              "imagegate_cache_bytes{tier=\"local\"} 1024\n"
              "# HELP imagegate_cache_hits_total Cache hits\n"
              "# TYPE imagegate_cache_hits_total counter\n"
              "imagegate_cache_hits_total{tier=\"local\"} 5\n"
              "imagegate_cache_hits_total{tier=\"redis\"} 7\n");
  }
  EXPECT_EQ(registry.render(), "");
}

TEST(MetricsCollectors, DeclaredFamilyOwnsItsName) {
  Registry registry;
  registry.counter("x_total", "X").get().inc();
  CollectorHandle handle =
      registry.addCollector([](MetricWriter& out) { out.counter("x_total", "dup", 9); });
  EXPECT_EQ(registry.render(), "# HELP x_total X\n# TYPE x_total counter\nx_total 1\n");
}

}  // namespace
}  // namespace imagegate::metrics
