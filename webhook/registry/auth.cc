#include "registry/auth.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "common/bounded_file.h"
#include "common/error.h"
#include "common/json_parse.h"
#include "common/text.h"

namespace imagegate::registry {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxHeaderBytes = 8192;
constexpr std::size_t kMaxChallenges = 16;
constexpr std::size_t kMaxParams = 32;
constexpr std::size_t kMaxDockerConfigBytes = 1024 * 1024;

bool isTokenChar(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return std::isalnum(byte) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// A cursor over a WWW-Authenticate value. Errors quote the offset, never the content: the header
// comes from the network and may be arbitrarily hostile.
class ChallengeLexer {
 public:
  explicit ChallengeLexer(std::string_view text) : text_(text) {}

  bool atEnd() const { return pos_ >= text_.size(); }
  char peek() const { return atEnd() ? '\0' : text_[pos_]; }
  void advance() { ++pos_; }
  std::size_t position() const { return pos_; }
  void rewind(std::size_t pos) { pos_ = pos; }

  void skipSpace() {
    while (!atEnd() && (peek() == ' ' || peek() == '\t')) {
      ++pos_;
    }
  }
  void skipSpaceAndCommas() {
    while (!atEnd() && (peek() == ' ' || peek() == '\t' || peek() == ',')) {
      ++pos_;
    }
  }
  std::string token() {
    const std::size_t start = pos_;
    while (!atEnd() && isTokenChar(peek())) {
      ++pos_;
    }
    return std::string(text_.substr(start, pos_ - start));
  }
  std::string quoted() {
    std::string value;
    advance();  // opening quote
    while (!atEnd()) {
      const char c = peek();
      advance();
      if (c == '"') {
        return value;
      }
      if (c == '\\') {
        if (atEnd()) {
          break;
        }
        value.push_back(peek());
        advance();
      } else if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
        fail("control character inside a quoted value");
      } else {
        value.push_back(c);
      }
    }
    fail("unterminated quoted value");
  }
  // Servers are supposed to quote realms, but some do not; accept any visible run.
  std::string bareValue() {
    const std::size_t start = pos_;
    while (!atEnd() && peek() != ',' && peek() != ' ' && peek() != '\t' && peek() != '"' &&
           static_cast<unsigned char>(peek()) > 0x20 && static_cast<unsigned char>(peek()) < 0x7f) {
      ++pos_;
    }
    return std::string(text_.substr(start, pos_ - start));
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error("malformed WWW-Authenticate header at offset " + std::to_string(pos_) + ": " +
                what);
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

// Reads `name=value` pairs until the input ends or the next word is the scheme of another
// challenge (a token not followed by '=').
void readParams(ChallengeLexer& lexer, Challenge& challenge) {
  while (true) {
    lexer.skipSpaceAndCommas();
    const std::size_t start = lexer.position();
    const std::string name = lexer.token();
    if (name.empty()) {
      if (!lexer.atEnd()) {
        lexer.fail("expected a parameter name");
      }
      return;
    }
    lexer.skipSpace();
    if (lexer.peek() != '=') {
      lexer.rewind(start);
      return;
    }
    lexer.advance();
    lexer.skipSpace();
    const std::string value = lexer.peek() == '"' ? lexer.quoted() : lexer.bareValue();
    if (challenge.params.size() >= kMaxParams) {
      lexer.fail("too many parameters");
    }
    if (!challenge.params.emplace(asciiLower(name), value).second) {
      lexer.fail("parameter \"" + asciiLower(name).substr(0, 40) + "\" given twice");
    }
    lexer.skipSpace();
    if (!lexer.atEnd() && lexer.peek() != ',') {
      lexer.fail("expected ',' between parameters");
    }
  }
}

std::string stringMember(const json& object, const char* key, const std::string& where) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    return "";
  }
  if (!it->is_string()) {
    throw Error(where + "." + key + " must be a string, not " + it->type_name());
  }
  return it->get<std::string>();
}

bool isHeaderSafe(std::string_view value) {
  return std::all_of(value.begin(), value.end(),
                     [](unsigned char c) { return c > 0x20 && c < 0x7f; });
}

Credentials parseAuthEntry(const std::string& key, const json& entry) {
  const std::string where = "auths[\"" + key.substr(0, 100) + "\"]";
  if (!entry.is_object()) {
    throw Error(where + " must be an object, not " + std::string(entry.type_name()));
  }
  Credentials credentials;
  credentials.username = stringMember(entry, "username", where);
  credentials.password = stringMember(entry, "password", where);
  credentials.identityToken = stringMember(entry, "identitytoken", where);
  const std::string auth = stringMember(entry, "auth", where);
  if (!auth.empty()) {
    // Deliberately no detail: the decoded or raw value would be the secret itself.
    const auto decoded = base64Decode(auth);
    if (!decoded) {
      throw Error(where + ".auth is not valid base64");
    }
    const auto colon = decoded->find(':');
    if (colon == std::string::npos) {
      throw Error(where + ".auth does not decode to user:password");
    }
    credentials.username = decoded->substr(0, colon);
    credentials.password = decoded->substr(colon + 1);
  }
  return credentials;
}

}  // namespace

std::string Challenge::param(const std::string& name) const {
  const auto it = params.find(name);
  return it == params.end() ? "" : it->second;
}

std::vector<Challenge> parseWwwAuthenticate(std::string_view header) {
  if (header.size() > kMaxHeaderBytes) {
    throw Error("WWW-Authenticate header is " + std::to_string(header.size()) +
                " bytes, over the limit of " + std::to_string(kMaxHeaderBytes));
  }
  ChallengeLexer lexer(header);
  std::vector<Challenge> challenges;
  while (true) {
    lexer.skipSpaceAndCommas();
    if (lexer.atEnd()) {
      break;
    }
    Challenge challenge;
    challenge.scheme = asciiLower(lexer.token());
    if (challenge.scheme.empty()) {
      lexer.fail("expected an authentication scheme");
    }
    if (challenges.size() >= kMaxChallenges) {
      lexer.fail("too many challenges");
    }
    if (!lexer.atEnd() && lexer.peek() != ' ' && lexer.peek() != '\t' && lexer.peek() != ',') {
      lexer.fail("expected a space after the scheme");
    }
    readParams(lexer, challenge);
    challenges.push_back(std::move(challenge));
  }
  if (challenges.empty()) {
    throw Error("empty WWW-Authenticate header");
  }
  return challenges;
}

std::optional<Challenge> preferredChallenge(const std::vector<Challenge>& challenges) {
  for (const char* scheme : {"bearer", "basic"}) {
    for (const Challenge& challenge : challenges) {
      if (challenge.scheme == scheme) {
        return challenge;
      }
    }
  }
  return std::nullopt;
}

TokenResponse parseTokenResponse(std::string_view body) {
  JsonProblem problem;  // not shown: its reason may quote the token
  const std::optional<json> parsed = tryParseJson(body, problem);
  if (!parsed) throw Error("token response is not valid JSON");
  const json& document = *parsed;
  if (!document.is_object()) {
    throw Error("token response is not a JSON object");
  }
  TokenResponse response;
  response.token = stringMember(document, "token", "token response");
  if (response.token.empty()) {
    response.token = stringMember(document, "access_token", "token response");
  }
  if (response.token.empty()) {
    throw Error("token response has neither token nor access_token");
  }
  if (!isHeaderSafe(response.token)) {
    throw Error("token response holds a token with characters not allowed in a header");
  }
  const auto expires = document.find("expires_in");
  if (expires != document.end() && !expires->is_null()) {
    if (!expires->is_number()) {
      throw Error("token response expires_in must be a number");
    }
    const double seconds = expires->get<double>();
    if (seconds >= 1 && seconds < 366.0 * 24 * 3600) {
      response.expiresIn = std::chrono::seconds(static_cast<long long>(seconds));
    }
  }
  return response;
}

std::optional<std::string> TokenCache::get(const std::string& realm, const std::string& service,
                                           const std::string& scope,
                                           SteadyClock::time_point now) const {
  std::lock_guard lock(mutex_);
  const auto it = entries_.find(Key{realm, service, scope});
  if (it == entries_.end() || it->second.expires <= now) {
    return std::nullopt;
  }
  return it->second.token;
}

void TokenCache::put(const std::string& realm, const std::string& service, const std::string& scope,
                     const TokenResponse& token, SteadyClock::time_point now) {
  // Renew a little early so a token never expires between the cache lookup and the registry
  // checking it.
  const auto margin =
      std::min<std::chrono::seconds>(std::chrono::seconds(10), token.expiresIn / 10);
  std::lock_guard lock(mutex_);
  evictLocked(now);
  entries_[Key{realm, service, scope}] = Entry{token.token, now + token.expiresIn - margin};
}

void TokenCache::erase(const std::string& realm, const std::string& service,
                       const std::string& scope) {
  std::lock_guard lock(mutex_);
  entries_.erase(Key{realm, service, scope});
}

std::size_t TokenCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

void TokenCache::evictLocked(SteadyClock::time_point now) {
  std::erase_if(entries_, [now](const auto& entry) { return entry.second.expires <= now; });
  while (entries_.size() >= capacity_ && !entries_.empty()) {
    const auto soonest = std::min_element(
        entries_.begin(), entries_.end(),
        [](const auto& a, const auto& b) { return a.second.expires < b.second.expires; });
    entries_.erase(soonest);
  }
}

std::string normalizeRegistryHost(std::string_view key) {
  std::string host = asciiLower(key);
  for (const std::string_view scheme : {"https://", "http://"}) {
    if (host.starts_with(scheme)) {
      host.erase(0, scheme.size());
    }
  }
  host = host.substr(0, host.find('/'));
  if (host == "index.docker.io" || host == "registry-1.docker.io" ||
      host == "registry.hub.docker.com") {
    return "docker.io";
  }
  return host;
}

DockerConfig DockerConfig::parse(std::string_view text) {
  JsonProblem problem;
  const std::optional<json> parsed = tryParseJson(text, problem);
  if (!parsed) {
    // The position only: the parser's reason quotes the text it stopped at, a password maybe.
    throw Error("docker config is not valid JSON (parsing stopped at byte " +
                std::to_string(problem.byte) + ")");
  }
  const json& document = *parsed;
  if (!document.is_object()) {
    throw Error("docker config is not a JSON object");
  }
  DockerConfig config;
  const auto auths = document.find("auths");
  if (auths == document.end() || auths->is_null()) {
    return config;
  }
  if (!auths->is_object()) {
    throw Error("docker config auths must be an object");
  }
  for (const auto& [key, entry] : auths->items()) {
    Credentials credentials = parseAuthEntry(key, entry);
    if (credentials.empty()) {
      continue;  // e.g. "{}" left behind by a credsStore
    }
    const std::string host = normalizeRegistryHost(key);
    // An entry written exactly as the canonical host wins over aliases ("https://.../v1/").
    if (asciiLower(key) == host || config.byHost_.count(host) == 0) {
      config.byHost_[host] = std::move(credentials);
    }
  }
  return config;
}

DockerConfig DockerConfig::load(const std::string& path) {
  const std::string text = readBoundedFile(path, kMaxDockerConfigBytes, "docker config");
  try {
    return parse(text);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

std::optional<Credentials> DockerConfig::find(std::string_view registryHost) const {
  const auto it = byHost_.find(normalizeRegistryHost(registryHost));
  if (it == byHost_.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::string base64Encode(std::string_view data) {
  std::string encoded(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                     reinterpret_cast<const unsigned char*>(data.data()),
                                     static_cast<int>(data.size()));
  encoded.resize(static_cast<std::size_t>(length));
  return encoded;
}

std::optional<std::string> base64Decode(std::string_view text) {
  // EVP_DecodeBlock tolerates surrounding whitespace and padding anywhere and reports the padded
  // length, so the strict checks and the padding arithmetic are ours.
  if (text.size() % 4 != 0 || text.size() > (1u << 20)) {
    return std::nullopt;
  }
  std::size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') {
    ++padding;
  }
  const std::string_view body = text.substr(0, text.size() - padding);
  const bool alphabetOnly = std::all_of(body.begin(), body.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '+' || c == '/';
  });
  if (!alphabetOnly) {
    return std::nullopt;
  }
  std::string decoded(text.size() / 4 * 3, '\0');
  const int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                     reinterpret_cast<const unsigned char*>(text.data()),
                                     static_cast<int>(text.size()));
  if (length < 0 || static_cast<std::size_t>(length) < padding) {
    return std::nullopt;
  }
  decoded.resize(static_cast<std::size_t>(length) - padding);
  return decoded;
}

std::string basicAuthorization(const Credentials& credentials) {
  return "Basic " + base64Encode(credentials.username + ":" + credentials.password);
}

}  // namespace imagegate::registry
