#include "cli/reloader.h"

#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/log.h"
#include "registry/digest.h"
#include "registry/registry_config.h"

namespace imagegate::cli {
namespace {

namespace fs = std::filesystem;

// Policy files, certificates and registry settings are kilobytes; a path that suddenly names
// something huge is not read whole every second.
constexpr std::uintmax_t kMaxWatchedFileBytes = 16 * 1024 * 1024;

void addFileContents(registry::Digester& digester, const std::string& path) {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(path, ec);
  std::ifstream in(path, std::ios::binary);
  if (ec || !in || size > kMaxWatchedFileBytes) {
    digester.update("missing\n");
    return;
  }
  const std::string contents{std::istreambuf_iterator<char>(in), {}};
  digester.update(std::to_string(contents.size()) + "\n");
  digester.update(contents);
}

}  // namespace

std::vector<std::string> policyFiles(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return {path};
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    const auto extension = entry.path().extension();
    std::error_code kindError;
    if ((extension == ".yaml" || extension == ".yml") && !entry.is_directory(kindError)) {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  // An empty list would digest like an unchanged empty directory; name the directory instead.
  if (files.empty()) files.push_back(path);
  return files;
}

std::vector<std::string> registryConfigFiles(const std::string& path) {
  std::vector<std::string> files = {path};
  try {
    const registry::RegistryConfig config = registry::RegistryConfig::load(path);
    if (!config.dockerConfig.empty()) files.push_back(config.dockerConfig);
    for (const registry::RegistryHostConfig& host : config.registries) {
      if (!host.caFile.empty()) files.push_back(host.caFile);
    }
  } catch (const std::exception&) {
    // The config itself is in the list: its change triggers a reload, which reports the problem.
  }
  return files;
}

std::string contentDigest(const std::vector<std::string>& files) {
  registry::Digester digester;
  for (const std::string& file : files) {
    digester.update(file + "\n");
    addFileContents(digester, file);
  }
  std::string digest = digester.finish();
  return digest.substr(digest.find(':') + 1);
}

std::string shortRevision(const std::vector<std::string>& files) {
  return contentDigest(files).substr(0, 12);
}

Reloader::Reloader(std::vector<Watch> watches, std::chrono::milliseconds interval, Outcome outcome)
    : outcome_(std::move(outcome)) {
  for (Watch& watch : watches) {
    const std::string digest = contentDigest(watch.files());
    watched_.push_back({std::move(watch), digest});
  }
  thread_ = std::thread([this, interval] { loop(interval); });
}

Reloader::~Reloader() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Reloader::loop(std::chrono::milliseconds interval) {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, interval, [this] { return stopping_; })) {
    lock.unlock();
    pollOnce();
    lock.lock();
  }
}

void Reloader::pollOnce() {
  std::lock_guard serialize(pollMutex_);
  for (Watched& watched : watched_) {
    const std::string before = contentDigest(watched.watch.files());
    if (before == watched.digest) continue;
    const std::string& kind = watched.watch.kind;
    bool ok = true;
    try {
      watched.watch.apply();
    } catch (const std::exception& e) {
      ok = false;
      log::error("reload rejected: keeping what was loaded before",
                 {{"kind", kind}, {"error", e.what()}});
    }
    // A change while loading (a second swap, a writer half done) may have given a mix of old
    // and new files: forget this digest, so the next poll loads them again.
    const bool changedMeanwhile = contentDigest(watched.watch.files()) != before;
    watched.digest = changedMeanwhile ? std::string() : before;
    outcome_(kind, ok);
  }
}

}  // namespace imagegate::cli
