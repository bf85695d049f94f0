#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

// Content digests as OCI uses them ("sha256:<64 lowercase hex>"), computed incrementally so a blob
// can be hashed while it streams in.
namespace imagegate::registry {

/// "sha256:<hex>" split into its parts; only algorithms we can verify are accepted.
struct ParsedDigest {
  std::string algorithm;  ///< "sha256" or "sha512".
  std::string hex;        ///< Lowercase, 64 or 128 characters.
};

/// Parses an OCI digest. Returns nullopt for unknown algorithms, uppercase or wrong-length hex.
std::optional<ParsedDigest> parseDigest(std::string_view digest);

/// Incremental hash over OpenSSL EVP. Move-only.
class Digester {
 public:
  /// `algorithm` is "sha256" or "sha512"; throws Error for anything else.
  explicit Digester(std::string_view algorithm = "sha256");
  ~Digester();
  Digester(Digester&& other) noexcept;
  Digester& operator=(Digester&& other) noexcept;
  Digester(const Digester&) = delete;
  Digester& operator=(const Digester&) = delete;

  void update(std::string_view data);
  /// Finishes the hash: "sha256:<hex>". The object must not be updated afterwards.
  std::string finish();
  std::uint64_t bytes() const { return bytes_; }

 private:
  struct Context;
  std::unique_ptr<Context> ctx_;
  std::string algorithm_;
  std::uint64_t bytes_ = 0;
};

/// The sha256 digest of `data`: "sha256:<hex>".
std::string sha256Digest(std::string_view data);

/// Lowercase hex of `data`.
std::string toHex(std::string_view data);

/// True when `data` hashes to `expected` (any supported algorithm). False for malformed digests.
bool digestMatches(std::string_view expected, std::string_view data);

}  // namespace imagegate::registry
