#include "image/image_ref.h"
#include "common/text.h"

#include <algorithm>
#include <cctype>
#include <string>

// Mirrors github.com/distribution/reference (ParseNormalizedNamed): the same grammar and the same
// Docker Hub defaults, so the reference we judge is the one the container runtime will pull.
namespace imagegate::image {
namespace {

constexpr std::string_view kDefaultRegistry = "docker.io";
constexpr std::string_view kLegacyDefaultRegistry = "index.docker.io";
constexpr std::string_view kOfficialRepositoryPrefix = "library/";
constexpr std::size_t kMaxNameLength = 255;
constexpr std::size_t kMaxTagLength = 128;

[[noreturn]] void reject(std::string_view input, const std::string& why) {
  throw InvalidReference("invalid image reference \"" + std::string(input) + "\": " + why);
}

bool isAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isLowerHex(char c) { return isDigit(c) || (c >= 'a' && c <= 'f'); }
bool isHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

template <typename Pred>
bool all(std::string_view text, Pred pred) {
  return std::all_of(text.begin(), text.end(), pred);
}

/// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | -+
bool isPathComponent(std::string_view component) {
  if (component.empty() || !isLowerAlnum(component.front()) || !isLowerAlnum(component.back())) {
    return false;
  }
  std::size_t i = 0;
  while (i < component.size()) {
    if (isLowerAlnum(component[i])) {
      ++i;
      continue;
    }
    const std::size_t start = i;
    while (i < component.size() && !isLowerAlnum(component[i])) ++i;
    const std::string_view separator = component.substr(start, i - start);
    const bool valid = separator == "." || separator == "_" || separator == "__" ||
                       all(separator, [](char c) { return c == '-'; });
    if (!valid) return false;
  }
  return true;
}

/// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool isDomainComponent(std::string_view component) {
  return !component.empty() && isAlnum(component.front()) && isAlnum(component.back()) &&
         all(component, [](char c) { return isAlnum(c) || c == '-'; });
}

bool isHostName(std::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {  // IPv6 literal
    return all(host.substr(1, host.size() - 2), [](char c) { return isHex(c) || c == ':'; });
  }
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = host.find('.', start);
    if (!isDomainComponent(host.substr(start, dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

/// domain := host [":" port]; IPv6 literals carry their own colons inside the brackets.
bool isRegistry(std::string_view registry) {
  const std::size_t bracketEnd = registry.rfind(']');
  const std::size_t colon = registry.rfind(':');
  if (colon == std::string_view::npos ||
      (bracketEnd != std::string_view::npos && colon < bracketEnd)) {
    return isHostName(registry);
  }
  const std::string_view port = registry.substr(colon + 1);
  return isHostName(registry.substr(0, colon)) && !port.empty() && all(port, isDigit);
}

/// tag := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
bool isTag(std::string_view tag) {
  const auto word = [](char c) { return isAlnum(c) || c == '_'; };
  return !tag.empty() && tag.size() <= kMaxTagLength && word(tag.front()) &&
         all(tag, [&](char c) { return word(c) || c == '.' || c == '-'; });
}

/// algorithm := [a-z0-9]+ ([+._-] [a-z0-9]+)*  (the OCI image-spec grammar)
bool isDigestAlgorithm(std::string_view algorithm) {
  if (algorithm.empty() || !isLowerAlnum(algorithm.front()) || !isLowerAlnum(algorithm.back())) {
    return false;
  }
  for (std::size_t i = 1; i < algorithm.size(); ++i) {
    const char c = algorithm[i];
    const bool separator = c == '+' || c == '.' || c == '_' || c == '-';
    if (!isLowerAlnum(c) && !(separator && isLowerAlnum(algorithm[i - 1]))) return false;
  }
  return true;
}

/// The hex length of each algorithm container runtimes can pull (go-digest's available
/// algorithms as containerd and CRI-O build them); 0 for any other.
std::size_t pullableHexLength(std::string_view algorithm) {
  if (algorithm == "sha256") return 64;
  if (algorithm == "sha512") return 128;
  return 0;
}

/// Why `digest` is not a valid digest, or empty. A well-formed digest of another algorithm is
/// still invalid: the kubelet could not pull it, so it must not pass as pinned.
std::string digestProblem(std::string_view digest) {
  const std::size_t colon = digest.find(':');
  if (colon == std::string_view::npos) {
    return "digest \"" + std::string(digest) + "\" must have the form algorithm:hex";
  }
  const std::string_view algorithm = digest.substr(0, colon);
  const std::string_view hex = digest.substr(colon + 1);
  if (!isDigestAlgorithm(algorithm)) {
    return "digest algorithm \"" + std::string(algorithm) + "\" is not valid";
  }
  const std::size_t expected = pullableHexLength(algorithm);
  if (expected == 0) {
    return "digest algorithm \"" + std::string(algorithm) +
           "\" cannot be pulled (use sha256 or sha512)";
  }
  if (hex.size() != expected || !all(hex, isLowerHex)) {
    return std::string(algorithm) + " digest must be " + std::to_string(expected) +
           " lowercase hex characters";
  }
  return "";
}

/// Splits "name[:tag]" where a ':' before the last '/' belongs to a registry port.
void splitTag(std::string_view input, std::string_view& name, std::string_view& tag, bool& hasTag) {
  const std::size_t colon = input.rfind(':');
  const std::size_t slash = input.rfind('/');
  hasTag = colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash);
  name = hasTag ? input.substr(0, colon) : input;
  tag = hasTag ? input.substr(colon + 1) : std::string_view{};
}

/// Docker Hub's rule: the first component is a registry only if it looks like a host.
void splitRegistry(std::string_view name, std::string& registry, std::string& repository) {
  const std::size_t slash = name.find('/');
  const std::string_view first = name.substr(0, slash);
  const bool isHost = slash != std::string_view::npos &&
                      (first.find_first_of(".:") != std::string_view::npos || first == "localhost");
  registry = isHost ? std::string(first) : std::string(kDefaultRegistry);
  repository = std::string(isHost ? name.substr(slash + 1) : name);
  if (registry == kLegacyDefaultRegistry) registry = kDefaultRegistry;
  if (registry == kDefaultRegistry && repository.find('/') == std::string::npos) {
    repository = std::string(kOfficialRepositoryPrefix) + repository;
  }
}

void checkRepository(std::string_view input, std::string_view repository) {
  if (repository.empty()) reject(input, "the repository name is empty");
  if (std::any_of(repository.begin(), repository.end(),
                  [](unsigned char c) { return std::isupper(c); })) {
    reject(input, "the repository name must be lowercase");
  }
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = repository.find('/', start);
    const std::string_view component = repository.substr(start, slash - start);
    if (!isPathComponent(component)) {
      reject(input, "repository component \"" + std::string(component) +
                        "\" must be lowercase letters and digits separated by '.', '_', '__' "
                        "or '-'");
    }
    if (slash == std::string_view::npos) return;
    start = slash + 1;
  }
}

bool isHexIdentifier(std::string_view input) {
  return input.size() == 64 && all(input, isLowerHex);
}

}  // namespace

// Both are built in one allocation: every review calls str() for each of its containers.
std::string ImageRef::name() const {
  std::string text;
  text.reserve(registry.size() + 1 + repository.size());
  text.append(registry).append(1, '/').append(repository);
  return text;
}

std::string ImageRef::str() const {
  std::string text;
  text.reserve(registry.size() + 1 + repository.size() + 1 + tag.size() + 1 + digest.size());
  text.append(registry).append(1, '/').append(repository);
  if (!tag.empty()) text.append(1, ':').append(tag);
  if (!digest.empty()) text.append(1, '@').append(digest);
  return text;
}

ImageRef parseImageRef(std::string_view reference) {
  if (reference.empty()) reject(reference, "it is empty");
  if (isHexIdentifier(reference)) {
    reject(reference, "a 64-character hex string is an image ID, not a repository name");
  }
  ImageRef ref;
  const std::size_t at = reference.find('@');
  const std::string_view nameAndTag = reference.substr(0, at);
  if (at != std::string_view::npos) {
    ref.digest = std::string(reference.substr(at + 1));
    if (const std::string problem = digestProblem(ref.digest); !problem.empty()) {
      reject(reference, problem);
    }
  }
  std::string_view name;
  std::string_view tag;
  bool hasTag = false;
  splitTag(nameAndTag, name, tag, hasTag);
  if (hasTag && !isTag(tag)) {
    reject(reference, "tag \"" + std::string(tag) +
                          "\" must be 1 to 128 letters, digits, '_', '.' or '-', not starting "
                          "with '.' or '-'");
  }
  splitRegistry(name, ref.registry, ref.repository);
  if (!isRegistry(ref.registry)) {
    reject(reference, "registry \"" + ref.registry + "\" is not a valid host[:port]");
  }
  checkRepository(reference, ref.repository);
  if (ref.registry.size() + 1 + ref.repository.size() > kMaxNameLength) {  // name()'s length
    reject(reference, "the repository name must not be longer than 255 characters");
  }
  ref.tag = hasTag ? std::string(tag) : "";
  if (!hasTag && ref.digest.empty()) {
    ref.tag = "latest";
    ref.tagImplied = true;
  }
  return ref;
}

}  // namespace imagegate::image
