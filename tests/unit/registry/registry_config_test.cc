#include "registry/registry_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/load_problem.h"

namespace imagegate::registry {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

RegistryConfig parse(const std::string& yaml) { return RegistryConfig::parse(yaml, "reg.yaml"); }

std::string parseError(const std::string& yaml) {
  try {
    parse(yaml);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted:\n" << yaml;
  return "";
}

TEST(RegistryConfig, FullExample) {
  const RegistryConfig config = parse(R"(
platform: linux/arm64/v8                       # default platform for image indexes
dockerConfig: /etc/imagegate/docker/config.json
timeouts: {connect: 1500ms, request: 1m}
registries:
  - host: Registry.Internal:5000
    caFile: /etc/imagegate/ca/registry.crt
    insecure: false
  - host: 127.0.0.1:5000
    insecure: true
)");
  EXPECT_EQ(config.platform.str(), "linux/arm64/v8");
  EXPECT_EQ(config.dockerConfig, "/etc/imagegate/docker/config.json");
  EXPECT_EQ(config.connectTimeout, milliseconds(1500));
  EXPECT_EQ(config.requestTimeout, milliseconds(60000));
  ASSERT_EQ(config.registries.size(), 2u);
  EXPECT_EQ(config.registries[0].host, "registry.internal:5000");
  EXPECT_EQ(config.registries[0].caFile, "/etc/imagegate/ca/registry.crt");
  EXPECT_FALSE(config.registries[0].insecure);
  EXPECT_TRUE(config.registries[1].insecure);
  ASSERT_NE(config.find("REGISTRY.internal:5000"), nullptr);
  EXPECT_EQ(config.find("127.0.0.1:5000")->host, "127.0.0.1:5000");
  EXPECT_EQ(config.find("127.0.0.1"), nullptr);
}

TEST(RegistryConfig, DefaultsForEmptyOrPartialFiles) {
  for (const std::string yaml : {"", "# nothing\n", "---\n", "timeouts: {connect: 3s}\n"}) {
    const RegistryConfig config = parse(yaml);
    EXPECT_EQ(config.platform.str(), "linux/amd64");
    EXPECT_EQ(config.dockerConfig, "");
    EXPECT_EQ(config.requestTimeout, milliseconds(5000));
    EXPECT_TRUE(config.registries.empty());
  }
  EXPECT_EQ(parse("timeouts: {connect: 3s}").connectTimeout, milliseconds(3000));
  EXPECT_TRUE(parse("registries: []").registries.empty());
  EXPECT_TRUE(parse("registries:").registries.empty());
}

TEST(RegistryConfig, UnknownFieldsWithLineAndColumn) {
  EXPECT_EQ(parseError("platform: linux/amd64\nplatfrom: linux/arm64\n"),
            "reg.yaml:2:1: platfrom: unknown field \"platfrom\" (allowed here: platform, "
            "dockerConfig, timeouts, registries, cache, layers)");
  EXPECT_THAT(parseError("timeouts:\n  connect: 2s\n  read: 5s\n"),
              HasSubstr("reg.yaml:3:3: timeouts.read: unknown field \"read\""));
  EXPECT_THAT(parseError("registries:\n  - host: a:5000\n    ca_file: /x\n"),
              HasSubstr("reg.yaml:3:5: registries[0].ca_file: unknown field \"ca_file\""));
}

TEST(RegistryConfig, WrongTypesAndValues) {
  EXPECT_THAT(parseError("platform: linux\n"), HasSubstr("reg.yaml:1:11: invalid platform"));
  EXPECT_THAT(parseError("platform: [linux, amd64]\n"),
              HasSubstr("reg.yaml:1:11: platform must be a string"));
  EXPECT_THAT(parseError("timeouts: {connect: 2}\n"),
              HasSubstr("reg.yaml:1:21: timeouts.connect \"2\" is not a positive duration"));
  EXPECT_THAT(parseError("timeouts: {request: 0s}\n"), HasSubstr("timeouts.request"));
  EXPECT_THAT(parseError("timeouts: {request: -5s}\n"), HasSubstr("timeouts.request"));
  EXPECT_THAT(parseError("timeouts: 5s\n"), HasSubstr("reg.yaml:1:11: timeouts must be a mapping"));
  EXPECT_THAT(parseError("registries: {host: a}\n"), HasSubstr("registries must be a list"));
  EXPECT_THAT(parseError("registries:\n  - caFile: /x\n"),
              HasSubstr("reg.yaml:2:5: registries[0].host is required"));
  EXPECT_THAT(
      parseError("registries:\n  - host: https://a.example/v2\n"),
      HasSubstr("reg.yaml:2:11: registries[0].host \"https://a.example/v2\" must be host[:port]"));
  EXPECT_THAT(parseError("registries:\n  - host: a:5000\n    insecure: maybe\n"),
              HasSubstr("reg.yaml:3:15: registries[0].insecure must be a boolean (true or false)"));
  EXPECT_THAT(parseError("registries:\n  - host: a:5000\n  - host: A:5000\n"),
              HasSubstr("reg.yaml:3:5: registry \"a:5000\" is listed twice"));
  EXPECT_THAT(parseError("dockerConfig: ''\n"), HasSubstr("dockerConfig must not be empty"));
  EXPECT_THAT(parseError("- a\n- b\n"),
              HasSubstr("reg.yaml:1:1: the registry config must be a mapping"));
}

TEST(RegistryConfig, EveryProblemIsReportedAtOnceInFileOrder) {
  const std::string yaml =
      "platform: linux\n"      // 1
      "timeouts:\n"            // 2
      "  connect: soon\n"      // 3
      "  read: 5s\n"           // 4
      "registries:\n"          // 5
      "  - host: a:5000\n"     // 6
      "    insecure: maybe\n"  // 7
      "  - caFile: ''\n"       // 8
      "  - host: A:5000\n"     // 9
      "colour: blue\n";        // 10
  try {
    parse(yaml);
    FAIL() << "accepted";
  } catch (const LoadError& e) {
    EXPECT_EQ(e.problems().size(), 8u);
    EXPECT_EQ(
        std::string(e.what()),
        "reg.yaml:1:11: invalid platform \"linux\": expected os/architecture[/variant] in "
        "lowercase, e.g. linux/amd64 or linux/arm64/v8\n"
        "reg.yaml:3:12: timeouts.connect \"soon\" is not a positive duration such as 2s or "
        "500ms\n"
        "reg.yaml:4:3: timeouts.read: unknown field \"read\" (allowed here: connect, request)\n"
        "reg.yaml:7:15: registries[0].insecure must be a boolean (true or false), got "
        "\"maybe\"\n"
        "reg.yaml:8:5: registries[1].host is required\n"
        "reg.yaml:8:13: registries[1].caFile must not be empty\n"
        "reg.yaml:9:5: registry \"a:5000\" is listed twice (first at reg.yaml:6:5)\n"
        "reg.yaml:10:1: colour: unknown field \"colour\" (allowed here: platform, "
        "dockerConfig, timeouts, registries, cache, layers)");
  }
}

TEST(RegistryConfig, BooleansAreOnlyTrueOrFalse) {
  const std::string host = "registries:\n  - host: a:5000\n    insecure: ";
  EXPECT_EQ(parseError(host + "yes\n"),
            "reg.yaml:3:15: registries[0].insecure must be a boolean (true or false), got "
            "\"yes\": YAML 1.1 words such as yes, no, on and off are not booleans in Kubernetes' "
            "YAML; write true");
  EXPECT_THAT(parseError(host + "on\n"), HasSubstr("got \"on\": YAML 1.1 words"));
  EXPECT_THAT(parseError(host + "off\n"), HasSubstr("write false"));
  EXPECT_THAT(parseError(host + "\"true\"\n"), HasSubstr("got \"true\""));
  EXPECT_TRUE(parse(host + "True\n").registries[0].insecure);
  EXPECT_FALSE(parse(host + "false\n").registries[0].insecure);
}

TEST(RegistryConfig, UnknownNestedFieldIsLocatedInItsEntry) {
  EXPECT_EQ(parseError("registries:\n"
                       "  - host: a:5000\n"
                       "  - host: b:5000\n"
                       "    caFlie: /ca.crt\n"
                       "    insecure: ja\n"),
            "reg.yaml:4:5: registries[1].caFlie: unknown field \"caFlie\" (allowed here: host, "
            "caFile, insecure)\n"
            "reg.yaml:5:15: registries[1].insecure must be a boolean (true or false), got \"ja\"");
  EXPECT_THAT(parseError("registries:\n  - a:5000\n"),
              HasSubstr("reg.yaml:2:5: registries[0] must be a mapping, got \"a:5000\""));
}

TEST(RegistryConfig, DuplicateKeysAndNullValues) {
  EXPECT_EQ(parseError("platform: linux/amd64\nplatform: linux/arm64\n"),
            "reg.yaml:2:1: platform is given more than once (first at reg.yaml:1:1)");
  // A key without a value means the default, as Kubernetes reads null.
  const RegistryConfig config = parse("platform:\ndockerConfig: ~\ntimeouts:\n");
  EXPECT_EQ(config.platform.str(), "linux/amd64");
  EXPECT_EQ(config.dockerConfig, "");
  EXPECT_EQ(config.connectTimeout, milliseconds(2000));
}

TEST(RegistryConfig, SyntaxErrorsHaveLineAndColumn) {
  EXPECT_THAT(parseError("platform: linux/amd64\ntimeouts: {connect: 2s\n"),
              HasSubstr("reg.yaml:"));
  EXPECT_THAT(parseError("a: [\n"), HasSubstr("reg.yaml:"));
  EXPECT_THAT(parseError("a: [\n"), HasSubstr("YAML syntax error"));
}

TEST(RegistryConfig, LoadResolvesRelativePaths) {
  const auto dir = std::filesystem::temp_directory_path() / "imagegate-registry-config-test";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "registry.yaml").string();
  std::ofstream(path)
      << "dockerConfig: docker/config.json\nregistries:\n"
         "  - host: r:1\n    caFile: /abs/ca.crt\n  - host: r:2\n    caFile: ca.crt\n";
  const RegistryConfig config = RegistryConfig::load(path);
  EXPECT_EQ(config.dockerConfig, (dir / "docker/config.json").string());
  EXPECT_EQ(config.registries[0].caFile, "/abs/ca.crt");
  EXPECT_EQ(config.registries[1].caFile, (dir / "ca.crt").string());

  std::ofstream(path) << "platform: linux/amd64\nbogus: 1\n";
  try {
    RegistryConfig::load(path);
    ADD_FAILURE() << "accepted an unknown field";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path + ":2:1: bogus: unknown field \"bogus\""));
  }
  EXPECT_THROW(RegistryConfig::load((dir / "missing.yaml").string()), Error);
  std::ofstream(path) << std::string(1024 * 1024 + 1, '#');
  try {
    RegistryConfig::load(path);
    ADD_FAILURE() << "accepted a file over 1 MiB";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "registry config " + path + " is larger than 1 MiB");
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace imagegate::registry

namespace imagegate::registry {
namespace {

TEST(RegistryConfigCache, FullCacheSection) {
  const RegistryConfig config = RegistryConfig::parse(R"(
cache:
  memory: 64Mi
  layerIndexMemory: 1Gi
  tagTtl: 30s
  dir: cache
  dirBytes: 2Gi
  redis:
    address: redis.cache.svc:6380
    passwordFile: secrets/redis-password
    keyPrefix: "gate:"
    timeout: 150ms
    tls: false
)",
                                                      "reg.yaml", "/etc/imagegate");
  const CacheConfig& cache = config.cache;
  EXPECT_EQ(cache.memoryBytes, std::uint64_t{64} << 20);
  EXPECT_EQ(cache.layerIndexMemoryBytes, std::uint64_t{1} << 30);
  EXPECT_EQ(cache.tagTtl, std::chrono::seconds(30));
  EXPECT_EQ(cache.dir, "/etc/imagegate/cache");
  EXPECT_EQ(cache.dirBytes, std::uint64_t{2} << 30);
  EXPECT_EQ(cache.redis.address, "redis.cache.svc:6380");
  EXPECT_EQ(cache.redis.passwordFile, "/etc/imagegate/secrets/redis-password");
  EXPECT_EQ(cache.redis.keyPrefix, "gate:");
  EXPECT_EQ(cache.redis.timeout, std::chrono::milliseconds(150));
}

TEST(RegistryConfigCache, DefaultsWithoutACacheSection) {
  const CacheConfig cache = RegistryConfig::parse("", "reg.yaml").cache;
  EXPECT_EQ(cache.memoryBytes, std::uint64_t{32} << 20);
  EXPECT_EQ(cache.tagTtl, std::chrono::seconds(60));
  EXPECT_TRUE(cache.dir.empty());
  EXPECT_TRUE(cache.redis.address.empty());
}

TEST(RegistryConfigCache, RedisTlsIsAClearErrorSayingWhy) {
  const std::string error = parseError("cache:\n  redis:\n    address: r:6379\n    tls: true\n");
  EXPECT_THAT(error, HasSubstr("reg.yaml:4:5: cache.redis.tls"));
  EXPECT_THAT(error, HasSubstr("hiredis 0.14"));
  EXPECT_THAT(error, HasSubstr("no TLS"));
}

TEST(RegistryConfigCache, WrongValuesAreLocated) {
  EXPECT_THAT(parseError("cache:\n  memory: lots\n"),
              HasSubstr("reg.yaml:2:11: cache.memory \"lots\" is not a positive byte quantity"));
  EXPECT_THAT(parseError("cache:\n  tagTtl: 0s\n"), HasSubstr("cache.tagTtl"));
  EXPECT_THAT(parseError("cache:\n  size: 1Gi\n"), HasSubstr("cache.size"));
  EXPECT_THAT(parseError("cache:\n  redis:\n    passwordFile: /p\n"),
              HasSubstr("cache.redis.address is required"));
}

TEST(RegistryConfigLayers, LimitsOnEachScannedLayer) {
  const LayerLimitsConfig layers = RegistryConfig::parse(R"(
layers:
  maxUncompressed: 64Mi
  maxEntries: 1000
  maxPathLength: 255
  maxIndex: 1Mi
)",
                                                         "reg.yaml")
                                       .layers;
  EXPECT_EQ(layers.maxUncompressedBytes, std::uint64_t{64} << 20);
  EXPECT_EQ(layers.maxEntries, 1000u);
  EXPECT_EQ(layers.maxPathLength, 255u);
  EXPECT_EQ(layers.maxIndexBytes, std::uint64_t{1} << 20);
}

TEST(RegistryConfigLayers, DefaultsAreTheScannersOwn) {
  const LayerLimitsConfig layers = RegistryConfig::parse("", "reg.yaml").layers;
  EXPECT_EQ(layers.maxUncompressedBytes, std::uint64_t{8} << 30);
  EXPECT_EQ(layers.maxEntries, 1'000'000u);
  EXPECT_EQ(layers.maxPathLength, 4096u);
  EXPECT_EQ(layers.maxIndexBytes, std::uint64_t{256} << 20);
}

TEST(RegistryConfigLayers, WrongValuesAreLocated) {
  EXPECT_THAT(parseError("layers:\n  maxEntries: -3\n"),
              HasSubstr("reg.yaml:2:15: layers.maxEntries \"-3\" is not a whole number from 1"));
  EXPECT_THAT(parseError("layers:\n  maxPathLength: 70000\n"),
              HasSubstr("layers.maxPathLength \"70000\" is not a whole number from 1 to 65535"));
  EXPECT_THAT(parseError("layers:\n  maxUncompressed: huge\n"),
              HasSubstr("layers.maxUncompressed \"huge\" is not a positive byte quantity"));
  EXPECT_THAT(parseError("layers:\n  maxDepth: 3\n"), HasSubstr("layers.maxDepth"));
}

}  // namespace
}  // namespace imagegate::registry
