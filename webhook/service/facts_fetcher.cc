#include "service/facts_fetcher.h"

#include <algorithm>
#include <future>
#include <utility>

#include "metrics/metrics.h"
#include "service/fetch_scheduler.h"

namespace imagegate::service {

using policy::ImageLookup;

namespace {

metrics::CounterFamily& lookupFailures() {
  static metrics::CounterFamily& family = metrics::defaultRegistry().counter(
      "imagegate_image_fetch_failures_total",
      "Images a review needed but could not get facts for, by kind (timeout when the review's "
      "deadline passed first; a registry's failure remembered for a while counts as its kind)",
      {"kind"}, metrics::FamilyOptions{32, {}});
  return family;
}

[[maybe_unused]] const bool kFetcherMetricsDeclared = (lookupFailures(), true);

/// The facts of `image` once `future` has them, or why not, waiting no longer than `deadline`.
/// `goesOn`: the fetch outlives `deadline` (it runs to `background`) and fills the cache.
policy::ImageLookup awaitLookup(const image::ImageRef& image,
                                std::future<image::ImageFacts>& future, Deadline deadline,
                                bool goesOn) {
  policy::ImageLookup lookup;
  if (future.wait_until(deadline.at()) != std::future_status::ready) {
    lookup.error = "timed out fetching " + image.str() + " within the admission deadline" +
                   (goesOn ? "; image facts still loading: the fetch goes on and the next "
                             "review will find them cached"
                           : "");
    lookupFailures().labels({"timeout"}).inc();
    return lookup;
  }
  try {
    lookup.facts = future.get();
  } catch (const registry::FetchError& e) {
    lookup.error = e.what();
    lookupFailures().labels({registry::fetchErrorKindName(e.kind())}).inc();
  } catch (const std::exception& e) {
    lookup.error = e.what();
    lookupFailures().labels({"other"}).inc();
  }
  return lookup;
}

bool needsFiles(const policy::FactNeeds& needs, const image::ImageFacts& facts) {
  return needs.files || (needs.filesIfNamedUser && policy::isNamedUser(facts.imageConfig.user));
}

FetchLimits limitsOf(const FetcherOptions& options) {
  return {options.threads, std::max<std::size_t>(1, options.perRegistry), options.failureMemory};
}

}  // namespace

FactsFetcher::FactsFetcher(FetcherOptions options)
    : options_(std::move(options)),
      scheduler_(std::make_unique<FetchScheduler>(options_.registry, options_.platform,
                                                  limitsOf(options_))),
      files_(std::make_unique<LayerFiles>(options_.registry, options_.files)) {}

FactsFetcher::~FactsFetcher() {
  // Scans use the registry the scheduler's fetches use: both are stopped before either goes.
  files_->stop();
  scheduler_->stop();
  files_.reset();
}

std::vector<image::ImageRef> FactsFetcher::lookUpKnown(const policy::ReviewPlan& plan,
                                                       policy::ImageFactsMap& facts) const {
  std::vector<image::ImageRef> toFetch;
  for (const auto& [image, needs] : plan.images) {
    if (facts.count(image) != 0) continue;
    // Asked here, on the caller's thread, so that a cached image never waits behind fetches.
    if (options_.cache) {
      if (auto known = options_.cache->cached(image, options_.platform)) {
        ImageLookup& lookup = facts[image];
        lookup.facts = std::move(known);
        if (!needsFiles(needs, *lookup.facts)) continue;
        lookup.files = files_->cached(lookup.facts->manifestDigest);
        if (lookup.files) continue;
        toFetch.push_back(image);  // facts known, files still to read
        continue;
      }
    }
    toFetch.push_back(image);
  }
  return toFetch;
}

void FactsFetcher::fetch(const policy::ReviewPlan& plan, const std::vector<image::ImageRef>& images,
                         Deadline deadline, policy::ImageFactsMap& facts) const {
  // The review waits until `deadline`; its fetches and scans may go on until `background` to
  // fill the caches for the next review of the same image.
  const Deadline background(std::max(deadline.at(), SteadyClock::now() + options_.backgroundTime));
  const bool goesOn = background.at() > deadline.at();
  std::vector<std::optional<std::future<image::ImageFacts>>> fetching(images.size());
  for (std::size_t i = 0; i < images.size(); ++i) {
    const auto known = facts.find(images[i]);
    if (known != facts.end() && known->second.facts) continue;
    fetching[i] = scheduler_->submit(images[i], background);
  }
  for (std::size_t i = 0; i < images.size(); ++i) {
    if (fetching[i]) facts[images[i]] = awaitLookup(images[i], *fetching[i], deadline, goesOn);
  }
  // Every image's scans are queued before any is waited for, so the images of one review are
  // read side by side.
  std::vector<std::pair<ImageLookup*, LayerFiles::Pending>> reading;
  for (const image::ImageRef& image : images) {
    const auto needs = plan.images.find(image);
    if (needs == plan.images.end()) continue;
    ImageLookup& lookup = facts[image];
    if (!lookup.facts || lookup.files || !needsFiles(needs->second, *lookup.facts)) continue;
    if (auto merged = files_->cached(lookup.facts->manifestDigest)) {
      lookup.files = std::move(merged);
      continue;
    }
    reading.emplace_back(&lookup, files_->start(*lookup.facts, background));
  }
  for (auto& [lookup, pending] : reading) files_->finish(pending, deadline, *lookup);
}

void FactsFetcher::stop() {
  scheduler_->stop();
  files_->stop();
}

bool FactsFetcher::waitIdle(std::optional<SteadyClock::time_point> until) {
  return scheduler_->waitIdle(until) && files_->waitIdle(until);
}

cache::CacheStats FactsFetcher::layerCacheStats() const { return files_->layerCache().stats(); }

std::vector<std::string> FactsFetcher::describeRunning() const {
  return scheduler_->describeRunning();
}

}  // namespace imagegate::service
