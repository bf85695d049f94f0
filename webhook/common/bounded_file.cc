#include "common/bounded_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/error.h"

namespace imagegate {
namespace {

std::string describeSize(std::size_t bytes) {
  constexpr std::size_t kMiB = 1024 * 1024;
  if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
  return std::to_string(bytes) + " bytes";
}

}  // namespace

std::string readBoundedFile(const std::string& path, std::size_t maxBytes, std::string_view what) {
  errno = 0;
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    const std::string reason = errno != 0 ? std::strerror(errno) : "cannot be opened";
    throw Error("cannot read " + std::string(what) + " " + path + ": " + reason);
  }
  // One byte more than allowed tells "exactly at the limit" from "over it" without a stat, which
  // would be wrong for pipes and /proc files anyway.
  std::string text(maxBytes + 1, '\0');
  file.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (file.bad()) {
    throw Error("cannot read " + std::string(what) + " " + path + ": " + std::strerror(errno));
  }
  text.resize(static_cast<std::size_t>(file.gcount()));
  if (text.size() > maxBytes) {
    throw Error(std::string(what) + " " + path + " is larger than " + describeSize(maxBytes));
  }
  return text;
}

}  // namespace imagegate
