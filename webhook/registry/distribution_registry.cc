#include "registry/distribution_registry.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>
#include <variant>

#include "common/log.h"
#include "metrics/metrics.h"
#include "registry/digest.h"

namespace imagegate::registry {
namespace {

using Kind = FetchError::Kind;

constexpr int kMaxRedirects = 5;
constexpr int kMaxRetryAfterWaits = 3;
// The longest Retry-After one fetch sleeps for: a pod's creation waits on the review, and a
// registry that asks for more is better answered at once (onFetchError decides) than by holding
// a fetch thread. Three such waits stay well inside the 30 s a review can have.
constexpr std::chrono::seconds kMaxRetryAfterWait{3};
// Time left over after a Retry-After wait for the retried request itself.
constexpr std::chrono::seconds kRetriedRequestMargin{1};
constexpr std::size_t kMaxDetailChars = 200;
// Shorter secrets are not scrubbed: they would mangle ordinary words and are too short to be real.
constexpr std::size_t kMinSecretChars = 3;
constexpr std::string_view kRedacted = "[redacted]";
constexpr std::size_t kMaxHints = 1024;

bool isRedirect(unsigned status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// Replaces every secret with kRedacted in one pass that copies earlier marks as they are, so
// scrubbing twice changes nothing and a secret that is part of the mark ("acted") is not found
// again in the mark just written.
void scrubSecrets(std::string& text, const std::vector<std::string>& secrets) {
  const std::string_view input(text);
  std::string scrubbed;
  scrubbed.reserve(input.size());
  for (std::size_t pos = 0; pos < input.size();) {
    const std::string_view rest = input.substr(pos);
    std::size_t secretLength = 0;
    for (const std::string& secret : secrets) {
      if (secret.size() >= kMinSecretChars && rest.starts_with(secret)) {
        secretLength = std::max(secretLength, secret.size());
      }
    }
    if (secretLength > 0 || rest.starts_with(kRedacted)) {
      scrubbed.append(kRedacted);
      pos += secretLength > 0 ? secretLength : kRedacted.size();
    } else {
      scrubbed.push_back(input[pos++]);
    }
  }
  text = std::move(scrubbed);
}

// Cuts text from the network to `limit` characters without letting part of a secret through.
// Secrets are scrubbed before the cut, since a cut secret no longer matches; and an end that is
// the start of a secret (one the sender itself cut short) is scrubbed as well.
std::string cutScrubbed(std::string text, std::size_t limit,
                        const std::vector<std::string>& secrets) {
  scrubSecrets(text, secrets);
  if (text.size() <= limit) {
    return text;
  }
  text.resize(limit);
  for (const std::string& secret : secrets) {
    for (std::size_t length = std::min(secret.size(), text.size()); length >= kMinSecretChars;
         --length) {
      if (text.ends_with(std::string_view(secret).substr(0, length))) {
        text.replace(text.size() - length, length, kRedacted);
        break;
      }
    }
  }
  return text;
}

// Registry error bodies are {"errors":[{"code":..., "message":...}]}; the first message is the
// most useful detail. Anything from the network is cut short, scrubbed of the call's secrets
// (a registry may echo what it was sent) and stripped of control characters.
std::string errorDetail(const HttpResponse& response, const std::vector<std::string>& secrets) {
  std::string detail;
  const auto document = nlohmann::json::parse(response.body, nullptr, false);
  if (document.is_object() && document.contains("errors") && document["errors"].is_array() &&
      !document["errors"].empty() && document["errors"][0].is_object()) {
    const auto& first = document["errors"][0];
    if (first.contains("message") && first["message"].is_string()) {
      detail = first["message"].get<std::string>();
    } else if (first.contains("code") && first["code"].is_string()) {
      detail = first["code"].get<std::string>();
    }
  }
  std::string clean = cutScrubbed(detail, kMaxDetailChars, secrets);
  for (char& c : clean) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      c = ' ';
    }
  }
  return clean;
}

std::string statusSummary(unsigned status) {
  switch (status) {
    case 401:
      return "unauthorized";
    case 403:
      return "access denied";
    case 404:
      return "not found";
    case 429:
      return "too many requests";
    default:
      return status >= 500 ? "registry server error" : "unexpected response";
  }
}

Kind kindForStatus(unsigned status) {
  switch (status) {
    case 401:
      return Kind::kUnauthorized;
    case 403:
      return Kind::kForbidden;
    case 404:
      return Kind::kNotFound;
    case 429:
      return Kind::kRateLimited;
    default:
      return Kind::kServerError;
  }
}

[[noreturn]] void failStatus(const HttpResponse& response, const std::vector<std::string>& secrets,
                             const std::string& what) {
  std::string detail = errorDetail(response, secrets);
  if (detail.empty()) {
    detail = statusSummary(response.status);
  }
  throw FetchError(kindForStatus(response.status),
                   what + detail + " (HTTP " + std::to_string(response.status) + ")");
}

// Retry-After in seconds; HTTP-dates are not honoured (registries send seconds). Waits too long
// to count saturate, so they are refused like any other wait that does not fit.
std::optional<std::uint64_t> retryAfterSeconds(const HttpResponse& response) {
  const std::string value = response.header("retry-after");
  std::uint64_t seconds = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (value.empty() || end != value.data() + value.size()) {
    return std::nullopt;
  }
  if (ec == std::errc::result_out_of_range) {
    return std::numeric_limits<std::uint64_t>::max();
  }
  return ec == std::errc() ? std::optional(seconds) : std::nullopt;
}

// Registry metrics, declared here and only here. Registry hosts come from pod specs: the family
// keeps 100 of them apart and folds the rest into "other".
metrics::CounterFamily& requestsTotal() {
  static metrics::CounterFamily& family = metrics::defaultRegistry().counter(
      "imagegate_registry_requests_total",
      "HTTP requests to registries (and their token services), by registry host, request type "
      "(manifest, blob, token) and status class (2xx, 3xx, 4xx, 5xx, or error when no answer)",
      {"registry", "type", "code"}, metrics::FamilyOptions{1000, {"registry"}});
  return family;
}

metrics::HistogramFamily& requestSeconds() {
  static metrics::HistogramFamily& family = metrics::defaultRegistry().histogram(
      "imagegate_registry_request_duration_seconds",
      "Time from sending a registry request to the end of its response body (a blob's whole "
      "download), by registry host and request type",
      metrics::latencyBuckets(), {"registry", "type"}, metrics::FamilyOptions{300, {"registry"}});
  return family;
}

metrics::CounterFamily& fetchErrorsTotal() {
  static metrics::CounterFamily& family = metrics::defaultRegistry().counter(
      "imagegate_registry_fetch_errors_total",
      "Image fetches (manifest and config, or one blob) from a registry that failed, by kind",
      {"kind"}, metrics::FamilyOptions{32, {}});
  return family;
}

[[maybe_unused]] const bool kRegistryMetricsDeclared =
    (requestsTotal(), requestSeconds(), fetchErrorsTotal(), true);

std::string_view statusClass(unsigned status) {
  static constexpr std::string_view kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  if (status >= 100 && status < 600) return kClasses[status / 100 - 1];
  return "other";
}

std::string_view requestType(std::string_view path) {
  if (path.find("/blobs/") != std::string_view::npos) return "blob";
  if (path.find("/manifests/") != std::string_view::npos) return "manifest";
  return "other";
}

/// transport.send(), counted and timed under the registry the call is for.
HttpResponse sendMeasured(HttpTransport& transport, std::string_view registry,
                          std::string_view type, const HttpRequest& request, Deadline deadline,
                          const ReadOptions& read) {
  const SteadyClock::time_point started = SteadyClock::now();
  const auto observe = [&](std::string_view code) {
    requestsTotal().labels({registry, type, code}).inc();
    requestSeconds()
        .labels({registry, type})
        .observe(std::chrono::duration<double>(SteadyClock::now() - started).count());
  };
  try {
    HttpResponse response = transport.send(request, deadline, read);
    observe(statusClass(response.status));
    return response;
  } catch (...) {
    observe("error");
    throw;
  }
}

}  // namespace

// Everything one fetchFacts call needs to know, plus the secrets to scrub from its messages.
struct DistributionRegistry::Call {
  image::ImageRef ref;
  std::string host;  ///< API host[:port]
  Url base;          ///< scheme://host/
  std::optional<Credentials> credentials;
  Deadline deadline;
  std::vector<std::string> secrets;
  /// Layer downloads take as long as the deadline allows; manifests and configs are small and
  /// get the configured request timeout.
  bool capRequests = true;

  std::string scope() const { return "repository:" + ref.repository + ":pull"; }
  Deadline requestDeadline(std::chrono::milliseconds cap) const {
    return capRequests ? deadline.capped(cap) : deadline;
  }
};

struct DistributionRegistry::Manifest {
  ParsedManifest parsed;
  std::string digest;
  std::uint64_t size = 0;
};

DistributionRegistry::DistributionRegistry(DistributionRegistryOptions options)
    : options_(std::move(options)), transport_(options_.transport) {
  if (!transport_) {
    HttpClientOptions http;
    http.connectTimeout = options_.config.connectTimeout;
    for (const RegistryHostConfig& host : options_.config.registries) {
      if (!host.caFile.empty()) {
        http.caFiles[host.host] = host.caFile;
        http.caFiles[apiHost(host.host)] = host.caFile;
      }
    }
    transport_ = std::make_shared<HttpClient>(std::move(http));
  }
  if (!options_.sleep) {
    options_.sleep = [](std::chrono::milliseconds wait) { std::this_thread::sleep_for(wait); };
  }
}

std::string DistributionRegistry::apiHost(const std::string& registry) {
  return normalizeRegistryHost(registry) == "docker.io" ? "registry-1.docker.io" : registry;
}

bool DistributionRegistry::insecureHost(const std::string& authority) const {
  const RegistryHostConfig* entry = options_.config.find(authority);
  return entry != nullptr && entry->insecure;
}

DistributionRegistry::Call DistributionRegistry::startCall(const image::ImageRef& ref,
                                                           Deadline deadline) const {
  Call call{ref, apiHost(ref.registry), {}, options_.credentials.find(ref.registry), deadline, {}};
  if (call.credentials) {
    call.secrets = {call.credentials->password, call.credentials->identityToken,
                    base64Encode(call.credentials->username + ":" + call.credentials->password)};
  }
  const bool insecure = insecureHost(ref.registry) || insecureHost(call.host);
  const auto base = parseUrl((insecure ? "http://" : "https://") + call.host + "/");
  if (!base) {
    throw failure(call, Kind::kUnreachable, "\"" + call.host + "\" is not a valid registry host");
  }
  call.base = *base;
  return call;
}

image::ImageFacts DistributionRegistry::fetchFacts(const image::ImageRef& ref,
                                                   const image::Platform& platform,
                                                   Deadline deadline) {
  Call call = startCall(ref, deadline);
  try {
    image::ImageFacts facts;
    facts.ref = ref;
    const ImageManifest manifest = resolveManifest(call, platform, facts);
    facts.manifestMediaType = manifest.mediaType;
    facts.config = manifest.config;
    facts.layers = manifest.layers;
    facts.imageConfig = fetchConfig(call, manifest.config);
    if (facts.platform.os.empty()) {  // a single-platform image says what it is in its config
      facts.platform = image::Platform{facts.imageConfig.os, facts.imageConfig.architecture, ""};
    }
    return facts;
  } catch (const FetchError& e) {
    throw failure(call, e.kind(), e.what());
  } catch (const Error& e) {
    throw failure(call, Kind::kInvalidContent, e.what());
  }
}

void DistributionRegistry::fetchBlob(const image::ImageRef& ref, const image::Descriptor& blob,
                                     const BlobSink& sink, Deadline deadline) {
  Call call = startCall(ref, deadline);
  call.capRequests = false;
  if (!parseDigest(blob.digest)) {
    throw failure(call, Kind::kInvalidContent, "\"" + blob.digest + "\" is not a blob digest");
  }
  ReadOptions read;
  read.bodyLimit = static_cast<std::size_t>(blob.size);
  read.sink = sink;
  try {
    get(call, "/v2/" + ref.repository + "/blobs/" + blob.digest, "", read);
  } catch (const FetchError& e) {
    throw failure(call, e.kind(), e.what());
  }
}

FetchError DistributionRegistry::failure(const Call& call, FetchError::Kind kind,
                                         const std::string& what) {
  fetchErrorsTotal().labels({fetchErrorKindName(kind)}).inc();
  std::string message = "cannot fetch " + call.ref.str() + " from " + call.host + ": " + what;
  scrubSecrets(message, call.secrets);
  return FetchError(kind, message);
}

void DistributionRegistry::addSecret(Call& call, const std::string& secret) {
  if (std::find(call.secrets.begin(), call.secrets.end(), secret) == call.secrets.end()) {
    call.secrets.push_back(secret);
  }
}

std::chrono::milliseconds DistributionRegistry::honouredWait(const Call& call,
                                                             const HttpResponse& response,
                                                             std::uint64_t seconds) {
  const auto left = call.deadline.remaining();
  const std::string asked = "the registry asked to retry after " + std::to_string(seconds) + " s";
  // Compared in seconds first: a wait of days does not fit in a duration of milliseconds.
  const auto leftSeconds = std::chrono::duration_cast<std::chrono::seconds>(left);
  if (seconds > static_cast<std::uint64_t>(leftSeconds.count()) ||
      std::chrono::seconds(seconds) + kRetriedRequestMargin > left) {
    failStatus(response, call.secrets,
               asked + ", beyond the review's deadline (" + std::to_string(leftSeconds.count()) +
                   " s left): ");
  }
  if (std::chrono::seconds(seconds) > kMaxRetryAfterWait) {
    failStatus(response, call.secrets,
               asked + ", longer than imagegate waits for a registry (" +
                   std::to_string(kMaxRetryAfterWait.count()) + " s): ");
  }
  return std::chrono::seconds(seconds);
}

ImageManifest DistributionRegistry::resolveManifest(Call& call, const image::Platform& platform,
                                                    image::ImageFacts& facts) {
  const image::ImageRef& ref = call.ref;
  const std::string reference = !ref.digest.empty() ? ref.digest
                                : !ref.tag.empty()  ? ref.tag
                                                    : "latest";
  Manifest top = fetchManifest(call, reference, ref.digest);
  if (auto* manifest = std::get_if<ImageManifest>(&top.parsed)) {
    facts.manifestDigest = top.digest;
    facts.platform.os.clear();  // filled from the config
    return std::move(*manifest);
  }
  const IndexEntry& entry = selectPlatform(std::get<ImageIndex>(top.parsed), platform);
  Manifest chosen = fetchManifest(call, entry.descriptor.digest, entry.descriptor.digest);
  if (chosen.size != entry.descriptor.size) {
    throw FetchError(Kind::kInvalidContent, "the manifest for " + entry.platform->str() + " is " +
                                                std::to_string(chosen.size) +
                                                " bytes but the index says " +
                                                std::to_string(entry.descriptor.size));
  }
  auto* manifest = std::get_if<ImageManifest>(&chosen.parsed);
  if (manifest == nullptr) {
    throw FetchError(Kind::kInvalidContent, "the index entry for " + entry.platform->str() +
                                                " is another index (nested indexes are not "
                                                "supported)");
  }
  facts.manifestDigest = chosen.digest;
  facts.platform = *entry.platform;
  return std::move(*manifest);
}

DistributionRegistry::Manifest DistributionRegistry::fetchManifest(
    Call& call, const std::string& reference, const std::string& expectedDigest) {
  ReadOptions read;
  read.bodyLimit = kMaxManifestBytes;
  const HttpResponse response = get(call, "/v2/" + call.ref.repository + "/manifests/" + reference,
                                    manifestAcceptHeader(), read);

  Manifest manifest;
  manifest.size = response.body.size();
  // Pinned: the body must hash to the pin. Unpinned: to what the registry says it is, if it says.
  const std::string claimed =
      !expectedDigest.empty() ? expectedDigest : response.header("docker-content-digest");
  const auto parsedClaim = parseDigest(claimed);
  if (!claimed.empty() && !parsedClaim) {
    throw FetchError(Kind::kInvalidContent, "the registry sent a malformed digest \"" +
                                                claimed.substr(0, 80) + "\" for " + reference);
  }
  manifest.digest = sha256Digest(response.body);
  if (parsedClaim) {
    if (!digestMatches(claimed, response.body)) {
      const std::string what = reference.starts_with("sha256:") ? reference : "tag " + reference;
      throw FetchError(Kind::kInvalidContent, "the manifest served for " + what + " hashes to " +
                                                  manifest.digest + ", not " + claimed);
    }
    manifest.digest = claimed;
  }
  manifest.parsed = parseManifest(response.body, response.header("content-type"));
  return manifest;
}

image::ImageConfig DistributionRegistry::fetchConfig(Call& call, const image::Descriptor& config) {
  if (config.size > kMaxConfigBytes) {
    throw FetchError(Kind::kInvalidContent, "the image config is " + std::to_string(config.size) +
                                                " bytes, over the limit of " +
                                                std::to_string(kMaxConfigBytes));
  }
  const auto parsed = parseDigest(config.digest);
  Digester digester(parsed ? parsed->algorithm : "sha256");
  std::string body;
  ReadOptions read;
  read.bodyLimit = static_cast<std::size_t>(config.size);
  read.sink = [&](std::string_view chunk) {
    digester.update(chunk);
    body.append(chunk);
  };
  get(call, "/v2/" + call.ref.repository + "/blobs/" + config.digest, "", read);
  if (digester.bytes() != config.size) {
    throw FetchError(Kind::kInvalidContent,
                     "the image config blob is " + std::to_string(digester.bytes()) +
                         " bytes but the manifest says " + std::to_string(config.size));
  }
  const std::string actual = digester.finish();
  if (actual != config.digest) {
    throw FetchError(Kind::kInvalidContent,
                     "the image config blob hashes to " + actual + ", not " + config.digest);
  }
  return parseImageConfig(body);
}

std::string DistributionRegistry::authorizationFor(const Call& call) const {
  std::optional<Challenge> hint;
  {
    std::lock_guard lock(hintsMutex_);
    const auto it = hints_.find(call.host);
    if (it != hints_.end()) {
      hint = it->second;
    }
  }
  if (!hint) {
    return "";
  }
  if (hint->isBearer()) {
    const auto token =
        tokens_.get(hint->param("realm"), hint->param("service"), call.scope(), SteadyClock::now());
    return token ? "Bearer " + *token : "";
  }
  if (hint->isBasic() && call.credentials && !call.credentials->username.empty()) {
    return basicAuthorization(*call.credentials);
  }
  return "";
}

HttpResponse DistributionRegistry::get(Call& call, const std::string& path,
                                       const std::string& accept, const ReadOptions& read) {
  Url url = call.base;
  url.target = path;
  int redirects = 0;
  int authRounds = 0;
  int waits = 0;
  while (true) {
    if (call.deadline.expired()) {
      throw FetchError(Kind::kTimeout, "the deadline passed");
    }
    HttpRequest request;
    request.url = url;
    if (!accept.empty()) {
      request.headers.emplace_back("Accept", accept);
    }
    // Credentials belong to the registry's origin only; a redirect to blob storage gets none.
    const bool atRegistry = url.origin() == call.base.origin();
    const std::string authorization = atRegistry ? authorizationFor(call) : "";
    if (!authorization.empty()) {
      request.headers.emplace_back("Authorization", authorization);
      // A token cached by an earlier call is this call's secret too: the registry may echo it.
      if (authorization.starts_with("Bearer ")) {
        addSecret(call, authorization.substr(7));
      }
    }
    const HttpResponse response =
        sendMeasured(*transport_, call.host, requestType(path), request,
                     call.requestDeadline(options_.config.requestTimeout), read);
    log::debug("registry response", {{"host", url.authority()},
                                     {"path", url.target.substr(0, url.target.find('?'))},
                                     {"status", response.status}});

    if (isRedirect(response.status)) {
      const auto next = resolveLocation(url, response.header("location"));
      if (++redirects > kMaxRedirects) {
        throw FetchError(Kind::kServerError, "more than 5 redirects for " + path);
      }
      if (!next) {
        throw FetchError(Kind::kServerError, "the registry redirected to an invalid location");
      }
      if (next->scheme == "http" && url.scheme == "https" && !insecureHost(next->authority())) {
        throw FetchError(Kind::kTlsFailure,
                         "refusing a redirect from https to plain http (" + next->origin() + ")");
      }
      url = *next;
      continue;
    }
    if (response.status == 401 && atRegistry && authRounds < 2) {
      ++authRounds;
      answerChallenge(call, response, authorization);
      continue;
    }
    if ((response.status == 429 || response.status == 503) && waits < kMaxRetryAfterWaits) {
      if (const auto seconds = retryAfterSeconds(response)) {
        ++waits;
        options_.sleep(honouredWait(call, response, *seconds));
        continue;
      }
    }
    if (response.status < 200 || response.status >= 300) {
      if (response.status == 401) {
        failStatus(response, call.secrets,
                   call.credentials ? "the registry rejected the credentials from the "
                                      "docker config: "
                                    : "the registry requires credentials and the docker "
                                      "config has none for this host: ");
      }
      failStatus(response, call.secrets, "");
    }
    return response;
  }
}

void DistributionRegistry::answerChallenge(Call& call, const HttpResponse& response,
                                           const std::string& sent) {
  std::vector<Challenge> challenges;
  try {
    for (const std::string& header : response.headerValues("www-authenticate")) {
      auto parsed = parseWwwAuthenticate(header);
      challenges.insert(challenges.end(), parsed.begin(), parsed.end());
    }
  } catch (const Error& e) {
    throw FetchError(Kind::kUnauthorized,
                     std::string("the registry sent an unusable challenge: ") + e.what());
  }
  const auto challenge = preferredChallenge(challenges);
  if (!challenge) {
    failStatus(response, call.secrets,
               "the registry asks for an authentication scheme imagegate does not "
               "support: ");
  }
  {
    std::lock_guard lock(hintsMutex_);
    if (hints_.size() >= kMaxHints && hints_.count(call.host) == 0) {
      hints_.clear();  // hosts come from pod specs; a hint is only an optimisation
    }
    hints_[call.host] = *challenge;
  }
  if (challenge->isBasic()) {
    if (!call.credentials || call.credentials->username.empty()) {
      failStatus(response, call.secrets,
                 "the registry requires credentials and the docker config has none for "
                 "this host: ");
    }
    if (call.base.scheme == "http" && !insecureHost(call.host)) {
      throw FetchError(Kind::kUnauthorized, "refusing to send credentials over plain http");
    }
    if (sent.starts_with("Basic ")) {
      failStatus(response, call.secrets,
                 "the registry rejected the credentials from the docker config: ");
    }
    return;  // the retry sends Basic now that the hint is recorded
  }
  const std::string realm = challenge->param("realm");
  const std::string service = challenge->param("service");
  if (sent.starts_with("Bearer ")) {
    // A cached token the registry no longer accepts (revoked, clock skew): fetch a new one once.
    tokens_.erase(realm, service, call.scope());
  }
  fetchToken(call, *challenge);
}

void DistributionRegistry::fetchToken(Call& call, const Challenge& challenge) {
  const std::string realm = challenge.param("realm");
  const std::string service = challenge.param("service");
  auto url = parseUrl(realm);
  if (!url) {
    throw FetchError(Kind::kUnauthorized, "the registry's token realm is not an http(s) URL");
  }
  const Credentials credentials = call.credentials.value_or(Credentials{});
  if (!credentials.empty() && url->scheme == "http" && !insecureHost(url->authority())) {
    throw FetchError(Kind::kUnauthorized,
                     "refusing to send credentials over plain http to the token service " +
                         url->origin() + " (list it in registries with insecure: true)");
  }
  HttpRequest request;
  if (!credentials.identityToken.empty()) {
    // OAuth2 refresh-token grant, as `docker login` with an identity token does.
    request.method = "POST";
    request.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    request.body =
        "grant_type=refresh_token&client_id=imagegate&service=" + percentEncode(service) +
        "&scope=" + percentEncode(call.scope()) +
        "&refresh_token=" + percentEncode(credentials.identityToken);
  } else {
    if (!service.empty()) {
      addQueryParameter(*url, "service", service);
    }
    addQueryParameter(*url, "scope", call.scope());
    if (!credentials.username.empty()) {
      request.headers.emplace_back("Authorization", basicAuthorization(credentials));
    }
  }
  request.url = *url;
  ReadOptions read;
  read.bodyLimit = 1024 * 1024;
  const HttpResponse response =
      sendMeasured(*transport_, call.host, "token", request,
                   call.requestDeadline(options_.config.requestTimeout), read);
  if (response.status == 401 || response.status == 403) {
    throw FetchError(Kind::kUnauthorized, "the token service " + url->origin() +
                                              " rejected the credentials (HTTP " +
                                              std::to_string(response.status) + ")");
  }
  if (response.status < 200 || response.status >= 300) {
    failStatus(response, call.secrets, "the token service " + url->origin() + " failed: ");
  }
  try {
    const TokenResponse token = parseTokenResponse(response.body);
    addSecret(call, token.token);
    tokens_.put(realm, service, call.scope(), token, SteadyClock::now());
  } catch (const FetchError&) {
    throw;
  } catch (const Error& e) {
    throw FetchError(Kind::kUnauthorized, "the token service " + url->origin() +
                                              " sent an unusable answer: " + e.what());
  }
}

RegistryPtr makeDistributionRegistry(const RegistryConfig& config) {
  DistributionRegistryOptions options;
  options.config = config;
  if (!config.dockerConfig.empty()) {
    options.credentials = DockerConfig::load(config.dockerConfig);
  }
  return std::make_shared<DistributionRegistry>(std::move(options));
}

}  // namespace imagegate::registry
