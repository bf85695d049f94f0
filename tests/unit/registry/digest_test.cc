#include "registry/digest.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace imagegate::registry {
namespace {

constexpr char kEmptySha256[] =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kAbcSha256[] =
    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(RegistryDigest, KnownVectors) {
  EXPECT_EQ(sha256Digest(""), kEmptySha256);
  EXPECT_EQ(sha256Digest("abc"), kAbcSha256);
  Digester sha512("sha512");
  sha512.update("abc");
  EXPECT_EQ(sha512.finish(),
            "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1"
            "a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

TEST(RegistryDigest, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 100000; ++i) {
    data.push_back(static_cast<char>(i * 31));
  }
  Digester digester;
  for (std::size_t pos = 0; pos < data.size(); pos += 4093) {
    digester.update(std::string_view(data).substr(pos, 4093));
  }
  EXPECT_EQ(digester.bytes(), data.size());
  EXPECT_EQ(digester.finish(), sha256Digest(data));
}

TEST(RegistryDigest, ParseAcceptsOnlyWellFormedDigests) {
  const auto parsed = parseDigest(kAbcSha256);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->algorithm, "sha256");
  EXPECT_EQ(parsed->hex.size(), 64u);
  EXPECT_TRUE(parseDigest("sha512:" + std::string(128, 'a')));
  EXPECT_FALSE(parseDigest(""));
  EXPECT_FALSE(parseDigest("sha256"));
  EXPECT_FALSE(parseDigest("sha256:"));
  EXPECT_FALSE(parseDigest("sha256:" + std::string(63, 'a')));
  EXPECT_FALSE(parseDigest("sha256:" + std::string(65, 'a')));
  EXPECT_FALSE(parseDigest("sha256:" + std::string(64, 'A')));  // OCI digests are lowercase
  EXPECT_FALSE(parseDigest("sha256:" + std::string(64, 'g')));
  EXPECT_FALSE(parseDigest("md5:" + std::string(32, 'a')));
  EXPECT_FALSE(parseDigest("sha512:" + std::string(64, 'a')));
}

TEST(RegistryDigest, Matches) {
  EXPECT_TRUE(digestMatches(kAbcSha256, "abc"));
  EXPECT_FALSE(digestMatches(kAbcSha256, "abd"));
  EXPECT_FALSE(digestMatches(kEmptySha256, "abc"));
  EXPECT_FALSE(digestMatches("garbage", "abc"));
}

TEST(RegistryDigest, UnsupportedAlgorithmThrows) { EXPECT_THROW(Digester("md5"), Error); }

TEST(RegistryDigest, Hex) {
  EXPECT_EQ(toHex(std::string("\x00\x01\xab\xff", 4)), "0001abff");
  EXPECT_EQ(toHex(""), "");
}

}  // namespace
}  // namespace imagegate::registry
