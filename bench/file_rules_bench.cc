// What a forbiddenFiles rule with every preset costs on a large image: a report, not a test.
// See bench/README.md, "File rules on a large image".
//
// Builds a synthetic image in memory (no registry, no scan: only the rule's walk is measured) of
// about `entries` paths across three layers, shaped like the images the presets were written for:
// a merged-/usr Debian base (bin -> usr/bin, sbin -> usr/sbin, lib -> usr/lib, thousands of files
// under usr/share and usr/lib), busybox with its applet symlinks, a toolchain layer with gcc's
// version links and hardlinks, and an application. Then evaluates
//   forbiddenFiles: {presets: [shells, compilers, packageManagers, networkTools]}
// through the policy evaluator, as the webhook does, and prints the time per evaluation and what
// it found. Run the same source against two builds to compare them.
//
//   file_rules_bench [ENTRIES=50000] [RUNS=20]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "image/file_index.h"
#include "image/image_facts.h"
#include "image/image_ref.h"
#include "policy/evaluator.h"
#include "policy/loader.h"
#include "policy/plan.h"

namespace {

using imagegate::image::EntryType;
using imagegate::image::LayerIndex;
using imagegate::image::LayerIndexBuilder;

std::shared_ptr<const LayerIndex> finish(LayerIndexBuilder& builder) {
  return std::make_shared<const LayerIndex>(std::move(builder).build());
}

void dir(LayerIndexBuilder& b, const std::string& path) {
  b.add(path, EntryType::kDirectory, 0755, 0, 0, 0);
}
void file(LayerIndexBuilder& b, const std::string& path, std::uint32_t mode = 0644) {
  b.add(path, EntryType::kRegular, mode, 0, 0, 1000);
}
void symlink(LayerIndexBuilder& b, const std::string& path, const std::string& target) {
  b.add(path, EntryType::kSymlink, 0777, 0, 0, 0, target);
}
void hardlink(LayerIndexBuilder& b, const std::string& path, const std::string& target) {
  b.add(path, EntryType::kHardlink, 0755, 0, 0, 0, target);
}

/// A merged-/usr base with about `entries` paths, most of them data files deep under usr/.
std::shared_ptr<const LayerIndex> debianBase(std::size_t entries) {
  LayerIndexBuilder b;
  for (const char* d : {"usr", "usr/bin", "usr/sbin", "usr/lib", "usr/share", "etc", "var"}) {
    dir(b, d);
  }
  symlink(b, "bin", "usr/bin");
  symlink(b, "sbin", "usr/sbin");
  symlink(b, "lib", "usr/lib");
  for (const char* program : {"bash", "dash", "apt", "apt-get", "dpkg", "perl", "ls", "cat"}) {
    file(b, std::string("usr/bin/") + program, 0755);
  }
  symlink(b, "usr/bin/sh", "dash");
  symlink(b, "usr/bin/rbash", "bash");
  for (std::size_t i = 0; i < 1500; ++i) file(b, "usr/bin/tool" + std::to_string(i), 0755);
  for (std::size_t i = 0; i < 200; ++i) file(b, "usr/sbin/daemon" + std::to_string(i), 0755);
  std::size_t added = b.entriesAdded();
  for (std::size_t package = 0; added < entries; ++package) {
    const std::string root =
        (package % 3 == 0 ? "usr/lib/pkg" : "usr/share/doc/pkg") + std::to_string(package);
    dir(b, root);
    for (std::size_t i = 0; i < 40 && added < entries; ++i, ++added) {
      file(b, root + "/data/file" + std::to_string(i) + (i % 5 == 0 ? ".so" : ".txt"));
    }
  }
  return finish(b);
}

/// busybox in usr/bin with its applets as symlinks (a few of them preset names).
std::shared_ptr<const LayerIndex> busybox() {
  LayerIndexBuilder b;
  file(b, "usr/bin/busybox", 0755);
  for (const char* applet : {"ash", "wget", "nc", "telnet", "vi", "awk", "sed", "grep"}) {
    symlink(b, std::string("usr/bin/") + applet, "busybox");
  }
  for (std::size_t i = 0; i < 300; ++i) {
    symlink(b, "usr/bin/applet" + std::to_string(i), "/usr/bin/busybox");
  }
  return finish(b);
}

/// gcc with its version links and a hardlinked driver, headers, cc1; and the application.
std::shared_ptr<const LayerIndex> toolchainAndApp() {
  LayerIndexBuilder b;
  file(b, "usr/bin/gcc-12", 0755);
  symlink(b, "usr/bin/gcc", "gcc-12");
  symlink(b, "usr/bin/cc", "gcc");
  file(b, "usr/bin/x86_64-linux-gnu-gcc-12", 0755);
  hardlink(b, "usr/bin/c89-gcc", "usr/bin/x86_64-linux-gnu-gcc-12");
  file(b, "usr/include/stdio.h");
  file(b, "usr/lib/gcc/x86_64-linux-gnu/12/cc1", 0755);
  dir(b, "app");
  for (std::size_t i = 0; i < 1000; ++i) file(b, "app/static/chunk" + std::to_string(i) + ".js");
  return finish(b);
}

constexpr const char* kPolicy = R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: bench}
spec:
  rules:
    - name: everything
      forbiddenFiles: {presets: [shells, compilers, packageManagers, networkTools]}
)";

}  // namespace

int main(int argc, char** argv) {
  namespace image = imagegate::image;
  namespace policy = imagegate::policy;
  const std::size_t entries = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 50'000;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 20;
  try {
    auto files = std::make_shared<const image::MergedFilesystem>(
        std::vector<std::shared_ptr<const LayerIndex>>{debianBase(entries), busybox(),
                                                       toolchainAndApp()});
    const image::ImageRef ref = image::parseImageRef("registry.example/bench/app:1");
    image::ImageFacts facts;
    facts.ref = ref;
    for (std::size_t i = 0; i < files->layerCount(); ++i) {
      facts.layers.push_back({"application/vnd.oci.image.layer.v1.tar+gzip",
                              "sha256:" + std::string(64, static_cast<char>('a' + i)), 0});
    }
    policy::ImageFactsMap known;
    known[ref].facts = std::move(facts);
    known[ref].files = files;
    const policy::PolicySet policies = policy::loadPoliciesFromString(kPolicy, "bench.yaml");
    const policy::ReviewPlan plan = policy::planImage(policies, ref);

    std::vector<double> millis;
    std::string message;
    for (int run = 0; run < runs + 1; ++run) {
      const auto started = std::chrono::steady_clock::now();
      const std::vector<policy::RuleResult> results = policy::evaluate(plan, known);
      const auto took = std::chrono::steady_clock::now() - started;
      if (run == 0) {  // warm-up, and what was found
        for (const auto& result : results) message += result.message;
        continue;
      }
      millis.push_back(std::chrono::duration<double, std::milli>(took).count());
    }
    std::sort(millis.begin(), millis.end());
    std::printf("image: %zu merged entries in %zu layers\n", files->size(), files->layerCount());
    std::printf("forbiddenFiles, 4 presets: median %.2f ms, min %.2f ms, max %.2f ms (%d runs)\n",
                millis[millis.size() / 2], millis.front(), millis.back(), runs);
    std::printf("finding: %s\n", message.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "file_rules_bench: %s\n", e.what());
    return 2;
  }
  return 0;
}
