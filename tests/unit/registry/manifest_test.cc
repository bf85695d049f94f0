#include "registry/manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace imagegate::registry {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using Kind = FetchError::Kind;

const std::string kDigestA = "sha256:" + std::string(64, 'a');
const std::string kDigestB = "sha256:" + std::string(64, 'b');
const std::string kDigestC = "sha256:" + std::string(64, 'c');
const std::string kDigestD = "sha256:" + std::string(64, 'd');

json descriptor(std::string_view mediaType, const std::string& digest, std::uint64_t size) {
  return {{"mediaType", mediaType}, {"digest", digest}, {"size", size}};
}

// What umoci writes: no top-level mediaType.
json ociManifest() {
  return {{"schemaVersion", 2},
          {"config", descriptor("application/vnd.oci.image.config.v1+json", kDigestA, 512)},
          {"layers",
           {descriptor("application/vnd.oci.image.layer.v1.tar+gzip", kDigestB, 1000),
            descriptor("application/vnd.oci.image.layer.v1.tar+zstd", kDigestC, 2000)}}};
}

json dockerManifest() {
  return {
      {"schemaVersion", 2},
      {"mediaType", media::kDockerManifest},
      {"config", descriptor("application/vnd.docker.container.image.v1+json", kDigestA, 300)},
      {"layers", {descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", kDigestB, 77)}}};
}

json indexEntry(const std::string& digest, const std::string& os, const std::string& arch,
                const std::string& variant = "") {
  json entry = descriptor(media::kOciManifest, digest, 400);
  entry["platform"] = {{"os", os}, {"architecture", arch}};
  if (!variant.empty()) {
    entry["platform"]["variant"] = variant;
  }
  return entry;
}

json ociIndex(std::vector<json> entries) {
  return {{"schemaVersion", 2}, {"mediaType", media::kOciIndex}, {"manifests", entries}};
}

// Runs `action`, which must throw FetchError of `kind` with a message containing `needle`.
template <class Action>
void expectFetchError(Action action, Kind kind, const std::string& needle) {
  try {
    action();
    ADD_FAILURE() << "no FetchError; expected one containing " << needle;
  } catch (const FetchError& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_THAT(e.what(), HasSubstr(needle));
  }
}

void expectInvalidManifest(const std::string& body, const std::string& contentType,
                           const std::string& needle) {
  expectFetchError([&] { parseManifest(body, contentType); }, Kind::kInvalidContent, needle);
}

TEST(RegistryManifest, AcceptHeaderListsAllFourTypes) {
  const std::string accept = manifestAcceptHeader();
  EXPECT_THAT(accept, HasSubstr(std::string(media::kOciManifest)));
  EXPECT_THAT(accept, HasSubstr(std::string(media::kOciIndex)));
  EXPECT_THAT(accept, HasSubstr(std::string(media::kDockerManifest)));
  EXPECT_THAT(accept, HasSubstr(std::string(media::kDockerManifestList)));
}

TEST(RegistryManifest, OciManifestWithoutMediaTypeByContentType) {
  const auto parsed =
      parseManifest(ociManifest().dump(), "application/vnd.oci.image.manifest.v1+json");
  ASSERT_TRUE(std::holds_alternative<ImageManifest>(parsed));
  const auto& manifest = std::get<ImageManifest>(parsed);
  EXPECT_EQ(manifest.mediaType, media::kOciManifest);
  EXPECT_EQ(manifest.config.digest, kDigestA);
  EXPECT_EQ(manifest.config.size, 512u);
  ASSERT_EQ(manifest.layers.size(), 2u);
  EXPECT_EQ(manifest.layers[1].mediaType, "application/vnd.oci.image.layer.v1.tar+zstd");
  EXPECT_EQ(manifest.layers[1].size, 2000u);
}

TEST(RegistryManifest, TypeFromBodyThenShapeWhenContentTypeIsGeneric) {
  const auto docker = parseManifest(dockerManifest().dump(), "application/json; charset=utf-8");
  EXPECT_EQ(std::get<ImageManifest>(docker).mediaType, media::kDockerManifest);
  const auto umoci = parseManifest(ociManifest().dump(), "");
  EXPECT_EQ(std::get<ImageManifest>(umoci).mediaType, media::kOciManifest);
  json index = ociIndex({indexEntry(kDigestA, "linux", "amd64")});
  index.erase("mediaType");
  const auto parsedIndex = parseManifest(index.dump(), "application/octet-stream");
  EXPECT_EQ(std::get<ImageIndex>(parsedIndex).mediaType, media::kOciIndex);
}

TEST(RegistryManifest, ContentTypeParametersAndCaseAreIgnored) {
  const auto parsed = parseManifest(dockerManifest().dump(),
                                    "Application/VND.docker.distribution.manifest.v2+json ; x=y");
  EXPECT_EQ(std::get<ImageManifest>(parsed).mediaType, media::kDockerManifest);
}

TEST(RegistryManifest, DockerManifestList) {
  json list = {
      {"schemaVersion", 2},
      {"mediaType", media::kDockerManifestList},
      {"manifests",
       {indexEntry(kDigestA, "linux", "amd64"), indexEntry(kDigestB, "linux", "arm64", "v8"),
        descriptor(media::kDockerManifest, kDigestC, 10)}}};
  const auto parsed = parseManifest(list.dump(), std::string(media::kDockerManifestList));
  const auto& index = std::get<ImageIndex>(parsed);
  EXPECT_EQ(index.mediaType, media::kDockerManifestList);
  ASSERT_EQ(index.manifests.size(), 3u);
  EXPECT_EQ(index.manifests[1].platform->variant, "v8");
  EXPECT_FALSE(index.manifests[2].platform);
}

TEST(RegistryManifest, RejectsContradictionsAndSchema1) {
  expectInvalidManifest(dockerManifest().dump(), std::string(media::kOciManifest), "contradicts");
  expectInvalidManifest(R"({"schemaVersion":1,"name":"x","fsLayers":[]})",
                        "application/vnd.docker.distribution.manifest.v1+prettyjws", "schema 1");
  expectInvalidManifest(R"({"schemaVersion":1,"name":"x"})", "application/json", "schema 1");
  json weird = ociManifest();
  weird["mediaType"] = "application/vnd.example.thing";
  expectInvalidManifest(weird.dump(), "", "unsupported manifest media type");
  expectInvalidManifest(R"({"schemaVersion":2})", "", "cannot tell the manifest type");
}

TEST(RegistryManifest, RejectsMalformedJson) {
  const std::string body = ociManifest().dump();
  expectInvalidManifest(body.substr(0, body.size() / 2), "", "not valid JSON");
  expectInvalidManifest("", "", "not valid JSON");
  expectInvalidManifest("[1,2]", "", "not a JSON object");
  expectInvalidManifest(R"({"schemaVersion":1e400})", "", "not valid JSON: number overflow");
  expectInvalidManifest(std::string(100, '[') + std::string(100, ']'), "", "nests deeper");
}

TEST(RegistryManifest, RejectsWrongTypes) {
  json manifest = ociManifest();
  manifest["schemaVersion"] = "2";
  expectInvalidManifest(manifest.dump(), "", "schemaVersion must be 2");
  manifest = ociManifest();
  manifest.erase("schemaVersion");
  expectInvalidManifest(manifest.dump(), "", "no schemaVersion");
  manifest = ociManifest();
  manifest["schemaVersion"] = 3;
  expectInvalidManifest(manifest.dump(), "", "schemaVersion must be 2");
  manifest = ociManifest();
  manifest["layers"] = "none";
  expectInvalidManifest(manifest.dump(), "", "layers must be an array");
  manifest = ociManifest();
  manifest["layers"][0]["size"] = -1;
  expectInvalidManifest(manifest.dump(), "", "layers[0].size must be a non-negative integer");
  manifest = ociManifest();
  manifest["layers"][1]["size"] = 1.5;
  expectInvalidManifest(manifest.dump(), "", "layers[1].size");
  manifest = ociManifest();
  manifest["config"]["digest"] = "sha256:xyz";
  expectInvalidManifest(manifest.dump(), "", "config.digest");
  manifest = ociManifest();
  manifest["config"]["mediaType"] = 7;
  expectInvalidManifest(manifest.dump(), "", "config.mediaType must be a string");
  manifest = ociManifest();
  manifest.erase("config");
  manifest["layers"] = json::array();
  manifest["mediaType"] = media::kOciManifest;
  expectInvalidManifest(manifest.dump(), "", "config is missing");
  manifest = ociManifest();
  manifest["layers"][0] = "sha256:abc";
  expectInvalidManifest(manifest.dump(), "", "layers[0] must be an object");
}

TEST(RegistryManifest, RejectsArtifactsThatAreNotImages) {
  json manifest = ociManifest();
  manifest["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json";
  expectInvalidManifest(manifest.dump(), "", "not a container image");
}

TEST(RegistryManifest, SizeLimits) {
  json manifest = ociManifest();
  manifest["layers"] = json::array();
  for (std::size_t i = 0; i <= kMaxLayers; ++i) {
    manifest["layers"].push_back(
        descriptor("application/vnd.oci.image.layer.v1.tar+gzip", kDigestB, 1));
  }
  expectInvalidManifest(manifest.dump(), "", "over the limit of 1000");
  manifest["layers"].erase(manifest["layers"].size() - 1);
  EXPECT_EQ(std::get<ImageManifest>(parseManifest(manifest.dump(), "")).layers.size(), kMaxLayers);

  json big = ociManifest();
  big["annotations"] = {{"padding", std::string(kMaxManifestBytes, 'x')}};
  expectInvalidManifest(big.dump(), "", "over the limit of 4194304");
}

TEST(RegistryManifest, IndexEntryPlatformTypes) {
  json index = ociIndex({indexEntry(kDigestA, "linux", "amd64")});
  index["manifests"][0]["platform"]["architecture"] = 64;
  expectInvalidManifest(index.dump(), "", "manifests[0].platform.architecture must be a string");
  index["manifests"][0]["platform"] = "linux/amd64";
  expectInvalidManifest(index.dump(), "", "platform must be an object");
  index["manifests"] = json::object();
  expectInvalidManifest(index.dump(), "", "manifests must be an array");
}

ImageIndex multiArchIndex() {
  return std::get<ImageIndex>(parseManifest(
      ociIndex({indexEntry(kDigestA, "linux", "amd64"), indexEntry(kDigestB, "linux", "arm64"),
                indexEntry(kDigestC, "linux", "arm", "v6"),
                indexEntry(kDigestD, "unknown", "unknown")})
          .dump(),
      ""));
}

TEST(RegistryManifest, SelectsPlatform) {
  const ImageIndex index = multiArchIndex();
  EXPECT_EQ(selectPlatform(index, image::Platform::parse("linux/amd64")).descriptor.digest,
            kDigestA);
  EXPECT_EQ(selectPlatform(index, image::Platform::parse("linux/arm64")).descriptor.digest,
            kDigestB);
  // arm64 without a variant is v8, as containerd normalises it.
  EXPECT_EQ(selectPlatform(index, image::Platform::parse("linux/arm64/v8")).descriptor.digest,
            kDigestB);
  // An arm/v7 host runs arm/v6 images.
  EXPECT_EQ(selectPlatform(index, image::Platform::parse("linux/arm/v7")).descriptor.digest,
            kDigestC);
  EXPECT_EQ(selectPlatform(index, image::Platform::parse("linux/arm")).descriptor.digest, kDigestC);
  // An amd64 v3 host runs plain amd64 images.
  EXPECT_EQ(selectPlatform(index, image::Platform::parse("linux/amd64/v3")).descriptor.digest,
            kDigestA);
}

TEST(RegistryManifest, PrefersTheExactVariant) {
  const ImageIndex index =
      std::get<ImageIndex>(parseManifest(ociIndex({indexEntry(kDigestA, "linux", "arm", "v6"),
                                                   indexEntry(kDigestB, "linux", "arm", "v7")})
                                             .dump(),
                                         ""));
  EXPECT_EQ(selectPlatform(index, image::Platform::parse("linux/arm/v7")).descriptor.digest,
            kDigestB);
  EXPECT_EQ(selectPlatform(index, image::Platform::parse("linux/arm/v6")).descriptor.digest,
            kDigestA);
}

TEST(RegistryManifest, ArchitectureAliases) {
  const ImageIndex index =
      std::get<ImageIndex>(parseManifest(ociIndex({indexEntry(kDigestA, "linux", "x86_64"),
                                                   indexEntry(kDigestB, "linux", "aarch64", "8")})
                                             .dump(),
                                         ""));
  EXPECT_EQ(selectPlatform(index, image::Platform::parse("linux/amd64")).descriptor.digest,
            kDigestA);
  EXPECT_EQ(selectPlatform(index, image::Platform::parse("linux/arm64")).descriptor.digest,
            kDigestB);
  EXPECT_EQ(normalizePlatform({"linux", "armhf", ""}).str(), "linux/arm/v7");
  EXPECT_EQ(normalizePlatform({"Linux", "AMD64", "v1"}).str(), "linux/amd64");
}

TEST(RegistryManifest, MissingPlatformListsAvailableOnes) {
  const ImageIndex index = multiArchIndex();
  try {
    selectPlatform(index, image::Platform::parse("linux/s390x"));
    FAIL() << "expected kNoMatchingPlatform";
  } catch (const FetchError& e) {
    EXPECT_EQ(e.kind(), Kind::kNoMatchingPlatform);
    EXPECT_THAT(e.what(), HasSubstr("linux/s390x"));
    EXPECT_THAT(e.what(), HasSubstr("available: linux/amd64, linux/arm64, linux/arm/v6"));
    EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("unknown")));
  }
  // Older hosts do not run newer variants: arm/v5 cannot run arm/v6.
  expectFetchError([&] { selectPlatform(index, image::Platform::parse("linux/arm/v5")); },
                   Kind::kNoMatchingPlatform, "linux/arm/v5");
  expectFetchError([&] { selectPlatform(index, image::Platform::parse("windows/amd64")); },
                   Kind::kNoMatchingPlatform, "windows/amd64");
  expectFetchError([&] { selectPlatform(ImageIndex{}, image::Platform::parse("linux/amd64")); },
                   Kind::kNoMatchingPlatform, "available: none");
}

TEST(RegistryManifest, PlatformParse) {
  EXPECT_EQ(image::Platform::parse("linux/arm64/v8").variant, "v8");
  EXPECT_EQ(image::Platform::parse("linux/amd64").str(), "linux/amd64");
  for (const char* bad : {"", "linux", "linux/", "/amd64", "linux/amd64/v8/x", "Linux/amd64",
                          "linux amd64", "linux//amd64"}) {
    EXPECT_THROW(image::Platform::parse(bad), Error) << bad;
  }
}

TEST(RegistryManifest, ParsesImageConfig) {
  const json config = {{"architecture", "amd64"},
                       {"os", "linux"},
                       {"config",
                        {{"User", "65532:65532"},
                         {"Env", {"PATH=/bin"}},
                         {"Entrypoint", {"/bin/sh"}},
                         {"Cmd", {"-c", "id"}},
                         {"WorkingDir", "/"},
                         {"ExposedPorts", {{"8080/tcp", json::object()}}},
                         {"Labels", {{"org.example.test", "busybox"}}}}},
                       {"rootfs", {{"type", "layers"}, {"diff_ids", {kDigestA, kDigestB}}}},
                       {"history",
                        {{{"created_by", "umoci insert"}},
                         {{"created_by", "ENV A=b"}, {"empty_layer", true}},
                         {{"created_by", "umoci config"}}}}};
  const image::ImageConfig parsed = parseImageConfig(config.dump());
  EXPECT_EQ(parsed.user, "65532:65532");
  EXPECT_EQ(parsed.env, std::vector<std::string>{"PATH=/bin"});
  EXPECT_EQ(parsed.entrypoint, std::vector<std::string>{"/bin/sh"});
  EXPECT_EQ(parsed.cmd, (std::vector<std::string>{"-c", "id"}));
  EXPECT_EQ(parsed.workingDir, "/");
  EXPECT_EQ(parsed.exposedPorts, std::vector<std::string>{"8080/tcp"});
  EXPECT_EQ(parsed.labels.at("org.example.test"), "busybox");
  EXPECT_EQ(parsed.diffIds.size(), 2u);
  EXPECT_EQ(parsed.historyEntries, 3u);
  EXPECT_EQ(parsed.layerHistory, (std::vector<std::string>{"umoci insert", "umoci config"}));
  EXPECT_EQ(parsed.os, "linux");
  EXPECT_EQ(parsed.architecture, "amd64");
}

TEST(RegistryManifest, ImageConfigNullsAndAbsencesAreEmpty) {
  const image::ImageConfig minimal = parseImageConfig(R"({"architecture":"arm64","os":"linux"})");
  EXPECT_EQ(minimal.user, "");
  EXPECT_TRUE(minimal.env.empty());
  const image::ImageConfig nulls = parseImageConfig(
      R"({"config":{"User":null,"Cmd":null,"Entrypoint":null,"Labels":null,"Env":null},"history":null})");
  EXPECT_TRUE(nulls.cmd.empty());
  EXPECT_TRUE(nulls.labels.empty());
}

TEST(RegistryManifest, ImageConfigWrongTypes) {
  const auto expectBad = [](const std::string& body, const std::string& needle) {
    expectFetchError([&] { parseImageConfig(body); }, Kind::kInvalidContent, needle);
  };
  expectBad(R"({"config":{"User":0}})", "config.User must be a string");
  expectBad(R"({"config":{"Env":"PATH=/bin"}})", "config.Env must be an array");
  expectBad(R"({"config":{"Cmd":["a",1]}})", "config.Cmd must contain only strings");
  expectBad(R"({"config":{"Labels":{"a":1}}})", "Labels[\"a\"] must be a string");
  expectBad(R"({"config":[]})", "config must be an object");
  expectBad(R"({"rootfs":{"diff_ids":"x"}})", "diff_ids");
  expectBad(R"({"history":{}})", "history must be an array");
  expectBad(R"({"config":{"User":"ro)", "not valid JSON");
  expectBad(R"({"config":{"StopTimeout":1e400}})", "not valid JSON: number overflow");
  expectBad("null", "not a JSON object");
  json big = {{"config", {{"Env", {std::string(kMaxConfigBytes, 'x')}}}}};
  expectBad(big.dump(), "over the limit of 8388608");
}

}  // namespace
}  // namespace imagegate::registry
