#include "cli/reloader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace imagegate::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;

class ReloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("imagegate-reloader-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }

  fs::path dir_;
};

TEST_F(ReloaderTest, DigestFollowsContentsThroughASymlinkSwap) {
  // The kubelet's layout: name -> ..data/name, ..data -> ..v1, swapped to ..v2 by a rename.
  write(dir_ / "..v1" / "tls.crt", "one");
  write(dir_ / "..v2" / "tls.crt", "two");
  fs::create_directory_symlink("..v1", dir_ / "..data");
  fs::create_symlink("..data/tls.crt", dir_ / "tls.crt");
  const std::vector<std::string> files = {(dir_ / "tls.crt").string()};
  const std::string before = contentDigest(files);
  EXPECT_EQ(contentDigest(files), before);
  EXPECT_EQ(before.size(), 64u);

  fs::create_directory_symlink("..v2", dir_ / "..data_tmp");
  fs::rename(dir_ / "..data_tmp", dir_ / "..data");
  EXPECT_NE(contentDigest(files), before);

  fs::remove(dir_ / "..v2" / "tls.crt");
  EXPECT_NE(contentDigest(files), before);  // missing is a state of its own
  EXPECT_EQ(shortRevision(files), contentDigest(files).substr(0, 12));
}

TEST_F(ReloaderTest, PolicyFilesAreTheYamlFilesTheLoaderReads) {
  write(dir_ / "..v1" / "b.yaml", "b");
  write(dir_ / "..v1" / "a.yml", "a");
  fs::create_directory_symlink("..v1", dir_ / "..data");
  fs::create_symlink("..data/b.yaml", dir_ / "b.yaml");
  fs::create_symlink("..data/a.yml", dir_ / "a.yml");
  write(dir_ / "README.md", "not a policy");
  EXPECT_THAT(policyFiles(dir_.string()),
              ElementsAre((dir_ / "a.yml").string(), (dir_ / "b.yaml").string()));
  EXPECT_THAT(policyFiles((dir_ / "b.yaml").string()), ElementsAre((dir_ / "b.yaml").string()));
}

TEST_F(ReloaderTest, RegistryConfigFilesIncludeWhatItNames) {
  write(dir_ / "docker.json", "{}");
  write(dir_ / "ca.crt", "ca");
  write(dir_ / "registries.yaml",
        "dockerConfig: " + (dir_ / "docker.json").string() +
            "\nregistries:\n  - host: r.example\n    caFile: " + (dir_ / "ca.crt").string() + "\n");
  EXPECT_THAT(registryConfigFiles((dir_ / "registries.yaml").string()),
              ElementsAre((dir_ / "registries.yaml").string(), (dir_ / "docker.json").string(),
                          (dir_ / "ca.crt").string()));
  write(dir_ / "broken.yaml", "registries: [");
  EXPECT_THAT(registryConfigFiles((dir_ / "broken.yaml").string()),
              ElementsAre((dir_ / "broken.yaml").string()));
}

TEST_F(ReloaderTest, AppliesChangesOnceAndRejectsWithoutRetryingTheSameContents) {
  const fs::path file = dir_ / "policy.yaml";
  write(file, "v1");
  std::vector<std::string> applied;
  std::vector<std::pair<std::string, bool>> outcomes;
  Reloader reloader({{"policies", [&] { return std::vector<std::string>{file.string()}; },
                      [&] {
                        std::ifstream in(file);
                        std::string text;
                        in >> text;
                        if (text == "broken") throw std::runtime_error("invalid");
                        applied.push_back(text);
                      }}},
                    std::chrono::hours(1),  // polls only when the test asks
                    [&](const std::string& kind, bool ok) { outcomes.emplace_back(kind, ok); });

  reloader.pollOnce();  // what was there at start is not applied again
  EXPECT_TRUE(applied.empty());
  write(file, "v2");
  reloader.pollOnce();
  reloader.pollOnce();
  EXPECT_THAT(applied, ElementsAre("v2"));
  write(file, "broken");
  reloader.pollOnce();
  reloader.pollOnce();  // the same broken contents: not tried again
  write(file, "v3");
  reloader.pollOnce();
  EXPECT_THAT(applied, ElementsAre("v2", "v3"));
  EXPECT_THAT(outcomes, ElementsAre(std::pair<std::string, bool>{"policies", true},
                                    std::pair<std::string, bool>{"policies", false},
                                    std::pair<std::string, bool>{"policies", true}));
}

}  // namespace
}  // namespace imagegate::cli
