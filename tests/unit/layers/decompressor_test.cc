#include "layers/decompressor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "../../testutil/layer_builder.h"
#include "common/error.h"

namespace imagegate::layers {
namespace {

using ::testing::HasSubstr;
using testutil::gzipCompress;
using testutil::zstdCompress;

std::string sampleData(std::size_t n) {
  std::string out;
  out.reserve(n);
  std::uint32_t x = 12345;
  while (out.size() < n) {
    x = x * 1103515245 + 12345;
    out += "line " + std::to_string(x % 1000) + " of some text\n";
  }
  out.resize(n);
  return out;
}

// Feeds `input` in pieces of `step` bytes and returns the output.
std::string run(Compression c, std::string_view input, std::size_t step) {
  auto d = makeDecompressor(c);
  std::string out;
  for (std::size_t i = 0; i < input.size(); i += step) {
    d->write(input.substr(i, step), [&](std::string_view piece) { out.append(piece); });
  }
  d->finish();
  return out;
}

std::string errorOf(Compression c, std::string_view input) {
  try {
    run(c, input, 4096);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(GzipDecompressor, RoundTripsWhateverTheChunking) {
  const std::string data = sampleData(3 << 20);
  const std::string gz = gzipCompress(data);
  EXPECT_EQ(run(Compression::kGzip, gz, gz.size()), data);
  EXPECT_EQ(run(Compression::kGzip, gz, 4093), data);
  EXPECT_EQ(run(Compression::kGzip, gzipCompress("tiny"), 1), "tiny");
}

TEST(GzipDecompressor, ConcatenatedMembersAreOneStream) {
  const std::string a = sampleData(300000);
  const std::string b = sampleData(123);
  const std::string gz = gzipCompress(a) + gzipCompress(b) + gzipCompress("");
  EXPECT_EQ(run(Compression::kGzip, gz, 1000), a + b);
  EXPECT_EQ(run(Compression::kGzip, gz, 1), a + b);
}

TEST(GzipDecompressor, TruncatedStreamIsAnError) {
  const std::string gz = gzipCompress(sampleData(100000));
  EXPECT_THAT(errorOf(Compression::kGzip, gz.substr(0, gz.size() / 2)), HasSubstr("truncated"));
  // Missing only the 8-byte trailer (CRC and length).
  EXPECT_THAT(errorOf(Compression::kGzip, gz.substr(0, gz.size() - 4)), HasSubstr("truncated"));
  EXPECT_THAT(errorOf(Compression::kGzip, ""), HasSubstr("empty"));
}

TEST(GzipDecompressor, CorruptDataIsAnError) {
  std::string gz = gzipCompress(sampleData(100000));
  EXPECT_THAT(errorOf(Compression::kGzip, "this is not gzip at all"), HasSubstr("corrupt"));
  gz[gz.size() - 6] = static_cast<char>(gz[gz.size() - 6] ^ 0x55);  // the CRC
  EXPECT_THAT(errorOf(Compression::kGzip, gz), HasSubstr("corrupt"));
  EXPECT_THAT(errorOf(Compression::kGzip, gzipCompress("a") + "garbage after the member"),
              HasSubstr("corrupt"));
}

TEST(ZstdDecompressor, RoundTripsMultipleFrames) {
  const std::string a = sampleData(2 << 20);
  const std::string b = sampleData(777);
  const std::string z = zstdCompress(a) + zstdCompress(b);
  EXPECT_EQ(run(Compression::kZstd, z, z.size()), a + b);
  EXPECT_EQ(run(Compression::kZstd, z, 1), a + b);
}

TEST(ZstdDecompressor, TruncatedAndCorruptStreamsAreErrors) {
  const std::string z = zstdCompress(sampleData(100000));
  EXPECT_THAT(errorOf(Compression::kZstd, z.substr(0, z.size() - 3)), HasSubstr("truncated"));
  EXPECT_THAT(errorOf(Compression::kZstd, "not zstd"), HasSubstr("corrupt"));
  EXPECT_THAT(errorOf(Compression::kZstd, ""), HasSubstr("empty"));
}

TEST(ZstdDecompressor, FrameAskingForAHugeWindowIsRefused) {
  const std::string data = sampleData(1 << 20);
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, 24);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_enableLongDistanceMatching, 1);
  std::string z(ZSTD_compressBound(data.size()), '\0');
  z.resize(ZSTD_compress2(cctx, z.data(), z.size(), data.data(), data.size()));
  ZSTD_freeCCtx(cctx);
  auto d = makeDecompressor(Compression::kZstd, DecompressorOptions{10});
  EXPECT_THROW(d->write(z, [](std::string_view) {}), Error);
}

TEST(IdentityDecompressor, PassesBytesThrough) {
  EXPECT_EQ(run(Compression::kNone, "abc", 1), "abc");
}

}  // namespace
}  // namespace imagegate::layers
