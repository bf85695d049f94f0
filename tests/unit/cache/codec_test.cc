#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cache/codec.h"
#include "common/error.h"
#include "image/file_index.h"

namespace imagegate::cache {
namespace {

using ::testing::HasSubstr;

image::ImageFacts sampleFacts() {
  image::ImageFacts facts;
  facts.ref = image::parseImageRef("ghcr.io/acme/app@sha256:" + std::string(64, 'b'));
  facts.manifestDigest = "sha256:" + std::string(64, 'c');
  facts.manifestMediaType = "application/vnd.oci.image.manifest.v1+json";
  facts.platform = image::Platform::parse("linux/arm64/v8");
  facts.config = {"application/vnd.oci.image.config.v1+json", "sha256:" + std::string(64, 'd'),
                  1234};
  for (char c : {'1', '2', '3'}) {
    facts.layers.push_back({"application/vnd.oci.image.layer.v1.tar+gzip",
                            "sha256:" + std::string(64, c), 1000u + static_cast<unsigned>(c)});
  }
  image::ImageConfig& config = facts.imageConfig;
  config.user = "65532:65532";
  config.env = {"PATH=/usr/bin", "LANG=C.UTF-8"};
  config.entrypoint = {"/app/server"};
  config.cmd = {"--port", "8080"};
  config.workingDir = "/app";
  config.exposedPorts = {"8080/tcp"};
  config.labels = {{"org.opencontainers.image.title", "app"}, {"team", "payments"}};
  config.diffIds = {"sha256:" + std::string(64, 'e')};
  config.historyEntries = 7;
  config.layerHistory = {"COPY server /app/server", "RUN apk add ca-certificates"};
  config.os = "linux";
  config.architecture = "arm64";
  return facts;
}

void expectSameFacts(const image::ImageFacts& a, const image::ImageFacts& b) {
  EXPECT_EQ(a.ref.str(), b.ref.str());
  EXPECT_EQ(a.manifestDigest, b.manifestDigest);
  EXPECT_EQ(a.manifestMediaType, b.manifestMediaType);
  EXPECT_EQ(a.platform.str(), b.platform.str());
  EXPECT_EQ(a.config.digest, b.config.digest);
  EXPECT_EQ(a.config.mediaType, b.config.mediaType);
  EXPECT_EQ(a.config.size, b.config.size);
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (std::size_t i = 0; i < a.layers.size(); ++i) {
    EXPECT_EQ(a.layers[i].digest, b.layers[i].digest);
    EXPECT_EQ(a.layers[i].mediaType, b.layers[i].mediaType);
    EXPECT_EQ(a.layers[i].size, b.layers[i].size);
  }
  const image::ImageConfig& x = a.imageConfig;
  const image::ImageConfig& y = b.imageConfig;
  EXPECT_EQ(x.user, y.user);
  EXPECT_EQ(x.env, y.env);
  EXPECT_EQ(x.entrypoint, y.entrypoint);
  EXPECT_EQ(x.cmd, y.cmd);
  EXPECT_EQ(x.workingDir, y.workingDir);
  EXPECT_EQ(x.exposedPorts, y.exposedPorts);
  EXPECT_EQ(x.labels, y.labels);
  EXPECT_EQ(x.diffIds, y.diffIds);
  EXPECT_EQ(x.historyEntries, y.historyEntries);
  EXPECT_EQ(x.layerHistory, y.layerHistory);
  EXPECT_EQ(x.os, y.os);
  EXPECT_EQ(x.architecture, y.architecture);
}

TEST(Codec, ImageFactsRoundTrip) {
  const image::ImageFacts facts = sampleFacts();
  expectSameFacts(decodeFacts(encodeFacts(facts)), facts);
}

TEST(Codec, DamagedFactsAreRefusedNotHalfRead) {
  const std::string encoded = encodeFacts(sampleFacts());
  EXPECT_THROW(decodeFacts(encoded.substr(0, encoded.size() / 2)), Error);
  EXPECT_THROW(decodeFacts(""), Error);
  EXPECT_THROW(decodeFacts("{\"v\":1}"), Error);
}

TEST(Codec, EnvelopeRoundTripsAndIsVerified) {
  const std::string key = "sha256:" + std::string(64, '1');
  const std::string payload = "some payload bytes";
  const std::string envelope = wrapEntry(EntryKind::kLayerIndex, key, payload);
  EXPECT_EQ(unwrapEntry(envelope, EntryKind::kLayerIndex, key), payload);

  auto refusal = [&](const std::string& bytes, EntryKind kind, const std::string& asKey) {
    try {
      unwrapEntry(bytes, kind, asKey);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_THAT(refusal(envelope.substr(0, envelope.size() - 1), EntryKind::kLayerIndex, key),
              HasSubstr("truncated"));
  EXPECT_THAT(refusal(envelope.substr(0, 10), EntryKind::kLayerIndex, key), HasSubstr("truncated"));
  EXPECT_THAT(refusal(envelope + "x", EntryKind::kLayerIndex, key), HasSubstr("trailing"));
  std::string flipped = envelope;
  flipped.back() ^= 0x01;
  EXPECT_THAT(refusal(flipped, EntryKind::kLayerIndex, key), HasSubstr("sha256"));
  EXPECT_THAT(refusal(envelope, EntryKind::kImageFacts, key), HasSubstr("kind"));
  EXPECT_THAT(refusal(envelope, EntryKind::kLayerIndex, "sha256:other"), HasSubstr("another key"));
  EXPECT_THAT(refusal("PNG\x89 not ours at all", EntryKind::kLayerIndex, key),
              HasSubstr("not an imagegate cache entry"));
  std::string otherVersion = envelope;
  otherVersion[9] = 9;  // the payload version's low byte
  EXPECT_THAT(refusal(otherVersion, EntryKind::kLayerIndex, key), HasSubstr("format version"));
}

TEST(Codec, LayerIndexRoundTripsExactlyThroughAnEnvelope) {
  image::LayerIndexBuilder builder;
  builder.add("bin/busybox", image::EntryType::kRegular, 04755, 0, 0, 1'080'000);
  builder.add("bin/sh", image::EntryType::kSymlink, 0777, 0, 0, 0, "busybox");
  builder.add("etc/passwd", image::EntryType::kRegular, 0644, 0, 0, 40);
  builder.add("root/.aws/credentials", image::EntryType::kRegular, 0600, 0, 0, 90, "",
              image::SecretKind::kAwsCredentials);
  builder.add("var/tmp", image::EntryType::kOpaque, 0, 0, 0, 0);
  builder.setPasswd("root:x:0:0:root:/root:/bin/sh\n");
  builder.setUncompressedBytes(1'234'567);
  const image::LayerIndex index = std::move(builder).build();
  const std::string key = "sha256:" + std::string(64, '7');
  const std::string envelope = wrapEntry(EntryKind::kLayerIndex, key, index.serialize());
  const image::LayerIndex back =
      image::LayerIndex::deserialize(unwrapEntry(envelope, EntryKind::kLayerIndex, key));
  EXPECT_EQ(back.serialize(), index.serialize());
  ASSERT_EQ(back.size(), index.size());
  for (std::size_t i = 0; i < index.size(); ++i) {
    EXPECT_EQ(back.entry(i).path, index.entry(i).path);
    EXPECT_EQ(back.entry(i).linkTarget, index.entry(i).linkTarget);
    EXPECT_EQ(back.entry(i).mode, index.entry(i).mode);
    EXPECT_EQ(back.entry(i).size, index.entry(i).size);
    EXPECT_EQ(back.entry(i).type, index.entry(i).type);
    EXPECT_EQ(back.entry(i).secret, index.entry(i).secret);
  }
  EXPECT_EQ(back.passwd(), index.passwd());
  EXPECT_EQ(back.uncompressedBytes(), index.uncompressedBytes());
}

}  // namespace
}  // namespace imagegate::cache
