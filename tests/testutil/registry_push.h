#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fixture_registry.h"
#include "registry/digest.h"
#include "shell.h"

// Pushes images made by a test, blob by blob, to a real registry started by
// tests/fixtures/registry/start-registry.sh (fixture_registry.h; any mode with Basic auth or
// none): layers of any
// content, hostile ones included, because nothing checks them on the way in but the registry
// itself (which verifies only that each blob matches the digest it is pushed under).
namespace imagegate::testutil {

namespace fs = std::filesystem;

/// One layer as the manifest describes it.
struct TestLayer {
  TestLayer(std::string layerBlob,
            std::string layerMediaType = "application/vnd.oci.image.layer.v1.tar+gzip",
            std::string historyLine = "COPY . /")
      : blob(std::move(layerBlob)),
        mediaType(std::move(layerMediaType)),
        createdBy(std::move(historyLine)) {}

  std::string blob;  ///< The bytes the registry will serve, pushed under their own digest.
  std::string mediaType;
  std::string createdBy;  ///< The config's history line for the layer.
};

struct PushedTestImage {
  std::string repository;  ///< e.g. test/hostile-bomb
  std::string tagRef;      ///< HOST/test/hostile-bomb:1
  std::string manifestDigest;
  std::string configDigest;
  std::vector<std::string> layerDigests;
};

class RegistryPusher {
 public:
  /// `registryEnv` is the fixture's registry.env; files go under `dir`.
  RegistryPusher(const Env& registryEnv, fs::path dir) : env_(registryEnv), dir_(std::move(dir)) {
    fs::create_directories(dir_ / "blobs");
    writeFile(dir_ / "push.sh", kPushScript);
  }

  std::string host() const { return get(env_, "REGISTRY_HOST"); }

  /// Pushes every layer blob, a config (User 65532, a history line per layer) and an OCI
  /// manifest naming them, tagged REPOSITORY:1.
  PushedTestImage push(const std::string& repository, const std::vector<TestLayer>& layers) const {
    using nlohmann::json;
    PushedTestImage image;
    image.repository = repository;
    json descriptors = json::array();
    json diffIds = json::array();
    json history = json::array();
    for (const TestLayer& layer : layers) {
      const std::string digest = registry::sha256Digest(layer.blob);
      pushBlob(repository, layer.blob, digest);
      image.layerDigests.push_back(digest);
      descriptors.push_back(
          {{"mediaType", layer.mediaType}, {"digest", digest}, {"size", layer.blob.size()}});
      // Nothing here reads diff_ids; a stand-in keeps the config well-formed.
      diffIds.push_back(digest);
      history.push_back({{"created_by", layer.createdBy}});
    }
    const std::string config = json{
        {"architecture", "amd64"},
        {"os", "linux"},
        {"config", {{"User", "65532:65532"}}},
        {"rootfs", {{"type", "layers"}, {"diff_ids", diffIds}}},
        {"history", history}}.dump();
    const std::string configDigest = registry::sha256Digest(config);
    pushBlob(repository, config, configDigest);
    image.configDigest = configDigest;
    const std::string manifest = json{
        {"schemaVersion", 2},
        {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
        {"config",
         {{"mediaType", "application/vnd.oci.image.config.v1+json"},
          {"digest", configDigest},
          {"size", config.size()}}},
        {"layers", descriptors}}.dump();
    image.manifestDigest = registry::sha256Digest(manifest);
    const fs::path file = dir_ / "blobs" / image.manifestDigest;
    writeFile(file, manifest);
    run(repository, "manifest", file, "1");
    image.tagRef = host() + "/" + repository + ":1";
    return image;
  }

  void pushBlob(const std::string& repository, const std::string& blob,
                const std::string& digest) const {
    const fs::path file = dir_ / "blobs" / digest;
    writeFile(file, blob);
    run(repository, "blob", file, digest);
    fs::remove(file);  // bombs are large enough to matter
  }

  /// Where docker-registry's filesystem driver keeps the bytes of `digest` (sha256 only).
  fs::path storedBlobPath(const std::string& digest) const {
    const std::string hex = digest.substr(digest.find(':') + 1);
    return fs::path(get(env_, "REGISTRY_DATA_DIR")) / "docker/registry/v2/blobs/sha256" /
           hex.substr(0, 2) / hex / "data";
  }

 private:
  // POST an upload, PUT its Location with the digest; manifests PUT by tag.
  static constexpr const char* kPushScript = R"(#!/bin/sh
# push.sh URL CA USER:PASS REPO blob FILE DIGEST | manifest FILE TAG
set -eu
url=$1 ca=$2 auth=$3 repo=$4 what=$5 file=$6 ref=$7
c() {
  if [ "$auth" = ":" ]; then curl -sS --fail --max-time 120 --cacert "$ca" "$@"
  else curl -sS --fail --max-time 120 --cacert "$ca" -u "$auth" "$@"; fi
}
if [ "$what" = blob ]; then
  loc=$(c -X POST -D - -o /dev/null "$url/v2/$repo/blobs/uploads/" | tr -d '\r' |
    awk 'tolower($1) == "location:" { print $2 }')
  case $loc in http*) ;; *) loc=$url$loc ;; esac
  case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
  c -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$file" \
    "$loc${sep}digest=$ref" -o /dev/null
else
  c -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "@$file" \
    "$url/v2/$repo/manifests/$ref" -o /dev/null
fi
)";

  void run(const std::string& repository, const std::string& what, const fs::path& file,
           const std::string& ref) const {
    const std::string ca = get(env_, "REGISTRY_CA");
    const std::string command =
        "sh " + shellQuote((dir_ / "push.sh").string()) + " " +
        shellQuote(get(env_, "REGISTRY_URL")) + " " + shellQuote(ca.empty() ? "/dev/null" : ca) +
        " " + shellQuote(get(env_, "REGISTRY_USER") + ":" + get(env_, "REGISTRY_PASSWORD")) + " " +
        shellQuote(repository) + " " + what + " " + shellQuote(file.string()) + " " +
        shellQuote(ref);
    const std::string failure = runLogged(command, dir_ / "push.log");
    if (!failure.empty()) throw std::runtime_error("push " + what + " " + failure);
  }

  Env env_;
  fs::path dir_;
};

}  // namespace imagegate::testutil
