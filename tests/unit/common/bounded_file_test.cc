#include "common/bounded_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/error.h"

namespace imagegate {
namespace {

using ::testing::HasSubstr;

std::string errorOf(const std::string& path, std::size_t maxBytes) {
  try {
    readBoundedFile(path, maxBytes, "test config");
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "read " << path;
  return "";
}

TEST(ReadBoundedFile, ReadsUpToTheLimitAndRefusesMore) {
  const auto dir = std::filesystem::temp_directory_path() / "imagegate-bounded-file-test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "f.txt").string();
  std::ofstream(path, std::ios::binary) << std::string(10, 'x');
  EXPECT_EQ(readBoundedFile(path, 10, "test config"), std::string(10, 'x'));
  EXPECT_EQ(errorOf(path, 9), "test config " + path + " is larger than 9 bytes");
  EXPECT_THAT(errorOf(path, 0), HasSubstr("larger than 0 bytes"));
  std::ofstream(path, std::ios::binary) << std::string(2 * 1024 * 1024 + 1, 'x');
  EXPECT_EQ(errorOf(path, 2 * 1024 * 1024), "test config " + path + " is larger than 2 MiB");
  std::filesystem::remove_all(dir);
}

TEST(ReadBoundedFile, MissingFileSaysWhichAndWhy) {
  EXPECT_EQ(errorOf("/nonexistent/imagegate/f.yaml", 10),
            "cannot read test config /nonexistent/imagegate/f.yaml: No such file or directory");
}

}  // namespace
}  // namespace imagegate
