#include "image/image_facts.h"

#include <algorithm>
#include <numeric>

#include "common/error.h"

namespace imagegate::image {
namespace {

// Platform components are short lowercase identifiers ("linux", "arm64", "v8"); rejecting
// anything else keeps typos such as "Linux/AMD64" or "linux-amd64" from silently matching nothing.
bool isPlatformPart(const std::string& part) {
  if (part.empty() || part.size() > 32) {
    return false;
  }
  for (const char c : part) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) {
      return false;
    }
  }
  return true;
}

std::vector<std::string> splitSlash(const std::string& text) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const auto slash = text.find('/', start);
    parts.push_back(text.substr(start, slash - start));
    if (slash == std::string::npos) {
      return parts;
    }
    start = slash + 1;
  }
}

}  // namespace

Platform Platform::parse(const std::string& text) {
  const auto parts = splitSlash(text);
  const bool wellFormed = (parts.size() == 2 || parts.size() == 3) &&
                          std::all_of(parts.begin(), parts.end(), isPlatformPart);
  if (!wellFormed) {
    throw Error("invalid platform \"" + text +
                "\": expected os/architecture[/variant] in lowercase, e.g. linux/amd64 or "
                "linux/arm64/v8");
  }
  Platform platform;
  platform.os = parts[0];
  platform.architecture = parts[1];
  platform.variant = parts.size() == 3 ? parts[2] : "";
  return platform;
}

std::string Platform::str() const {
  std::string text = os + "/" + architecture;
  if (!variant.empty()) {
    text += "/" + variant;
  }
  return text;
}

std::uint64_t ImageFacts::compressedSize() const {
  return std::accumulate(
      layers.begin(), layers.end(), std::uint64_t{0},
      [](std::uint64_t sum, const Descriptor& layer) { return sum + layer.size; });
}

}  // namespace imagegate::image
