#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// Counters, gauges and histograms with label families, and their Prometheus text exposition
// (format 0.0.4). Updates are lock-free atomics; finding a labelled series takes a shared lock
// and no allocation once the series exists. A family holds a bounded number of label sets:
// labels fed from untrusted input (registry hosts come from pod specs) cannot grow it without
// limit, later values fold into "other".
namespace imagegate::metrics {

/// Monotonic count of events or bytes.
class Counter {
 public:
  void inc(std::uint64_t amount = 1) { value_.fetch_add(amount, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

/// A value that goes up and down.
class Gauge {
 public:
  void set(double value) { value_.store(value, std::memory_order_relaxed); }
  void add(double amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

/// Observations counted into fixed buckets (upper bounds, ascending; +Inf is implicit).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;  ///< One per bound, then +Inf.
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  ///< bounds_.size() + 1, not cumulative.
  std::atomic<double> sum_{0};
};

/// Latency buckets in seconds, 0.5 ms to 30 s: from a cached review to the API server's
/// largest timeout.
const std::vector<double>& latencyBuckets();

using LabelValues = std::initializer_list<std::string_view>;

struct FamilyOptions {
  /// Label sets kept apart; once reached, a new label set has its foldLabels (all labels when
  /// empty) replaced by "other".
  std::size_t maxSeries = 200;
  std::vector<std::string> foldLabels;
};

inline constexpr std::string_view kFoldedValue = "other";

/// One metric name with its label names and the series seen so far.
template <typename Metric>
class Family {
 public:
  Family(std::vector<std::string> labelNames, FamilyOptions options,
         std::function<std::unique_ptr<Metric>()> make);

  /// The series for these label values (as many as the family has label names, in order).
  /// The reference stays valid for the family's lifetime: hot paths may keep it.
  Metric& labels(LabelValues values);
  /// The label-less series (a family without labels).
  Metric& get() { return labels({}); }

  const std::vector<std::string>& labelNames() const { return labelNames_; }
  /// Each series' label values and metric, in label order.
  void forEach(
      const std::function<void(const std::vector<std::string>&, const Metric&)>& visit) const;
  std::size_t size() const;

 private:
  struct Series {
    std::vector<std::string> values;
    std::unique_ptr<Metric> metric;
  };
  Metric& insert(LabelValues values);

  std::vector<std::string> labelNames_;
  std::vector<bool> foldable_;
  FamilyOptions options_;
  std::function<std::unique_ptr<Metric>()> make_;
  mutable std::shared_mutex mutex_;
  std::map<std::string, Series, std::less<>> series_;  ///< Keyed by joined label values.
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

/// What a collector reports at scrape time: values owned by other objects (cache stats, ...).
/// Samples of one name are grouped under one HELP/TYPE, whichever collector sent them.
class MetricWriter {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  void counter(std::string_view name, std::string_view help, double value, Labels labels = {});
  void gauge(std::string_view name, std::string_view help, double value, Labels labels = {});

  struct Sample {
    Labels labels;
    double value = 0;
  };
  struct Reported {
    std::string type;
    std::string help;
    std::vector<Sample> samples;
  };
  const std::map<std::string, Reported>& reported() const { return reported_; }

 private:
  void add(std::string_view type, std::string_view name, std::string_view help, double value,
           Labels labels);
  std::map<std::string, Reported> reported_;
};

using Collector = std::function<void(MetricWriter&)>;
class Registry;

/// Keeps a collector registered; removes it when destroyed, so a collector never outlives the
/// object it reads.
class [[nodiscard]] CollectorHandle {
 public:
  CollectorHandle() = default;
  CollectorHandle(Registry* registry, std::uint64_t id) : registry_(registry), id_(id) {}
  CollectorHandle(CollectorHandle&& other) noexcept;
  CollectorHandle& operator=(CollectorHandle&& other) noexcept;
  CollectorHandle(const CollectorHandle&) = delete;
  CollectorHandle& operator=(const CollectorHandle&) = delete;
  ~CollectorHandle();

 private:
  Registry* registry_ = nullptr;
  std::uint64_t id_ = 0;
};

class Registry {
 public:
  /// Declares a family, or returns the one already declared under `name` with the same type
  /// and labels. Throws imagegate::Error for an invalid name or a conflicting declaration.
  CounterFamily& counter(const std::string& name, const std::string& help,
                         std::vector<std::string> labelNames = {}, FamilyOptions options = {});
  GaugeFamily& gauge(const std::string& name, const std::string& help,
                     std::vector<std::string> labelNames = {}, FamilyOptions options = {});
  HistogramFamily& histogram(const std::string& name, const std::string& help,
                             std::vector<double> bounds, std::vector<std::string> labelNames = {},
                             FamilyOptions options = {});

  /// Runs `collect` at every scrape, until the handle is destroyed. It must be quick and must
  /// not call back into this registry.
  CollectorHandle addCollector(Collector collect);

  /// The text exposition format 0.0.4, families sorted by name.
  std::string render() const;

 private:
  friend class CollectorHandle;
  void removeCollector(std::uint64_t id);

  struct Entry {
    std::string type;
    std::string help;
    std::vector<std::string> labelNames;
    std::vector<double> bounds;
    std::unique_ptr<CounterFamily> counters;
    std::unique_ptr<GaugeFamily> gauges;
    std::unique_ptr<HistogramFamily> histograms;
  };
  Entry& declare(const std::string& name, const std::string& type, const std::string& help,
                 const std::vector<std::string>& labelNames, const std::vector<double>& bounds);

  mutable std::mutex mutex_;
  std::map<std::string, Entry> families_;
  std::map<std::uint64_t, Collector> collectors_;
  std::uint64_t nextCollector_ = 1;
};

/// The process-wide registry that GET /metrics serves.
Registry& defaultRegistry();

/// The content type of render()'s output.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

/// Escaping of the exposition format: HELP text escapes \ and newline; label values also ".
std::string escapeHelp(std::string_view text);
std::string escapeLabelValue(std::string_view text);
/// A sample value as Prometheus writes it: shortest round-trip decimal, +Inf, -Inf, NaN.
std::string formatValue(double value);
bool validMetricName(std::string_view name);
bool validLabelName(std::string_view name);

}  // namespace imagegate::metrics
