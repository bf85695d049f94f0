// One libFuzzer target for every parser of outside input. The first byte picks the parser, the
// rest is its input. Each parser may reject its input only with imagegate::Error (the documented
// way: a message for the user); anything else escaping (a std::out_of_range, an nlohmann
// type_error, a crash, a sanitizer report) is a bug the fuzzer reports.
//
// Built with clang by scripts/fuzz.sh; built with g++ into a replay executable that CTest runs
// over tests/fuzz/corpus/, so every input that once found a bug stays a test.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>

#include "common/deadline.h"
#include "common/duration.h"
#include "common/error.h"
#include "common/glob.h"
#include "common/log.h"
#include "common/quantity.h"
#include "image/image_ref.h"
#include "image/reference_glob.h"
#include "policy/loader.h"
#include "registry/auth.h"
#include "registry/manifest.h"
#include "registry/registry_config.h"
#include "service/admission_service.h"

namespace imagegate {
namespace {

// Both registries with the same policies: admission reviews run through the whole service,
// decode -> evaluate -> encode, exactly as the server runs them.
const service::AdmissionService& reviewService() {
  static const auto* const service = [] {
    log::setLevel(log::Level::kError);
    auto policies = std::make_shared<const policy::PolicySet>(policy::loadPoliciesFromString(
        R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: enforce}
spec:
  action: Enforce
  match: {excludeNamespaces: [kube-system], objectSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [x]}]}}
  rules:
    - {name: non-root, runAsNonRoot: {}}
    - {name: ro, readOnlyRootFilesystem: {}}
    - {name: priv, privileged: {allowed: false}}
    - {name: esc, allowPrivilegeEscalation: {allowed: false}}
    - {name: regs, allowedRegistries: ["registry.example.com/*", "docker.io/library/*"]}
    - {name: tags, imageReference: {disallowTags: ["latest", "*-dev"], requireDigest: true}}
    - {name: host, hostNamespaces: {allowed: false}}
---
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: audit}
spec:
  action: Audit
  onFetchError: Allow
  rules:
    - {name: size, maxImageSize: {compressed: 10Mi}}
)",
        "fuzz-policies.yaml"));
    return new service::AdmissionService(std::move(policies), {});
  }();
  return *service;
}

void admissionReview(std::string_view input) {
  // Never throws by contract: every bad input is an HTTP error or a denial.
  const auto outcome = reviewService().review(input, Deadline::after(std::chrono::seconds(5)));
  if (outcome.reply.body.empty()) __builtin_trap();
}

void manifest(std::string_view input) {
  static constexpr std::string_view kTypes[] = {
      "application/vnd.oci.image.index.v1+json",
      "application/vnd.oci.image.manifest.v1+json",
      "application/vnd.docker.distribution.manifest.list.v2+json",
      "application/vnd.docker.distribution.manifest.v2+json",
      "",
  };
  for (const std::string_view type : kTypes) {
    try {
      const auto parsed = registry::parseManifest(input, type);
      if (const auto* index = std::get_if<registry::ImageIndex>(&parsed)) {
        registry::selectPlatform(*index, image::Platform{});
      }
    } catch (const Error&) {
    }
  }
  try {
    registry::parseImageConfig(input);
  } catch (const Error&) {
  }
}

void policies(std::string_view input) {
  try {
    policy::loadPoliciesFromString(input, "fuzz.yaml");
  } catch (const Error&) {
  }
}

void auth(std::string_view input) {
  try {
    registry::preferredChallenge(registry::parseWwwAuthenticate(input));
  } catch (const Error&) {
  }
  try {
    registry::parseTokenResponse(input);
  } catch (const Error&) {
  }
  try {
    registry::DockerConfig::parse(input);
  } catch (const Error&) {
  }
  registry::base64Decode(input);
}

void registryConfig(std::string_view input) {
  try {
    registry::RegistryConfig::parse(input, "fuzz-registries.yaml");
  } catch (const Error&) {
  }
}

void smallParsers(std::string_view input) {
  try {
    const image::ImageRef ref = image::parseImageRef(input);
    image::imageGlobMatch("docker.io/library/*", ref.str());
  } catch (const Error&) {
  }
  const std::size_t half = input.size() / 2;
  globMatch(input.substr(0, half), input.substr(half));
  globProblem(input);
  parseGoDuration(input);
  parseByteQuantity(input);
  try {
    image::Platform::parse(std::string(input));
  } catch (const Error&) {
  }
}

}  // namespace
}  // namespace imagegate

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Indexed by the first byte; tests/fuzz/corpus starts its files with 0-5: append, never reorder.
  constexpr void (*kParsers[])(std::string_view) = {
      imagegate::admissionReview, imagegate::manifest,     imagegate::policies, imagegate::auth,
      imagegate::registryConfig,  imagegate::smallParsers,
  };
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  kParsers[data[0] % std::size(kParsers)](input);
  return 0;
}
