#include "layers/layer_scanner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "../../testutil/layer_builder.h"
#include "common/error.h"
#include "registry/digest.h"

namespace imagegate::layers {
namespace {

using image::EntryType;
using image::LayerIndex;
using image::SecretKind;
using ::testing::HasSubstr;
using testutil::TarBuilder;

struct Blob {
  std::string bytes;
  LayerMediaType mediaType;
  std::string digest;
};

Blob blobOf(const std::string& tar, Compression compression = Compression::kGzip) {
  Blob blob;
  blob.mediaType = ociLayerMediaType(compression);
  switch (compression) {
    case Compression::kGzip:
      blob.bytes = testutil::gzipCompress(tar);
      break;
    case Compression::kZstd:
      blob.bytes = testutil::zstdCompress(tar);
      break;
    case Compression::kNone:
      blob.bytes = tar;
      break;
  }
  blob.digest = registry::sha256Digest(blob.bytes);
  return blob;
}

LayerIndex scan(const Blob& blob, ScanLimits limits = {}, std::size_t step = 64 * 1024) {
  LayerScanner scanner(blob.mediaType, blob.digest, blob.bytes.size(), limits);
  for (std::size_t i = 0; i < blob.bytes.size(); i += step) {
    scanner.feed(std::string_view(blob.bytes).substr(i, step));
  }
  return scanner.finish();
}

std::string scanError(const Blob& blob, ScanLimits limits = {}) {
  try {
    scan(blob, limits);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

const std::string kKey =
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n";

TarBuilder everyType() {
  TarBuilder t;
  t.dir("./")
      .dir("bin")
      .file("bin/busybox", std::string(5000, 'b'), 0755)
      .symlink("bin/sh", "busybox")
      .hardlink("bin/ash", "bin/busybox")
      .dir("dev")
      .charDevice("dev/null")
      .blockDevice("dev/sda")
      .fifo("run/initctl")
      .file("usr/bin/passwd", "x", 04755)
      .file("usr/bin/wall", "x", 02755, 0, 5)
      .dir("tmp", 01777)
      .file("var/log/open", "x", 0666, 1000, 1001);
  return t;
}

TEST(LayerScanner, IndexesEveryEntryTypeWithModeOwnerAndSize) {
  const LayerIndex index = scan(blobOf(everyType().tar()));
  EXPECT_EQ(index.size(), 12u);  // "./" is the root, not an entry
  const auto busybox = index.find("bin/busybox");
  ASSERT_TRUE(busybox);
  EXPECT_EQ(busybox->type, EntryType::kRegular);
  EXPECT_EQ(busybox->size, 5000u);
  EXPECT_EQ(busybox->mode, 0755u);
  EXPECT_EQ(index.find("bin/sh")->type, EntryType::kSymlink);
  EXPECT_EQ(index.find("bin/sh")->linkTarget, "busybox");
  EXPECT_EQ(index.find("bin/ash")->type, EntryType::kHardlink);
  EXPECT_EQ(index.find("bin/ash")->linkTarget, "bin/busybox");
  EXPECT_EQ(index.find("bin")->type, EntryType::kDirectory);
  EXPECT_EQ(index.find("dev/null")->type, EntryType::kCharDevice);
  EXPECT_EQ(index.find("dev/sda")->type, EntryType::kBlockDevice);
  EXPECT_EQ(index.find("run/initctl")->type, EntryType::kFifo);
  EXPECT_TRUE(index.find("usr/bin/passwd")->isSetuid());
  EXPECT_TRUE(index.find("usr/bin/wall")->isSetgid());
  EXPECT_EQ(index.find("usr/bin/wall")->gid, 5u);
  EXPECT_TRUE(index.find("var/log/open")->isWorldWritable());
  EXPECT_EQ(index.find("var/log/open")->uid, 1000u);
  EXPECT_EQ(index.find("var/log/open")->gid, 1001u);
  EXPECT_EQ(index.find("tmp")->mode, 01777u);
  EXPECT_GT(index.uncompressedBytes(), 5000u);
}

TEST(LayerScanner, GzipZstdAndUncompressedGiveTheSameIndex) {
  const std::string tar = everyType().tar();
  const std::string gz = scan(blobOf(tar, Compression::kGzip)).serialize();
  EXPECT_EQ(scan(blobOf(tar, Compression::kZstd)).serialize(), gz);
  EXPECT_EQ(scan(blobOf(tar, Compression::kNone)).serialize(), gz);
}

TEST(LayerScanner, ChunkSizeDoesNotMatter) {
  const Blob blob = blobOf(everyType().tar());
  const std::string whole = scan(blob, {}, blob.bytes.size()).serialize();
  EXPECT_EQ(scan(blob, {}, 1).serialize(), whole);
  EXPECT_EQ(scan(blob, {}, 7).serialize(), whole);
}

TEST(LayerScanner, WhiteoutsAndOpaqueMarkersAreRecordedNotFiles) {
  TarBuilder t;
  t.dir("etc").whiteout("etc", "motd").whiteout("", "opt").dir("var/cache").opaque("var/cache");
  const LayerIndex index = scan(blobOf(t.tar()));
  ASSERT_EQ(index.size(), 5u);
  EXPECT_FALSE(index.find("etc/.wh.motd"));
  EXPECT_FALSE(index.find("etc/motd"));  // find() is content only
  std::vector<std::pair<std::string, EntryType>> all;
  for (std::size_t i = 0; i < index.size(); ++i) {
    all.emplace_back(index.entry(i).path, index.entry(i).type);
  }
  EXPECT_THAT(all, ::testing::UnorderedElementsAre(
                       std::pair<std::string, EntryType>{"etc", EntryType::kDirectory},
                       std::pair<std::string, EntryType>{"etc/motd", EntryType::kWhiteout},
                       std::pair<std::string, EntryType>{"opt", EntryType::kWhiteout},
                       std::pair<std::string, EntryType>{"var/cache", EntryType::kDirectory},
                       std::pair<std::string, EntryType>{"var/cache", EntryType::kOpaque}));
}

TEST(LayerScanner, CapturesSmallPasswdAndGroupButNotLargeOnes) {
  TarBuilder t;
  t.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/app:/bin/false\n")
      .file("etc/group", "root:x:0:\n");
  const LayerIndex index = scan(blobOf(t.tar()));
  ASSERT_TRUE(index.passwd());
  EXPECT_THAT(*index.passwd(), HasSubstr("app:x:1000"));
  EXPECT_EQ(index.group(), "root:x:0:\n");

  TarBuilder big;
  big.file("etc/passwd", std::string(64 * 1024 + 1, 'x'));
  EXPECT_FALSE(scan(blobOf(big.tar())).passwd());
  // The last member of the name decides, as extraction would.
  TarBuilder replaced;
  replaced.file("etc/passwd", "root:x:0:0::/root:/bin/sh\n").symlink("etc/passwd", "/x");
  EXPECT_FALSE(scan(blobOf(replaced.tar())).passwd());
}

TEST(LayerScanner, FlagsSecretsByKindWithoutKeepingThem) {
  TarBuilder t;
  t.file("root/.ssh/id_rsa", kKey, 0600)
      .file("srv/tls/server.key", kKey)
      .file("opt/app/signing", kKey)
      .file("srv/tls/ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
      .file("app/.env", "DB_PASSWORD=hunter2\n")
      .dir("src/.git")
      .file("root/.npmrc", "//registry.npmjs.org/:_authToken=npm_abc\n")
      .file("root/.docker/config.json", R"({"auths":{"r.example":{"auth":"dTpw"}}})")
      .file("root/.aws/credentials", "[default]\naws_secret_access_key=abc\n")
      .file("app/sa.json", R"({"type": "service_account", "private_key": "k"})")
      .file("big.pem", kKey + std::string(70 * 1024, '\n'));
  const LayerIndex index = scan(blobOf(t.tar()));
  EXPECT_EQ(index.find("root/.ssh/id_rsa")->secret, SecretKind::kPrivateKey);
  EXPECT_EQ(index.find("srv/tls/server.key")->secret, SecretKind::kPrivateKey);
  EXPECT_EQ(index.find("opt/app/signing")->secret, SecretKind::kPrivateKey);
  EXPECT_EQ(index.find("srv/tls/ca.pem")->secret, SecretKind::kNone);
  EXPECT_EQ(index.find("app/.env")->secret, SecretKind::kDotEnv);
  EXPECT_EQ(index.find("src/.git")->secret, SecretKind::kGitDirectory);
  EXPECT_EQ(index.find("root/.npmrc")->secret, SecretKind::kNpmCredentials);
  EXPECT_EQ(index.find("root/.docker/config.json")->secret, SecretKind::kDockerCredentials);
  EXPECT_EQ(index.find("root/.aws/credentials")->secret, SecretKind::kAwsCredentials);
  EXPECT_EQ(index.find("app/sa.json")->secret, SecretKind::kGcpServiceAccount);
  EXPECT_EQ(index.find("big.pem")->secret, SecretKind::kNone);  // over 64 KiB: not read
  // Only the kind is kept: the key's text is nowhere in the index.
  EXPECT_THAT(index.serialize(), ::testing::Not(HasSubstr("MIIEpAIBAAKCAQEA")));
  EXPECT_THAT(index.serialize(), ::testing::Not(HasSubstr("hunter2")));
}

TEST(LayerScanner, LongNamesInPaxAndGnuFormats) {
  const std::string longPath = "usr/share/" + std::string(300, 'd') + "/" + std::string(150, 'f');
  for (const auto format : {TarBuilder::Format::kPax, TarBuilder::Format::kGnu}) {
    TarBuilder t(format);
    t.file(longPath, "x").symlink("link", "/" + longPath);
    const LayerIndex index = scan(blobOf(t.tar()));
    ASSERT_TRUE(index.find(longPath));
    EXPECT_EQ(index.find("link")->linkTarget, "/" + longPath);
  }
}

TEST(LayerScanner, NonAsciiNamesKeepTheirBytes) {
  TarBuilder t;
  t.file("usr/share/caf\xc3\xa9.txt", "x").file("usr/share/\xe6\x97\xa5\xe6\x9c\xac", "y");
  const LayerIndex index = scan(blobOf(t.tar()));
  EXPECT_TRUE(index.find("usr/share/caf\xc3\xa9.txt"));
  EXPECT_TRUE(index.find("usr/share/\xe6\x97\xa5\xe6\x9c\xac"));
}

TEST(LayerScanner, AbsoluteAndDotDotPathsLandUnderTheRoot) {
  TarBuilder t;
  t.file("/etc/abs", "x").file("../../etc/escape", "x").file("./usr/../etc/dot", "x");
  const LayerIndex index = scan(blobOf(t.tar()));
  EXPECT_TRUE(index.find("etc/abs"));
  EXPECT_TRUE(index.find("etc/escape"));
  EXPECT_TRUE(index.find("etc/dot"));
  EXPECT_EQ(index.size(), 3u);
}

TEST(LayerScanner, SamePathTenThousandTimesIsOneEntry) {
  TarBuilder t;
  for (int i = 0; i < 10000; ++i) t.file("app/config", std::to_string(i));
  const LayerIndex index = scan(blobOf(t.tar()));
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index.find("app/config")->size, 4u);  // "9999"
  EXPECT_LT(index.memoryBytes(), 4096u);
}

TEST(LayerScanner, HardlinkToAMissingPathIsIndexedForTheMergeToJudge) {
  TarBuilder t;
  t.hardlink("bin/x", "bin/nowhere");
  const LayerIndex index = scan(blobOf(t.tar()));
  EXPECT_EQ(index.find("bin/x")->linkTarget, "bin/nowhere");
  EXPECT_THROW(image::MergedFilesystem({std::make_shared<const LayerIndex>(index)}), Error);
}

TEST(LayerScanner, SymlinkLoopInALayerIsIndexedAndStopsResolution) {
  TarBuilder t;
  t.symlink("a", "b").symlink("b", "/a").file("etc/ok", "x");
  auto index = std::make_shared<const LayerIndex>(scan(blobOf(t.tar())));
  const image::MergedFilesystem fs({index});
  const auto r = fs.resolve("/a/anything");
  EXPECT_EQ(r.status, image::MergedFilesystem::Resolution::Status::kTooManyLinks);
  EXPECT_TRUE(r.loop);
  EXPECT_TRUE(fs.findReachable("**").size() == 1u);  // etc/ok; the loop reaches nothing
}

// --- hostile and broken blobs

TEST(LayerScanner, HugePaxHeaderIsRefused) {
  TarBuilder t;
  t.file(std::string(2 << 20, 'a'), "x");
  EXPECT_THAT(scanError(blobOf(t.tar())),
              ::testing::AnyOf(HasSubstr("corrupt"), HasSubstr("maxPathLength")));
}

TEST(LayerScanner, DigestMismatchIsAnErrorAndNoIndex) {
  Blob blob = blobOf(everyType().tar());
  blob.digest = registry::sha256Digest("something else");
  EXPECT_THAT(scanError(blob), HasSubstr("digest mismatch"));
}

TEST(LayerScanner, WrongSizeIsAnError) {
  const Blob blob = blobOf(everyType().tar());
  {
    LayerScanner scanner(blob.mediaType, blob.digest, blob.bytes.size() - 1);
    EXPECT_THROW(scanner.feed(blob.bytes), Error);
  }
  LayerScanner scanner(blob.mediaType, blob.digest, blob.bytes.size() + 1);
  scanner.feed(blob.bytes);
  try {
    scanner.finish();
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("not the " + std::to_string(blob.bytes.size() + 1)));
  }
}

TEST(LayerScanner, MalformedDigestIsRejectedUpFront) {
  EXPECT_THROW(LayerScanner(ociLayerMediaType(Compression::kGzip), "sha256:abc", 10), Error);
}

TEST(LayerScanner, GzipBombStopsAtTheUncompressedLimit) {
  TarBuilder t;
  t.file("zeros", std::string(64 << 20, '\0'));
  const Blob blob = blobOf(t.tar());
  ASSERT_LT(blob.bytes.size(), 1u << 20);
  ScanLimits limits;
  limits.maxUncompressedBytes = 8 << 20;
  LayerScanner scanner(blob.mediaType, blob.digest, blob.bytes.size(), limits);
  std::string error;
  try {
    scanner.feed(blob.bytes);
    scanner.finish();
  } catch (const Error& e) {
    error = e.what();
  }
  EXPECT_THAT(error, HasSubstr("ScanLimits::maxUncompressedBytes"));
  // Stopped at the limit, not after inflating all 64 MiB.
  EXPECT_LE(scanner.uncompressedBytes(), (8u << 20) + (1u << 20));
  EXPECT_THROW(scanner.finish(), Error);  // dead after the error
}

TEST(LayerScanner, BombBehindTheEndOfTheTarIsStillStopped) {
  // A complete small tar, then 64 MiB of zeros in the same gzip stream: nothing reads them as
  // tar, but they are decompressed (to check the stream's end) and count against the limit.
  const std::string tar = TarBuilder().file("a", "x").tar() + std::string(64 << 20, '\0');
  ScanLimits limits;
  limits.maxUncompressedBytes = 8 << 20;
  EXPECT_THAT(scanError(blobOf(tar), limits), HasSubstr("ScanLimits::maxUncompressedBytes"));
}

TEST(LayerScanner, TruncatedStreamIsAnError) {
  for (const auto compression : {Compression::kGzip, Compression::kZstd}) {
    Blob blob = blobOf(everyType().tar(), compression);
    blob.bytes.resize(blob.bytes.size() - 10);
    blob.digest = registry::sha256Digest(blob.bytes);  // the registry served what it has
    EXPECT_THAT(scanError(blob), HasSubstr("truncated")) << compressionName(compression);
  }
  // The tar itself cut short inside a member, in a complete gzip stream.
  std::string tar = everyType().tar();
  tar.resize(700);
  EXPECT_THAT(scanError(blobOf(tar)), HasSubstr("corrupt"));
}

TEST(LayerScanner, CorruptTarHeaderIsAnError) {
  std::string tar = TarBuilder(TarBuilder::Format::kUstar).file("a", "x").file("b", "y").tar();
  tar[512 + 512 + 148] ^= 0x11;  // the second header's checksum
  EXPECT_THAT(scanError(blobOf(tar)), HasSubstr("layer tar is corrupt at member 2"));
  EXPECT_THAT(scanError(blobOf(std::string(4096, 'x'))), HasSubstr("not a tar archive"));
}

TEST(LayerScanner, UnusableLayerFailsFeedEarlySoTheFetchCanStop) {
  // 32 MiB that are not a tar: the worker fails on the first block, and once the bounded queue
  // is full feed() must report it instead of taking the whole blob.
  const std::string junk(32 << 20, 'x');
  LayerScanner scanner(ociLayerMediaType(Compression::kNone), "", LayerScanner::kUnknownSize);
  std::size_t fed = 0;
  try {
    for (; fed < junk.size(); fed += 64 * 1024) {
      scanner.feed(std::string_view(junk).substr(fed, 64 * 1024));
    }
    FAIL() << "feed() never failed";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("not a tar archive"));
  }
  EXPECT_LT(fed, std::size_t{16} << 20);
}

TEST(LayerScanner, EntryCountPathLengthAndIndexLimitsNameTheLimit) {
  TarBuilder many;
  for (int i = 0; i < 50; ++i) many.file("f" + std::to_string(i), "");
  ScanLimits limits;
  limits.maxEntries = 10;
  EXPECT_THAT(scanError(blobOf(many.tar()), limits), HasSubstr("ScanLimits::maxEntries"));

  TarBuilder deep;
  deep.file(std::string(5000, 'a'), "x");
  EXPECT_THAT(scanError(blobOf(deep.tar())), HasSubstr("ScanLimits::maxPathLength"));
  TarBuilder longLink;
  longLink.symlink("l", std::string(5000, 'a'));
  EXPECT_THAT(scanError(blobOf(longLink.tar())), HasSubstr("ScanLimits::maxPathLength"));

  ScanLimits small;
  small.maxIndexBytes = 100;
  EXPECT_THAT(scanError(blobOf(many.tar()), small), HasSubstr("ScanLimits::maxIndexBytes"));
}

TEST(LayerScanner, DestroyingMidStreamStopsTheWorker) {
  TarBuilder t;
  for (int i = 0; i < 2000; ++i) t.file("f" + std::to_string(i), std::string(10000, 'a' + i % 26));
  const Blob blob = blobOf(t.tar());
  for (std::size_t cut : {std::size_t{0}, std::size_t{1}, blob.bytes.size() / 2}) {
    LayerScanner scanner(blob.mediaType, blob.digest, blob.bytes.size());
    for (std::size_t i = 0; i < cut; i += 4096) {
      scanner.feed(std::string_view(blob.bytes).substr(i, std::min<std::size_t>(4096, cut - i)));
    }
  }  // the destructor returns: the worker thread was woken and joined
  SUCCEED();
}

TEST(LayerScanner, LargeLayerThroughTheBoundedQueue) {
  // Much more than the few MiB the queue holds, so feed() must wait for the worker.
  TarBuilder t;
  for (int i = 0; i < 64; ++i)
    t.file("blob" + std::to_string(i), std::string(1 << 20, 'a' + i % 26));
  const Blob blob = blobOf(t.tar(), Compression::kZstd);
  const LayerIndex index = scan(blob, {}, 1 << 16);
  EXPECT_EQ(index.size(), 64u);
  EXPECT_GT(index.uncompressedBytes(), 64u << 20);
}

TEST(LayerScanner, UnverifiedScanReportsTheDigest) {
  const Blob blob = blobOf(everyType().tar());
  LayerScanner scanner(blob.mediaType, "", LayerScanner::kUnknownSize);
  scanner.feed(blob.bytes);
  scanner.finish();
  EXPECT_EQ(scanner.digest(), blob.digest);
  EXPECT_EQ(scanner.compressedBytes(), blob.bytes.size());
}

}  // namespace
}  // namespace imagegate::layers
