#include "layers/media_type.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"

namespace imagegate::layers {
namespace {

using ::testing::HasSubstr;

TEST(ClassifyLayerMediaType, OciAndDockerLayersWithTheirCompression) {
  EXPECT_EQ(classifyLayerMediaType("application/vnd.oci.image.layer.v1.tar").compression,
            Compression::kNone);
  EXPECT_EQ(classifyLayerMediaType("application/vnd.oci.image.layer.v1.tar+gzip").compression,
            Compression::kGzip);
  EXPECT_EQ(classifyLayerMediaType("application/vnd.oci.image.layer.v1.tar+zstd").compression,
            Compression::kZstd);
  const auto docker = classifyLayerMediaType("application/vnd.docker.image.rootfs.diff.tar.gzip");
  EXPECT_EQ(docker.compression, Compression::kGzip);
  EXPECT_FALSE(docker.foreign);
}

TEST(ClassifyLayerMediaType, ForeignLayersAreMarkedForeign) {
  EXPECT_TRUE(classifyLayerMediaType("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")
                  .foreign);
  EXPECT_TRUE(
      classifyLayerMediaType("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip").foreign);
}

TEST(ClassifyLayerMediaType, UnknownTypeIsAnErrorNamingIt) {
  try {
    classifyLayerMediaType("application/vnd.example.layer+lz4");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("'application/vnd.example.layer+lz4'"));
  }
}

TEST(SniffCompression, MagicBytes) {
  EXPECT_EQ(sniffCompression(std::string_view("\x1f\x8b\x08\x00", 4)), Compression::kGzip);
  EXPECT_EQ(sniffCompression(std::string_view("\x28\xb5\x2f\xfd\x00", 5)), Compression::kZstd);
  EXPECT_EQ(sniffCompression("usr/bin/"), Compression::kNone);
  EXPECT_EQ(sniffCompression(""), Compression::kNone);
}

}  // namespace
}  // namespace imagegate::layers
