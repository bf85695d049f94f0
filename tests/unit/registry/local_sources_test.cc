#include "registry/local_sources.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "registry/digest.h"
#include "testutil/layer_builder.h"
#include "testutil/shell.h"

// The readers of images on disk, on layouts and archives built here by hand: what they read,
// which image a selector picks, the reference it is judged as, and hostile content (digests that
// climb out of the layout, sizes that lie, blobs that do not hash to their digest, archives whose
// manifest names what is not there).
namespace imagegate::registry {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::HasSubstr;
using Kind = FetchError::Kind;

constexpr char kOciManifestType[] = "application/vnd.oci.image.manifest.v1+json";
constexpr char kOciIndexType[] = "application/vnd.oci.image.index.v1+json";
constexpr char kOciConfigType[] = "application/vnd.oci.image.config.v1+json";
constexpr char kGzipLayerType[] = "application/vnd.oci.image.layer.v1.tar+gzip";

Deadline later() { return Deadline::after(std::chrono::seconds(30)); }

std::string shellLayer() {
  return testutil::TarBuilder()
      .dir("bin")
      .file("bin/busybox", "not really busybox", 0755)
      .symlink("bin/sh", "busybox")
      .tar();
}

std::string configFor(const std::string& architecture, const std::string& user,
                      const std::vector<std::string>& diffIds) {
  return json{{"architecture", architecture},
              {"os", "linux"},
              {"config", {{"User", user}}},
              {"rootfs", {{"type", "layers"}, {"diff_ids", diffIds}}}}
      .dump();
}

LocalImagePtr open(const std::string& written) {
  return openLocalImage(*parseLocalSourceName(written));
}

/// Runs `action` and returns the FetchError it throws (fails the test when it throws none).
template <typename Action>
FetchError fetchErrorOf(Action action) {
  try {
    action();
  } catch (const FetchError& e) {
    return e;
  }
  ADD_FAILURE() << "no FetchError thrown";
  return FetchError(Kind::kNotFound, "");
}

std::string collect(LocalImage& image, const image::Descriptor& blob) {
  std::string out;
  image.fetchBlob(
      blob, [&](std::string_view chunk) { out += chunk; }, later());
  return out;
}

class TempDir : public testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/imagegate-local-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    root_ = pattern;
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

/// An OCI image layout written file by file.
class OciLayoutTest : public TempDir {
 protected:
  void SetUp() override {
    TempDir::SetUp();
    dir_ = root_ / "my_Layout";
    fs::create_directories(dir_ / "blobs" / "sha256");
    testutil::writeFile(dir_ / "oci-layout", R"({"imageLayoutVersion": "1.0.0"})");
  }

  json blob(const std::string& mediaType, const std::string& content) {
    const std::string digest = sha256Digest(content);
    testutil::writeFile(dir_ / "blobs" / "sha256" / digest.substr(7), content);
    return {{"mediaType", mediaType}, {"digest", digest}, {"size", content.size()}};
  }

  /// A one-layer image (the gzip'd shell layer) for `architecture`; its manifest descriptor.
  json image(const std::string& architecture, const std::string& user = "1000") {
    const std::string layer = shellLayer();
    layerBytes_ = testutil::gzipCompress(layer);
    const json config = blob(kOciConfigType, configFor(architecture, user, {sha256Digest(layer)}));
    layerDescriptor_ = blob(kGzipLayerType, layerBytes_);
    const json manifest = {{"schemaVersion", 2},
                           {"mediaType", kOciManifestType},
                           {"config", config},
                           {"layers", json::array({layerDescriptor_})}};
    json descriptor = blob(kOciManifestType, manifest.dump());
    descriptor["platform"] = {{"os", "linux"}, {"architecture", architecture}};
    return descriptor;
  }

  static json tagged(json descriptor, const std::string& refName) {
    descriptor["annotations"] = {{"org.opencontainers.image.ref.name", refName}};
    return descriptor;
  }

  void writeIndex(const json& manifests) {
    testutil::writeFile(dir_ / "index.json",
                        json{{"schemaVersion", 2}, {"manifests", manifests}}.dump());
  }

  fs::path blobPath(const json& descriptor) const {
    return dir_ / "blobs" / "sha256" / descriptor["digest"].get<std::string>().substr(7);
  }

  std::string source(const std::string& tag = "") const {
    return "oci:" + dir_.string() + (tag.empty() ? "" : ":" + tag);
  }

  fs::path dir_;
  std::string layerBytes_;
  json layerDescriptor_;
};

TEST_F(OciLayoutTest, ReadsTheTaggedImageAndStreamsItsLayerVerified) {
  writeIndex(json::array({tagged(image("amd64", "65532"), "v1"), tagged(image("arm64"), "v2")}));
  const LocalImagePtr local = open(source("v1"));
  EXPECT_EQ(local->name(), "v1");
  // A tag is not a reference: the image is judged under the reserved .invalid host.
  EXPECT_EQ(local->reference().str(), "oci.invalid/my-layout:v1");
  const image::ImageFacts facts = local->fetchFacts({}, later());
  EXPECT_EQ(facts.ref, local->reference());
  EXPECT_EQ(facts.imageConfig.user, "65532");
  EXPECT_EQ(facts.platform.str(), "linux/amd64");
  EXPECT_THAT(facts.manifestDigest, HasSubstr("sha256:"));
  ASSERT_EQ(facts.layers.size(), 1u);
  EXPECT_EQ(facts.layers[0].mediaType, kGzipLayerType);
  EXPECT_EQ(collect(*local, facts.layers[0]), layerBytes_);
}

TEST_F(OciLayoutTest, AFullReferenceInRefNameIsWhatPoliciesJudge) {
  writeIndex(json::array({tagged(image("amd64"), "registry.example.com/team/app:1.2")}));
  EXPECT_EQ(open(source())->reference().str(), "registry.example.com/team/app:1.2");
  json withContainerdName = image("amd64");
  withContainerdName["annotations"] = {{"org.opencontainers.image.ref.name", "latest"},
                                       {"io.containerd.image.name", "ghcr.io/acme/tool:latest"}};
  writeIndex(json::array({withContainerdName}));
  EXPECT_EQ(open(source("latest"))->reference().str(), "ghcr.io/acme/tool:latest");
}

TEST_F(OciLayoutTest, WithoutATagOnlyALayoutOfOneImageWillDo) {
  writeIndex(json::array({tagged(image("amd64"), "v1"), tagged(image("arm64"), "v2")}));
  const FetchError several = fetchErrorOf([&] { open(source()); });
  EXPECT_EQ(several.kind(), Kind::kNotFound);
  EXPECT_THAT(several.what(), HasSubstr("\"v1\", \"v2\""));
  EXPECT_THAT(several.what(), HasSubstr("oci:DIR:TAG"));
  EXPECT_THAT(several.what(), HasSubstr("cannot read " + source() + ": "));
  const FetchError absent = fetchErrorOf([&] { open(source("v3")); });
  EXPECT_THAT(absent.what(), HasSubstr("no image tagged \"v3\" (it has \"v1\", \"v2\")"));
  writeIndex(json::array({image("amd64")}));
  EXPECT_EQ(open(source())->reference().str(), "oci.invalid/my-layout:untagged");
}

TEST_F(OciLayoutTest, ANestedIndexResolvesByPlatform) {
  const json amd64 = image("amd64", "1");
  const json arm64 = image("arm64", "2");
  const json nested = blob(kOciIndexType, json{{"schemaVersion", 2},
                                               {"mediaType", kOciIndexType},
                                               {"manifests", json::array({amd64, arm64})}}
                                              .dump());
  writeIndex(json::array({tagged(nested, "multi")}));
  const LocalImagePtr local = open(source("multi"));
  const image::ImageFacts facts = local->fetchFacts(image::Platform::parse("linux/arm64"), later());
  EXPECT_EQ(facts.imageConfig.user, "2");
  EXPECT_EQ(facts.manifestDigest, arm64["digest"]);
  EXPECT_EQ(facts.platform.architecture, "arm64");
  const FetchError none =
      fetchErrorOf([&] { local->fetchFacts(image::Platform::parse("linux/s390x"), later()); });
  EXPECT_EQ(none.kind(), Kind::kNoMatchingPlatform);
}

TEST_F(OciLayoutTest, MissingDirectoryOrLayoutFilesAreNotFound) {
  const FetchError noDir = fetchErrorOf([&] { open("oci:" + (root_ / "absent").string()); });
  EXPECT_EQ(noDir.kind(), Kind::kNotFound);
  EXPECT_THAT(noDir.what(), HasSubstr("No such file or directory"));
  const FetchError noIndex = fetchErrorOf([&] { open(source()); });
  EXPECT_EQ(noIndex.kind(), Kind::kNotFound);
  EXPECT_THAT(noIndex.what(), HasSubstr("not an OCI image layout (no index.json)"));
  fs::remove(dir_ / "oci-layout");
  EXPECT_THAT(fetchErrorOf([&] { open(source()); }).what(), HasSubstr("no oci-layout file"));
}

TEST_F(OciLayoutTest, ADigestThatClimbsOutOfTheLayoutIsRefused) {
  // Outside the layout, a file the traversal would reach.
  testutil::writeFile(root_ / "secret", "secret");
  json hostile = image("amd64");
  hostile["digest"] = "sha256:../../../secret";
  writeIndex(json::array({hostile}));
  const FetchError inIndex = fetchErrorOf([&] { open(source()); });
  EXPECT_EQ(inIndex.kind(), Kind::kInvalidContent);
  EXPECT_THAT(inIndex.what(), HasSubstr("is not a sha256 or sha512 digest"));
  // And asked for directly, as a hostile manifest's layer would be.
  writeIndex(json::array({image("amd64")}));
  const LocalImagePtr local = open(source());
  const image::Descriptor climbing{kGzipLayerType, "sha256:../../../secret", 6};
  EXPECT_THAT(fetchErrorOf([&] { collect(*local, climbing); }).what(),
              HasSubstr("is not a blob digest"));
}

TEST_F(OciLayoutTest, ABlobLargerThanItsDescriptorSaysIsRefused) {
  writeIndex(json::array({image("amd64")}));
  const LocalImagePtr local = open(source());
  const image::ImageFacts facts = local->fetchFacts({}, later());
  image::Descriptor lying = facts.layers[0];
  lying.size -= 10;
  const FetchError error = fetchErrorOf([&] { collect(*local, lying); });
  EXPECT_EQ(error.kind(), Kind::kInvalidContent);
  EXPECT_THAT(error.what(), HasSubstr("but its descriptor says " + std::to_string(lying.size)));
}

TEST_F(OciLayoutTest, BlobsThatDoNotHashToTheirDigestAreRefused) {
  const json descriptor = image("amd64");
  writeIndex(json::array({descriptor}));
  const LocalImagePtr local = open(source());
  const image::ImageFacts facts = local->fetchFacts({}, later());
  // Same size, other bytes: only the digest can tell.
  std::string corrupt = layerBytes_;
  corrupt[corrupt.size() / 2] ^= 0x55;
  testutil::writeFile(blobPath(layerDescriptor_), corrupt);
  std::string streamed;
  const FetchError layer = fetchErrorOf([&] { streamed = collect(*local, facts.layers[0]); });
  EXPECT_EQ(layer.kind(), Kind::kInvalidContent);
  EXPECT_THAT(layer.what(), HasSubstr("does not match its digest " + facts.layers[0].digest));
  std::string manifest = testutil::readFile(blobPath(descriptor));
  manifest[manifest.find("schemaVersion") + 1] = 'S';
  testutil::writeFile(blobPath(descriptor), manifest);
  EXPECT_THAT(fetchErrorOf([&] { local->fetchFacts({}, later()); }).what(),
              HasSubstr("does not match its digest"));
}

TEST_F(OciLayoutTest, SymlinkedBlobsAreNotFollowed) {
  const json descriptor = image("amd64");
  writeIndex(json::array({descriptor}));
  const fs::path path = blobPath(layerDescriptor_);
  fs::rename(path, root_ / "elsewhere");
  fs::create_symlink(root_ / "elsewhere", path);
  const LocalImagePtr local = open(source());
  const image::ImageFacts facts = local->fetchFacts({}, later());
  EXPECT_THAT(fetchErrorOf([&] { collect(*local, facts.layers[0]); }).what(),
              HasSubstr("symbolic link"));
}

/// `docker save` archives built member by member.
class DockerArchiveTest : public TempDir {
 protected:
  struct Built {
    std::string configDigest;
    std::string layer;
  };

  /// An archive in the classic layout: <id>.json config, <id>/layer.tar layers, manifest.json.
  Built build(const std::vector<std::string>& repoTags, bool gzipLayer = false,
              std::string layerName = "0123/layer.tar") {
    const std::string layer = shellLayer();
    const std::string config = configFor("amd64", "root", {sha256Digest(layer)});
    const std::string configName = sha256Digest(config).substr(7) + ".json";
    testutil::TarBuilder tar(testutil::TarBuilder::Format::kUstar);
    tar.file(configName, config).dir("0123");
    tar.file("0123/layer.tar", gzipLayer ? testutil::gzipCompress(layer) : layer);
    if (layerName != "0123/layer.tar" && layerName.find("..") == std::string::npos) {
      tar.dir("4567").symlink(layerName, "../0123/layer.tar");
    }
    tar.file("manifest.json", json::array({{{"Config", configName},
                                            {"RepoTags", repoTags},
                                            {"Layers", json::array({layerName})}}})
                                  .dump());
    testutil::writeFile(file(), tar.tar());
    return {sha256Digest(config), layer};
  }

  fs::path file() const { return root_ / "App_Image.tar"; }
  std::string source(const std::string& selector = "") const {
    return "docker-archive:" + file().string() + (selector.empty() ? "" : ":" + selector);
  }
};

TEST_F(DockerArchiveTest, ReadsTheImageItsRepoTagNamesWithTheImageIdAsDigest) {
  const Built built = build({"registry.example.com/app:1"});
  const LocalImagePtr local = open(source());
  EXPECT_EQ(local->reference().str(), "registry.example.com/app:1");
  const image::ImageFacts facts = local->fetchFacts({}, later());
  EXPECT_EQ(facts.manifestDigest, built.configDigest);
  EXPECT_EQ(facts.config.digest, built.configDigest);
  EXPECT_EQ(facts.imageConfig.user, "root");
  ASSERT_EQ(facts.layers.size(), 1u);
  EXPECT_EQ(facts.layers[0].mediaType, "application/vnd.oci.image.layer.v1.tar");
  EXPECT_EQ(facts.layers[0].digest, sha256Digest(built.layer));
  EXPECT_EQ(collect(*local, facts.layers[0]), built.layer);
}

TEST_F(DockerArchiveTest, GzipLayersAndSymlinkedLayersAreRead) {
  const Built built = build({"app:1"}, true, "4567/layer.tar");
  const LocalImagePtr local = open(source("docker.io/library/app:1"));
  EXPECT_EQ(local->reference().str(), "docker.io/library/app:1");
  const image::ImageFacts facts = local->fetchFacts({}, later());
  ASSERT_EQ(facts.layers.size(), 1u);
  EXPECT_EQ(facts.layers[0].mediaType, "application/vnd.oci.image.layer.v1.tar+gzip");
  const std::string gzipped = collect(*local, facts.layers[0]);
  EXPECT_EQ(facts.layers[0].digest, sha256Digest(gzipped));
  EXPECT_NE(gzipped, built.layer);
}

TEST_F(DockerArchiveTest, SeveralTagsMustBeChosenBetween) {
  build({"app:1", "app:latest"});
  const FetchError error = fetchErrorOf([&] { open(source()); });
  EXPECT_EQ(error.kind(), Kind::kNotFound);
  EXPECT_THAT(error.what(), HasSubstr("\"app:1\", \"app:latest\""));
  EXPECT_EQ(open(source("app:latest"))->reference().str(), "docker.io/library/app:latest");
  EXPECT_THAT(fetchErrorOf([&] { open(source("app:2")); }).what(),
              HasSubstr("no image tagged \"app:2\""));
  build({});
  EXPECT_EQ(open(source())->reference().str(), "docker-archive.invalid/app-image:untagged");
  EXPECT_EQ(open(source("@0"))->reference().str(), "docker-archive.invalid/app-image:untagged");
  EXPECT_THAT(fetchErrorOf([&] { open(source("@1")); }).what(), HasSubstr("no image \"@1\""));
}

TEST_F(DockerArchiveTest, AManifestNamingWhatIsNotInTheArchiveIsRefused) {
  build({"app:1"}, false, "../../etc/passwd");
  const FetchError error = fetchErrorOf([&] { open(source()); });
  EXPECT_EQ(error.kind(), Kind::kInvalidContent);
  EXPECT_THAT(error.what(), HasSubstr("manifest.json names \"../../etc/passwd\", which is not a "
                                      "file in the archive"));
}

TEST_F(DockerArchiveTest, ALayerThatDoesNotHashToItsDiffIdIsRefused) {
  const std::string layer = shellLayer();
  const std::string config = configFor("amd64", "", {sha256Digest(layer + "x")});
  testutil::writeFile(file(), testutil::TarBuilder(testutil::TarBuilder::Format::kUstar)
                                  .file("config.json", config)
                                  .file("layer.tar", layer)
                                  .file("manifest.json", json::array({{{"Config", "config.json"},
                                                                       {"RepoTags", {"a:1"}},
                                                                       {"Layers", {"layer.tar"}}}})
                                                             .dump())
                                  .tar());
  const LocalImagePtr local = open(source());
  const image::ImageFacts facts = local->fetchFacts({}, later());
  const FetchError error = fetchErrorOf([&] { collect(*local, facts.layers[0]); });
  EXPECT_EQ(error.kind(), Kind::kInvalidContent);
  EXPECT_THAT(error.what(), HasSubstr("layer layer.tar does not match its digest"));
}

TEST_F(DockerArchiveTest, AConfigThatDoesNotMatchItsNameIsRefused) {
  build({"app:1"});
  // Rewrite the archive with the config's content changed but its name kept.
  std::string bytes = testutil::readFile(file());
  const std::size_t user = bytes.find("\"User\":\"root\"");
  ASSERT_NE(user, std::string::npos);
  bytes.replace(user + 8, 4, "toor");
  testutil::writeFile(file(), bytes);
  const LocalImagePtr local = open(source());
  EXPECT_THAT(fetchErrorOf([&] { local->fetchFacts({}, later()); }).what(),
              HasSubstr("does not match its name"));
}

TEST_F(DockerArchiveTest, MissingFilesAndNonArchivesAreClearErrors) {
  const FetchError missing = fetchErrorOf([&] { open(source()); });
  EXPECT_EQ(missing.kind(), Kind::kNotFound);
  EXPECT_THAT(missing.what(), HasSubstr("No such file or directory"));
  testutil::writeFile(file(), std::string(4096, 'x'));
  const FetchError garbage = fetchErrorOf([&] { open(source()); });
  EXPECT_EQ(garbage.kind(), Kind::kInvalidContent);
  EXPECT_THAT(garbage.what(), HasSubstr("not a readable tar file"));
  testutil::writeFile(file(), testutil::TarBuilder().file("x", "y").tar());
  EXPECT_THAT(fetchErrorOf([&] { open(source()); }).what(), HasSubstr("no manifest.json"));
  testutil::writeFile(file(), testutil::TarBuilder().file("manifest.json", "{\"a\":").tar());
  EXPECT_THAT(fetchErrorOf([&] { open(source()); }).what(),
              HasSubstr("manifest.json is not valid JSON"));
}

TEST(LocalSourceNames, SplitAsSkopeoDoes) {
  EXPECT_FALSE(parseLocalSourceName("registry.example.com/app:1"));
  EXPECT_FALSE(parseLocalSourceName("ocirepo/app"));
  const auto oci = parseLocalSourceName("oci:out/layout:registry.example.com/app:1");
  ASSERT_TRUE(oci);
  EXPECT_EQ(oci->transport, LocalTransport::kOciLayout);
  EXPECT_EQ(oci->path, "out/layout");
  EXPECT_EQ(oci->selector, "registry.example.com/app:1");
  const auto archive = parseLocalSourceName("docker-archive:/tmp/app.tar");
  ASSERT_TRUE(archive);
  EXPECT_EQ(archive->transport, LocalTransport::kDockerArchive);
  EXPECT_EQ(archive->path, "/tmp/app.tar");
  EXPECT_EQ(archive->selector, "");
  EXPECT_THROW(parseLocalSourceName("oci:"), Error);
  EXPECT_THROW(parseLocalSourceName("docker-archive::app:1"), Error);
}

TEST(LocalSourceNames, MemberPathsAreNormalizedAndNeverClimb) {
  EXPECT_EQ(normalizeMemberPath("./a//b/./c"), "a/b/c");
  EXPECT_EQ(normalizeMemberPath("a/../b"), "b");
  EXPECT_FALSE(normalizeMemberPath("../etc/passwd"));
  EXPECT_FALSE(normalizeMemberPath("a/../../b"));
  EXPECT_FALSE(normalizeMemberPath("./"));
}

TEST(LocalImageRegistry, OtherReferencesGoToTheFallback) {
  LocalImageRegistry registry({}, nullptr);
  const FetchError error =
      fetchErrorOf([&] { registry.fetchFacts(image::parseImageRef("busybox"), {}, later()); });
  EXPECT_EQ(error.kind(), Kind::kNotFound);
  EXPECT_THAT(error.what(), HasSubstr("docker.io/library/busybox:latest"));
}

}  // namespace
}  // namespace imagegate::registry
