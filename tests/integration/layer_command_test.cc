#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "testutil/layer_builder.h"
#include "testutil/shell.h"

// `imagegate layer scan`, the real binary on a layer file: what a user runs to see what imagegate
// sees in a layer.
namespace imagegate {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class LayerCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / "imagegate-layer-command";
    std::filesystem::create_directories(dir_);
    const std::string tar = testutil::TarBuilder()
                                .dir("bin")
                                .file("bin/busybox", std::string(1000, 'x'), 0755)
                                .symlink("bin/sh", "busybox")
                                .file("root/.ssh/id_rsa",
                                      "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                                      "-----END OPENSSH PRIVATE KEY-----\n",
                                      0600)
                                .tar();
    layer_ = dir_ / "layer.tar.gz";
    testutil::writeFile(layer_, testutil::gzipCompress(tar));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  testutil::CommandResult scan(const std::string& args) {
    return testutil::runCommand(std::string(IMAGEGATE_BINARY) + " layer scan " +
                                testutil::shellQuote(layer_.string()) + " " + args + " 2>&1");
  }

  std::filesystem::path dir_;
  std::filesystem::path layer_;
};

TEST_F(LayerCommandTest, SummarizesWhatTheScannerSees) {
  const auto result = scan("--find '**/bin/sh'");
  ASSERT_EQ(result.exitCode, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("(gzip,"));
  EXPECT_THAT(result.output, HasSubstr("1 symlinks"));
  EXPECT_THAT(result.output, HasSubstr("/root/.ssh/id_rsa: "));
  EXPECT_THAT(result.output, HasSubstr("/bin/sh -> /bin/busybox"));
  EXPECT_THAT(result.output, Not(HasSubstr("AAAA")));  // the kind of secret, never the secret
}

TEST_F(LayerCommandTest, ADigestMismatchIsAnErrorNotAnIndex) {
  const auto result = scan("--digest sha256:" + std::string(64, '0'));
  EXPECT_EQ(result.exitCode, 2);
  EXPECT_THAT(result.output, HasSubstr("digest mismatch"));
  EXPECT_THAT(result.output, Not(HasSubstr("entries:")));
}

}  // namespace
}  // namespace imagegate
