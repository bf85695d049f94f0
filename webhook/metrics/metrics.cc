#include "metrics/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "common/error.h"

namespace imagegate::metrics {
namespace {

/// Label values joined with their lengths, so that no two different sets share a key whatever
/// bytes the values hold.
void appendKey(std::string& key, std::string_view value) {
  const auto size = static_cast<std::uint32_t>(value.size());
  key.append(reinterpret_cast<const char*>(&size), sizeof size);
  key.append(value);
}

template <typename Values>
void buildKey(std::string& key, const Values& values) {
  key.clear();
  for (std::string_view value : values) appendKey(key, value);
}

bool nameChar(char c, bool first, bool colonAllowed) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (c == ':' && colonAllowed) return true;
  return !first && c >= '0' && c <= '9';
}

bool validName(std::string_view name, bool colonAllowed) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!nameChar(name[i], i == 0, colonAllowed)) return false;
  }
  return true;
}

std::string renderLabels(const std::vector<std::string>& names,
                         const std::vector<std::string>& values, std::string_view extraName = {},
                         std::string_view extraValue = {}) {
  if (names.empty() && extraName.empty()) return "";
  std::string text = "{";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) text += ',';
    text += names[i] + "=\"" + escapeLabelValue(values[i]) + "\"";
  }
  if (!extraName.empty()) {
    if (!names.empty()) text += ',';
    text += std::string(extraName) + "=\"" + std::string(extraValue) + "\"";
  }
  return text + "}";
}

void renderHeader(std::string& out, const std::string& name, std::string_view type,
                  std::string_view help) {
  out += "# HELP " + name + " " + escapeHelp(help) + "\n";
  out += "# TYPE " + name + " " + std::string(type) + "\n";
}

void renderHistogram(std::string& out, const std::string& name,
                     const std::vector<std::string>& labelNames,
                     const std::vector<std::string>& values, const Histogram& histogram) {
  const Histogram::Snapshot snap = histogram.snapshot();
  for (std::size_t i = 0; i <= snap.bounds.size(); ++i) {
    const std::string le = i < snap.bounds.size() ? formatValue(snap.bounds[i]) : "+Inf";
    out += name + "_bucket" + renderLabels(labelNames, values, "le", le) + " " +
           std::to_string(snap.cumulative[i]) + "\n";
  }
  const std::string labels = renderLabels(labelNames, values);
  out += name + "_sum" + labels + " " + formatValue(snap.sum) + "\n";
  out += name + "_count" + labels + " " + std::to_string(snap.count) + "\n";
}

}  // namespace

// --- Histogram ---------------------------------------------------------------------------------

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {
  if (!std::is_sorted(bounds_.begin(), bounds_.end()) ||
      std::adjacent_find(bounds_.begin(), bounds_.end()) != bounds_.end() ||
      std::any_of(bounds_.begin(), bounds_.end(), [](double b) { return !std::isfinite(b); })) {
    throw Error("histogram bucket bounds must be finite and strictly increasing");
  }
}

void Histogram::observe(double value) {
  // Prometheus buckets are "less than or equal": the first bound >= value.
  const auto bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  buckets_[static_cast<std::size_t>(bucket)].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snap;
  snap.bounds = bounds_;
  snap.cumulative.reserve(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    snap.cumulative.push_back(running);
  }
  // _count is the +Inf bucket, so the two always agree even while observations arrive.
  snap.count = running;
  snap.sum = sum_.load(std::memory_order_relaxed);
  return snap;
}

const std::vector<double>& latencyBuckets() {
  static const std::vector<double> buckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                              0.25,   0.5,   1,      2.5,   5,    10,    30};
  return buckets;
}

// --- Family ------------------------------------------------------------------------------------

template <typename Metric>
Family<Metric>::Family(std::vector<std::string> labelNames, FamilyOptions options,
                       std::function<std::unique_ptr<Metric>()> make)
    : labelNames_(std::move(labelNames)), options_(std::move(options)), make_(std::move(make)) {
  for (const std::string& name : labelNames_) {
    const bool listed = std::find(options_.foldLabels.begin(), options_.foldLabels.end(), name) !=
                        options_.foldLabels.end();
    foldable_.push_back(options_.foldLabels.empty() || listed);
  }
  options_.maxSeries = std::max<std::size_t>(options_.maxSeries, 1);
}

template <typename Metric>
Metric& Family<Metric>::labels(LabelValues values) {
  if (values.size() != labelNames_.size()) {
    throw Error("metric needs " + std::to_string(labelNames_.size()) + " label values, got " +
                std::to_string(values.size()));
  }
  // Reused per thread: looking up an existing series allocates nothing.
  thread_local std::string key;
  buildKey(key, values);
  {
    std::shared_lock lock(mutex_);
    if (const auto found = series_.find(std::string_view(key)); found != series_.end()) {
      return *found->second.metric;
    }
  }
  return insert(values);
}

template <typename Metric>
Metric& Family<Metric>::insert(LabelValues values) {
  std::vector<std::string> owned(values.begin(), values.end());
  std::string key;
  buildKey(key, owned);
  std::unique_lock lock(mutex_);
  if (const auto found = series_.find(key); found != series_.end()) return *found->second.metric;
  if (series_.size() >= options_.maxSeries) {
    // Full: the series with the open-ended labels folded. It is created even beyond the limit,
    // once, the remaining labels being bounded by design.
    for (std::size_t i = 0; i < owned.size(); ++i) {
      if (foldable_[i]) owned[i] = kFoldedValue;
    }
    buildKey(key, owned);
    if (const auto found = series_.find(key); found != series_.end()) {
      return *found->second.metric;
    }
  }
  return *series_.emplace(key, Series{std::move(owned), make_()}).first->second.metric;
}

template <typename Metric>
void Family<Metric>::forEach(
    const std::function<void(const std::vector<std::string>&, const Metric&)>& visit) const {
  std::shared_lock lock(mutex_);
  // Sorted by label values, for output a reader can scan (keys sort by length first).
  std::vector<const Series*> sorted;
  sorted.reserve(series_.size());
  for (const auto& entry : series_) sorted.push_back(&entry.second);
  std::sort(sorted.begin(), sorted.end(),
            [](const Series* a, const Series* b) { return a->values < b->values; });
  for (const Series* series : sorted) visit(series->values, *series->metric);
}

template <typename Metric>
std::size_t Family<Metric>::size() const {
  std::shared_lock lock(mutex_);
  return series_.size();
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// --- MetricWriter ------------------------------------------------------------------------------

void MetricWriter::counter(std::string_view name, std::string_view help, double value,
                           Labels labels) {
  add("counter", name, help, value, std::move(labels));
}

void MetricWriter::gauge(std::string_view name, std::string_view help, double value,
                         Labels labels) {
  add("gauge", name, help, value, std::move(labels));
}

void MetricWriter::add(std::string_view type, std::string_view name, std::string_view help,
                       double value, Labels labels) {
  if (!validMetricName(name)) return;  // a collector's bug must not break the whole scrape
  for (const auto& [label, unused] : labels) {
    if (!validLabelName(label)) return;
  }
  auto [entry, inserted] = reported_.try_emplace(std::string(name));
  if (inserted) {
    entry->second.type = type;
    entry->second.help = help;
  } else if (entry->second.type != type) {
    return;  // one name, one type: the first report wins
  }
  entry->second.samples.push_back(Sample{std::move(labels), value});
}

// --- CollectorHandle ---------------------------------------------------------------------------

CollectorHandle::CollectorHandle(CollectorHandle&& other) noexcept
    : registry_(std::exchange(other.registry_, nullptr)), id_(other.id_) {}

CollectorHandle& CollectorHandle::operator=(CollectorHandle&& other) noexcept {
  if (this != &other) {
    if (registry_ != nullptr) registry_->removeCollector(id_);
    registry_ = std::exchange(other.registry_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

CollectorHandle::~CollectorHandle() {
  if (registry_ != nullptr) registry_->removeCollector(id_);
}

// --- Registry ----------------------------------------------------------------------------------

Registry::Entry& Registry::declare(const std::string& name, const std::string& type,
                                   const std::string& help,
                                   const std::vector<std::string>& labelNames,
                                   const std::vector<double>& bounds) {
  if (!validMetricName(name)) throw Error("invalid metric name \"" + name + "\"");
  for (const std::string& label : labelNames) {
    if (!validLabelName(label) || label.starts_with("__") ||
        (type == "histogram" && label == "le")) {
      throw Error("invalid label name \"" + label + "\" for metric " + name);
    }
  }
  auto [entry, inserted] = families_.try_emplace(name);
  if (!inserted && (entry->second.type != type || entry->second.labelNames != labelNames ||
                    entry->second.bounds != bounds)) {
    throw Error("metric " + name + " is declared twice with different types, labels or buckets");
  }
  if (inserted) {
    entry->second.type = type;
    entry->second.help = help;
    entry->second.labelNames = labelNames;
    entry->second.bounds = bounds;
  }
  return entry->second;
}

CounterFamily& Registry::counter(const std::string& name, const std::string& help,
                                 std::vector<std::string> labelNames, FamilyOptions options) {
  std::lock_guard lock(mutex_);
  Entry& entry = declare(name, "counter", help, labelNames, {});
  if (!entry.counters) {
    entry.counters = std::make_unique<CounterFamily>(std::move(labelNames), std::move(options),
                                                     [] { return std::make_unique<Counter>(); });
  }
  return *entry.counters;
}

GaugeFamily& Registry::gauge(const std::string& name, const std::string& help,
                             std::vector<std::string> labelNames, FamilyOptions options) {
  std::lock_guard lock(mutex_);
  Entry& entry = declare(name, "gauge", help, labelNames, {});
  if (!entry.gauges) {
    entry.gauges = std::make_unique<GaugeFamily>(std::move(labelNames), std::move(options),
                                                 [] { return std::make_unique<Gauge>(); });
  }
  return *entry.gauges;
}

HistogramFamily& Registry::histogram(const std::string& name, const std::string& help,
                                     std::vector<double> bounds,
                                     std::vector<std::string> labelNames, FamilyOptions options) {
  Histogram check(bounds);  // throws for unusable bounds before anything is declared
  std::lock_guard lock(mutex_);
  Entry& entry = declare(name, "histogram", help, labelNames, bounds);
  if (!entry.histograms) {
    entry.histograms =
        std::make_unique<HistogramFamily>(std::move(labelNames), std::move(options),
                                          [bounds] { return std::make_unique<Histogram>(bounds); });
  }
  return *entry.histograms;
}

CollectorHandle Registry::addCollector(Collector collect) {
  std::lock_guard lock(mutex_);
  const std::uint64_t id = nextCollector_++;
  collectors_.emplace(id, std::move(collect));
  return CollectorHandle(this, id);
}

void Registry::removeCollector(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  collectors_.erase(id);
}

std::string Registry::render() const {
  std::lock_guard lock(mutex_);
  MetricWriter writer;
  for (const auto& [id, collect] : collectors_) collect(writer);

  std::string out;
  for (const auto& [name, entry] : families_) {
    renderHeader(out, name, entry.type, entry.help);
    if (entry.counters) {
      entry.counters->forEach([&](const std::vector<std::string>& values, const Counter& c) {
        out +=
            name + renderLabels(entry.labelNames, values) + " " + std::to_string(c.value()) + "\n";
      });
    } else if (entry.gauges) {
      entry.gauges->forEach([&](const std::vector<std::string>& values, const Gauge& g) {
        out += name + renderLabels(entry.labelNames, values) + " " + formatValue(g.value()) + "\n";
      });
    } else if (entry.histograms) {
      entry.histograms->forEach([&](const std::vector<std::string>& values, const Histogram& h) {
        renderHistogram(out, name, entry.labelNames, values, h);
      });
    }
  }
  for (const auto& [name, reported] : writer.reported()) {
    if (families_.count(name) != 0) continue;  // a declared family owns its name
    renderHeader(out, name, reported.type, reported.help);
    for (const MetricWriter::Sample& sample : reported.samples) {
      std::vector<std::string> names;
      std::vector<std::string> values;
      for (const auto& [label, value] : sample.labels) {
        names.push_back(label);
        values.push_back(value);
      }
      out += name + renderLabels(names, values) + " " + formatValue(sample.value) + "\n";
    }
  }
  return out;
}

Registry& defaultRegistry() {
  // Never destroyed: metrics may be updated by threads that outlive main's statics.
  static Registry* registry = new Registry();
  return *registry;
}

// --- Format ------------------------------------------------------------------------------------

namespace {

/// The exposition format escapes backslash and newline in HELP text, and also '"' in label
/// values.
std::string escape(std::string_view text, bool quotes) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quotes && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string escapeHelp(std::string_view text) { return escape(text, false); }

std::string escapeLabelValue(std::string_view text) { return escape(text, true); }

std::string formatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[32];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  if (ec != std::errc()) return "NaN";
  return std::string(buffer, end);
}

bool validMetricName(std::string_view name) { return validName(name, true); }
bool validLabelName(std::string_view name) { return validName(name, false); }

}  // namespace imagegate::metrics
