#include "service/facts_fetcher.h"

#include <algorithm>
#include <future>
#include <utility>

#include "service/fetch_scheduler.h"

namespace imagegate::service {
namespace {

/// The facts of `image` once `future` has them, or why not, waiting no longer than `deadline`.
policy::ImageLookup awaitLookup(const image::ImageRef& image,
                                std::future<image::ImageFacts>& future, Deadline deadline) {
  policy::ImageLookup lookup;
  if (future.wait_until(deadline.at()) != std::future_status::ready) {
    lookup.error = "timed out fetching " + image.str() + " within the admission deadline";
    return lookup;
  }
  try {
    lookup.facts = future.get();
  } catch (const std::exception& e) {
    lookup.error = e.what();
  }
  return lookup;
}

FetchLimits limitsOf(const FetcherOptions& options) {
  return {options.threads, std::max<std::size_t>(1, options.perRegistry), options.failureMemory};
}

}  // namespace

FactsFetcher::FactsFetcher(FetcherOptions options)
    : options_(std::move(options)),
      scheduler_(std::make_unique<FetchScheduler>(options_.registry, options_.platform,
                                                  limitsOf(options_))) {}

FactsFetcher::~FactsFetcher() = default;

std::vector<image::ImageRef> FactsFetcher::lookUpKnown(const policy::ReviewPlan& plan,
                                                       policy::ImageFactsMap& facts) const {
  std::vector<image::ImageRef> toFetch;
  for (const auto& [image, needs] : plan.images) {
    if (facts.count(image) != 0) continue;
    // Asked here, on the caller's thread, so that a cached image never waits behind fetches.
    if (options_.cache) {
      if (auto known = options_.cache->cached(image, options_.platform)) {
        facts[image].facts = std::move(known);
        continue;
      }
    }
    toFetch.push_back(image);
  }
  return toFetch;
}

void FactsFetcher::fetch(const std::vector<image::ImageRef>& images, Deadline deadline,
                         policy::ImageFactsMap& facts) const {
  std::vector<std::future<image::ImageFacts>> fetching;
  fetching.reserve(images.size());
  for (const image::ImageRef& image : images) {
    fetching.push_back(scheduler_->submit(image, deadline));
  }
  for (std::size_t i = 0; i < images.size(); ++i) {
    facts[images[i]] = awaitLookup(images[i], fetching[i], deadline);
  }
}

void FactsFetcher::stop() { scheduler_->stop(); }

bool FactsFetcher::waitIdle(std::optional<SteadyClock::time_point> until) {
  return scheduler_->waitIdle(until);
}

std::vector<std::string> FactsFetcher::describeRunning() const {
  return scheduler_->describeRunning();
}

}  // namespace imagegate::service
