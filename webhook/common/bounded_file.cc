#include "common/bounded_file.h"

#include <algorithm>
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
  // Reading up to one byte more than allowed tells "exactly at the limit" from "over it" without
  // a stat, which would be wrong for pipes and /proc files anyway. In chunks: a generous limit
  // (audit's 256 MiB) must not cost its size in zeroed memory for every small file.
  std::string text;
  char chunk[65536];
  while (text.size() <= maxBytes) {
    const std::size_t wanted = std::min(sizeof chunk, maxBytes + 1 - text.size());
    file.read(chunk, static_cast<std::streamsize>(wanted));
    if (file.bad()) {
      throw Error("cannot read " + std::string(what) + " " + path + ": " + std::strerror(errno));
    }
    text.append(chunk, static_cast<std::size_t>(file.gcount()));
    if (file.eof() || file.gcount() == 0) break;
  }
  if (text.size() > maxBytes) {
    throw Error(std::string(what) + " " + path + " is larger than " + describeSize(maxBytes));
  }
  return text;
}

}  // namespace imagegate
