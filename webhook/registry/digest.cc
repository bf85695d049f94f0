#include "registry/digest.h"

#include <openssl/evp.h>

#include <cstdint>

#include "common/error.h"

namespace imagegate::registry {
namespace {

const EVP_MD* mdFor(std::string_view algorithm) {
  if (algorithm == "sha256") {
    return EVP_sha256();
  }
  if (algorithm == "sha512") {
    return EVP_sha512();
  }
  return nullptr;
}

bool isLowerHex(std::string_view text) {
  for (const char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<ParsedDigest> parseDigest(std::string_view digest) {
  const auto colon = digest.find(':');
  if (colon == std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view algorithm = digest.substr(0, colon);
  const std::string_view hex = digest.substr(colon + 1);
  const std::size_t expectedLength = algorithm == "sha256" ? 64 : algorithm == "sha512" ? 128 : 0;
  if (expectedLength == 0 || hex.size() != expectedLength || !isLowerHex(hex)) {
    return std::nullopt;
  }
  return ParsedDigest{std::string(algorithm), std::string(hex)};
}

struct Digester::Context {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~Context() { EVP_MD_CTX_free(md); }
};

Digester::Digester(std::string_view algorithm)
    : ctx_(std::make_unique<Context>()), algorithm_(algorithm) {
  const EVP_MD* md = mdFor(algorithm);
  if (md == nullptr) {
    throw Error("unsupported digest algorithm \"" + std::string(algorithm) + "\"");
  }
  if (ctx_->md == nullptr || EVP_DigestInit_ex(ctx_->md, md, nullptr) != 1) {
    throw Error("OpenSSL could not initialise " + algorithm_);
  }
}

Digester::~Digester() = default;
Digester::Digester(Digester&& other) noexcept = default;
Digester& Digester::operator=(Digester&& other) noexcept = default;

void Digester::update(std::string_view data) {
  if (!data.empty() && EVP_DigestUpdate(ctx_->md, data.data(), data.size()) != 1) {
    throw Error("OpenSSL digest update failed");
  }
  bytes_ += data.size();
}

std::string Digester::finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx_->md, out, &length) != 1) {
    throw Error("OpenSSL digest finish failed");
  }
  return algorithm_ + ":" + toHex(std::string_view(reinterpret_cast<const char*>(out), length));
}

std::string sha256Digest(std::string_view data) {
  Digester digester("sha256");
  digester.update(data);
  return digester.finish();
}

std::string toHex(std::string_view data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(data.size() * 2);
  for (const char c : data) {
    const auto byte = static_cast<unsigned char>(c);
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 0x0f]);
  }
  return hex;
}

bool digestMatches(std::string_view expected, std::string_view data) {
  const auto parsed = parseDigest(expected);
  if (!parsed) {
    return false;
  }
  Digester digester(parsed->algorithm);
  digester.update(data);
  return digester.finish() == expected;
}

}  // namespace imagegate::registry
