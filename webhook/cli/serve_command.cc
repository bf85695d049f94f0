#include <boost/program_options.hpp>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>

#include "cli/commands.h"
#include "cli/serve_reload.h"
#include "cli/wiring.h"
#include "common/duration.h"
#include "common/error.h"
#include "common/log.h"
#include "metrics/metrics.h"
#include "metrics/process_metrics.h"
#include "server/server.h"
#include "service/admission_service.h"

namespace imagegate::cli {
namespace {

namespace po = boost::program_options;

constexpr const char* kUsage =
    "usage: imagegate serve --tls-cert FILE --tls-key FILE [options]\n"
    "\n"
    "Serves the validating admission webhook: POST /validate (AdmissionReview v1),\n"
    "GET /healthz, GET /readyz, GET /metrics (Prometheus text format). SIGTERM or SIGINT drains\n"
    "and stops gracefully.\n"
    "Certificate, key, policy and registry-config files are checked every second: changes are\n"
    "loaded without a restart (an invalid new set is rejected whole and the old one kept).\n";

// Guards against values that program_options happily wraps around ("-1" as unsigned).
constexpr unsigned kMaxThreads = 256;
constexpr unsigned kMaxFetchesPerRegistry = 256;
constexpr std::size_t kMaxRequestBytesLimit = std::size_t{1} << 30;
// How often certificate, policy and registry-config files are checked for changes.
constexpr std::chrono::seconds kReloadInterval{1};

struct ServeFlags {
  std::string listen;
  std::string certFile;
  std::string keyFile;
  std::string policyPath;
  std::size_t maxRequestBytes = 0;
  std::size_t maxBodyBytesInFlight = 0;
  std::size_t maxConnections = 0;
  std::size_t maxPendingPerAddress = 0;
  unsigned threads = 0;
  std::string firstRequestTimeout;
  std::string idleTimeout;
  std::string readTimeout;
  std::string maxReviewTimeout;
  std::string drainPeriod;
  std::string shutdownTimeout;
  std::string logLevel;
  std::string registryConfig;
  unsigned reviewThreads = 0;
  unsigned fetchesPerRegistry = 0;
  std::string registryFailureMemory;
  std::size_t ruleCacheBytes = 0;
};

po::options_description describeFlags(ServeFlags& flags) {
  const server::ServerOptions defaults;
  const service::ServiceOptions serviceDefaults;
  po::options_description options("options");
  options.add_options()("help,h", "show this help")(
      "listen", po::value(&flags.listen)->default_value("127.0.0.1:8443"),
      "HOST:PORT to listen on ([V6]:PORT for IPv6; port 0 picks a free port)")(
      "tls-cert", po::value(&flags.certFile), "PEM certificate chain (required)")(
      "tls-key", po::value(&flags.keyFile), "PEM private key (required)")(
      "policy", po::value(&flags.policyPath)->default_value(defaultPolicyPath(), "policies"),
      "policy file or directory")(
      "max-request-bytes", po::value(&flags.maxRequestBytes)->default_value(defaults.maxBodyBytes),
      "largest request body accepted (413 beyond)")(
      "max-body-bytes-in-flight",
      po::value(&flags.maxBodyBytesInFlight)->default_value(defaults.maxBodyBytesInFlight),
      "request bodies being received at once, all connections together (the oldest unfinished "
      "upload is dropped, then 503)")(
      "max-connections", po::value(&flags.maxConnections)->default_value(0),
      "open connections (0: from the file descriptor limit, at most 1024); when full, the oldest "
      "connection that has not completed a request, else the oldest idle one, is closed")(
      "max-pending-per-address",
      po::value(&flags.maxPendingPerAddress)->default_value(defaults.maxPendingPerAddress),
      "connections from one address that have not completed a request yet")(
      "threads", po::value(&flags.threads)->default_value(0), "I/O threads (0: one per core)")(
      "first-request-timeout", po::value(&flags.firstRequestTimeout)->default_value("5s"),
      "a new connection's TLS handshake and whole first request must arrive within this")(
      "idle-timeout", po::value(&flags.idleTimeout)->default_value("60s"),
      "keep-alive connections wait this long for their next request")(
      "read-timeout", po::value(&flags.readTimeout)->default_value("10s"),
      "limit for a later request's body and for each response write")(
      "max-review-timeout", po::value(&flags.maxReviewTimeout)->default_value("30s"),
      "a review's budget is its ?timeout= (default 10s), never more than this (at most 30s)")(
      "drain-period", po::value(&flags.drainPeriod)->default_value("0s"),
      "after SIGTERM: keep serving this long with /readyz at 503")(
      "shutdown-timeout", po::value(&flags.shutdownTimeout)->default_value("15s"),
      "then: wait at most this long for in-flight requests")(
      "registry-config", po::value(&flags.registryConfig)->default_value(""),
      "registry settings YAML (platform, credentials, CAs, timeouts, and cache: memory budgets, "
      "tag TTL, cache dir, Redis); see README")(
      "review-threads", po::value(&flags.reviewThreads)->default_value(64),
      "reviews waiting on registries at once (the others never leave the I/O threads)")(
      "fetches-per-registry",
      po::value(&flags.fetchesPerRegistry)
          ->default_value(static_cast<unsigned>(serviceDefaults.facts.perRegistry)),
      "images fetched at once from one registry host (a hung registry holds no more)")(
      "registry-failure-memory", po::value(&flags.registryFailureMemory)->default_value("10s"),
      "after a registry times out, refuses or answers 5xx: fail its fetches at once this long "
      "(0s: always ask)")(
      "rule-cache-bytes",
      po::value(&flags.ruleCacheBytes)->default_value(serviceDefaults.ruleResultCacheBytes),
      "memory for the findings of rules that read only the image, kept per image and policy "
      "revision (0: off)")("log-level", po::value(&flags.logLevel)->default_value("info"),
                           "debug, info, warn or error (one request line per request at debug)");
  return options;
}

/// "127.0.0.1:8443", "[::1]:8443", ":8443" (all IPv4 interfaces).
bool parseListen(const std::string& text, std::string& address, std::uint16_t& port) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  address = text.substr(0, colon);
  if (address.size() >= 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  if (address.empty()) address = "0.0.0.0";
  const std::string portText = text.substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), value);
  if (portText.empty() || ec != std::errc() || end != portText.data() + portText.size() ||
      value > std::numeric_limits<std::uint16_t>::max()) {
    return false;
  }
  port = static_cast<std::uint16_t>(value);
  return true;
}

/// Throws imagegate::Error naming the flag when a value is unusable.
std::chrono::milliseconds durationFlag(const std::string& name, const std::string& text,
                                       bool allowZero) {
  const auto value = parseGoDuration(text);
  if (!value || (!allowZero && value->count() == 0)) {
    throw Error("--" + name + " must be a duration such as 10s, 500ms or 1m" +
                (allowZero ? "" : " (greater than zero)") + ", not '" + text + "'");
  }
  return *value;
}

server::ServerOptions serverOptions(const ServeFlags& flags) {
  server::ServerOptions options;
  if (!parseListen(flags.listen, options.address, options.port)) {
    throw Error("--listen must be HOST:PORT, not '" + flags.listen + "'");
  }
  if (flags.certFile.empty() || flags.keyFile.empty()) {
    throw Error(
        "--tls-cert and --tls-key are required (the API server only calls webhooks "
        "over HTTPS)");
  }
  if (flags.maxRequestBytes == 0 || flags.maxRequestBytes > kMaxRequestBytesLimit) {
    throw Error("--max-request-bytes must be between 1 and " +
                std::to_string(kMaxRequestBytesLimit));
  }
  if (flags.maxBodyBytesInFlight < flags.maxRequestBytes) {
    throw Error("--max-body-bytes-in-flight must be at least --max-request-bytes");
  }
  if (flags.maxPendingPerAddress == 0) throw Error("--max-pending-per-address must be at least 1");
  if (flags.threads > kMaxThreads) {
    throw Error("--threads must be at most " + std::to_string(kMaxThreads));
  }
  options.certFile = flags.certFile;
  options.keyFile = flags.keyFile;
  options.maxBodyBytes = flags.maxRequestBytes;
  options.maxBodyBytesInFlight = flags.maxBodyBytesInFlight;
  options.maxConnections = flags.maxConnections;
  options.maxPendingPerAddress = flags.maxPendingPerAddress;
  options.threads = flags.threads;
  options.firstRequestTimeout =
      durationFlag("first-request-timeout", flags.firstRequestTimeout, false);
  options.idleTimeout = durationFlag("idle-timeout", flags.idleTimeout, false);
  options.readTimeout = durationFlag("read-timeout", flags.readTimeout, false);
  options.maxReviewTimeout = durationFlag("max-review-timeout", flags.maxReviewTimeout, false);
  if (options.maxReviewTimeout > server::kMaxReviewBudget) {
    throw Error("--max-review-timeout must be at most 30s, the API server's largest timeout");
  }
  options.drainPeriod = durationFlag("drain-period", flags.drainPeriod, true);
  options.shutdownTimeout = durationFlag("shutdown-timeout", flags.shutdownTimeout, true);
  options.extraGets.emplace_back("/metrics", [] {
    return HttpReply{200, std::string(metrics::kContentType), metrics::defaultRegistry().render()};
  });
  return options;
}

service::ServiceOptions serviceOptionsFrom(const ServeFlags& flags, CacheParts& parts) {
  if (flags.reviewThreads == 0 || flags.reviewThreads > 1024) {
    throw Error("--review-threads must be between 1 and 1024");
  }
  if (flags.fetchesPerRegistry == 0 || flags.fetchesPerRegistry > kMaxFetchesPerRegistry) {
    throw Error("--fetches-per-registry must be between 1 and " +
                std::to_string(kMaxFetchesPerRegistry));
  }
  service::ServiceOptions options;
  options.waitThreads = flags.reviewThreads;
  options.ruleResultCacheBytes = flags.ruleCacheBytes;
  options.facts = makeFetcherOptions(flags.registryConfig, "", &parts);
  options.facts.perRegistry = flags.fetchesPerRegistry;
  options.facts.failureMemory =
      durationFlag("registry-failure-memory", flags.registryFailureMemory, true);
  // A fetch or scan cut off by a review's deadline goes on (as long as the longest review may
  // last) and fills the caches, so that the next review of the image is fast.
  options.facts.backgroundTime = durationFlag("max-review-timeout", flags.maxReviewTimeout, false);
  return options;
}

void reportCache(metrics::MetricWriter& out, std::string_view cacheName,
                 const cache::CacheStats& stats) {
  const metrics::MetricWriter::Labels labels{{"cache", std::string(cacheName)}};
  out.gauge("imagegate_cache_entries", "Entries held, by cache", double(stats.entries), labels);
  out.gauge("imagegate_cache_bytes", "Estimated bytes held, by cache", double(stats.bytes), labels);
  out.counter("imagegate_cache_hits_total", "Lookups answered by the cache", double(stats.hits),
              labels);
  out.counter("imagegate_cache_misses_total", "Lookups the cache could not answer",
              double(stats.misses), labels);
  out.counter("imagegate_cache_evictions_total", "Entries dropped to stay within the budget",
              double(stats.evictions), labels);
}

/// The caches' own counters at every scrape: facts and layer indexes in memory, the cache
/// directory and Redis when configured (those of the registry config in use after a reload).
metrics::CollectorHandle collectCacheStats(const ReloadableRegistry& registry,
                                           const service::AdmissionService& service) {
  return metrics::defaultRegistry().addCollector([&registry, &service](metrics::MetricWriter& out) {
    const CacheParts parts = registry.cacheParts();
    if (parts.facts) reportCache(out, "facts", parts.facts->stats());
    if (const auto layers = service.layerCacheStats()) reportCache(out, "layer_index", *layers);
    if (const auto rules = service.ruleResultCacheStats()) reportCache(out, "rule_results", *rules);
    if (parts.directory) reportCache(out, "directory", parts.directory->stats());
    if (parts.redis) {
      reportCache(out, "redis", parts.redis->stats());
      out.counter("imagegate_cache_redis_failures_total",
                  "Redis commands that failed or timed out (the review went on without Redis)",
                  double(parts.redis->failures()));
    }
  });
}

/// Waits at most `maxWait` for the service's reviews and fetches. A fetch stuck where no deadline
/// reaches would keep the process alive after "stopped": leave without it, saying what it was.
void joinOrLeave(service::AdmissionService& service, std::chrono::milliseconds maxWait) {
  const std::vector<std::string> stillRunning = service.join(maxWait);
  if (stillRunning.empty()) return;
  log::warn("exiting with work still running",
            {{"waitedMs", maxWait.count()}, {"running", stillRunning}});
  std::fflush(nullptr);
  // Destructors would wait for that work (and the server it answers into): skip them.
  std::_Exit(kExitOk);
}

int serve(const ServeFlags& flags) {
  server::ServerOptions options;
  try {
    options = serverOptions(flags);
  } catch (const Error& e) {
    std::cerr << "imagegate serve: " << e.what() << "\n";
    return kExitUsage;
  }
  if (flags.policyPath.empty()) {
    std::cerr << "imagegate serve: --policy is required (no ./policies here)\n";
    return kExitUsage;
  }
  // Before loading: a change in between then shows as a new revision, which the reloader loads.
  auto revision = std::make_shared<PolicyRevision>(shortRevision(policyFiles(flags.policyPath)));
  options.readyDetails = [revision] { return "policyRevision: " + revision->get(); };
  metrics::registerProcessMetrics(kVersion);
  const auto policies = loadPoliciesOrReport(flags.policyPath);
  if (!policies) return kExitUsage;
  if (policies->policies.empty()) {
    log::warn("no policies loaded: every request will be allowed", {{"path", flags.policyPath}});
  }
  log::info("policies loaded",
            {{"path", flags.policyPath}, {"policies", policies->policies.size()}});

  service::ServiceOptions serviceOptions;
  std::shared_ptr<ReloadableRegistry> registry;
  try {
    CacheParts parts;
    serviceOptions = serviceOptionsFrom(flags, parts);
    registry = makeReloadable(serviceOptions.facts, std::move(parts));
  } catch (const Error& e) {
    std::cerr << "imagegate serve: " << e.what() << "\n";
    return kExitUsage;
  }
  service::AdmissionService service(policies, std::move(serviceOptions));
  const metrics::CollectorHandle cacheMetrics = collectCacheStats(*registry, service);
  const std::chrono::milliseconds shutdownTimeout = options.shutdownTimeout;
  std::unique_ptr<server::Server> server;
  try {
    server = std::make_unique<server::Server>(
        std::move(options),
        [&service](std::string_view body, Deadline deadline, server::ReviewResponder respond) {
          service.reviewAsync(body, deadline,
                              [respond = std::move(respond)](service::ReviewOutcome outcome) {
                                respond(std::move(outcome.reply));
                                outcome.decisionLog.write();  // after the answer has left
                              });
        });
  } catch (const Error& e) {
    std::cerr << "imagegate serve: " << e.what() << "\n";
    return kExitUsage;
  }
  // Declared after the server and the service it feeds: stops polling before they go.
  const auto reloader =
      startReloading({flags.certFile, flags.keyFile, flags.policyPath, flags.registryConfig},
                     *server, service, registry, revision, kReloadInterval);
  server->run();
  // Reviews that outlived the shutdown timeout answer into the stopped server, which must
  // still exist: finish them before it goes.
  joinOrLeave(service, shutdownTimeout);
  return kExitOk;
}

}  // namespace

std::optional<log::Level> parseLogLevel(const std::string& name) {
  if (name == "debug") return log::Level::kDebug;
  if (name == "info") return log::Level::kInfo;
  if (name == "warn") return log::Level::kWarn;
  if (name == "error") return log::Level::kError;
  return std::nullopt;
}

int serveCommand(const std::vector<std::string>& args) {
  ServeFlags flags;
  const po::options_description options = describeFlags(flags);
  po::variables_map vm;
  try {
    // No positional arguments: a stray word is a mistake worth reporting.
    po::store(po::command_line_parser(args).options(options).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "imagegate serve: " << e.what() << "\n\n" << kUsage << "\n" << options;
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << kUsage << "\n" << options;
    return kExitOk;
  }
  const auto level = parseLogLevel(flags.logLevel);
  if (!level) {
    std::cerr << "imagegate serve: --log-level must be debug, info, warn or error\n";
    return kExitUsage;
  }
  log::setLevel(*level);
  return serve(flags);
}

}  // namespace imagegate::cli
