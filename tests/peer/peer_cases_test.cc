// Runs other policy engines' test cases (Kyverno, Gatekeeper, kubewarden) through imagegate and
// compares verdicts. The cases live outside the repo (shared/peer-cases, see its README.md) and
// are read in place; only the mapping onto our policies (tests/peer/policies/) lives here.
//
// Every entry of expected.json becomes one test. An entry runs when its upstream policy and
// parameters map onto imagegate rules (kMappings); otherwise it is skipped with the reason
// (registry data needed, upstream verdict needs a mutation, or no matching rule: kUnmapped).
// Where our semantics differ from upstream on purpose, the case is listed in kKnownMismatches and
// must keep mismatching, so that a change in behaviour is noticed.

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/deadline.h"
#include "common/log.h"
#include "policy/loader.h"
#include "policy/model.h"
#include "service/admission_service.h"
#include "testutil/fake_registry.h"
#include "testutil/yaml_json.h"

namespace imagegate {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testutil::toJson;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Mapping tables: our judgement of which upstream policy + parameters our rules express.

/// Image facts that upstream's own test mocks for every image (Kyverno's values.yaml), given to
/// imagegate by an in-memory registry so that registry-dependent cases run without a network.
struct MockedImages {
  std::uint64_t compressedSize = 0;  ///< 0: no mock, the case needs no image facts.
  std::string_view user;
};

/// An upstream policy with given parameters, expressed by one of our policy files.
struct Mapping {
  std::string_view source;
  std::string_view policy;
  std::string_view params;  ///< JSON compared with expected.json "params"; empty: any params.
  std::string_view policyFile;
  MockedImages mocked{};
};

constexpr std::uint64_t kGi = 1024ULL * 1024 * 1024;

// Kyverno policies are hard-coded, so their "params" are prose: they map whatever the text says.
constexpr Mapping kMappings[] = {
    {"kyverno-policies", "require-run-as-nonroot", "", "kyverno-require-run-as-nonroot.yaml"},
    {"kyverno-policies", "require-run-as-non-root-user", "",
     "kyverno-require-run-as-non-root-user.yaml"},
    {"kyverno-policies", "disallow-privilege-escalation", "",
     "kyverno-disallow-privilege-escalation.yaml"},
    {"kyverno-policies", "disallow-privileged-containers", "",
     "kyverno-disallow-privileged-containers.yaml"},
    {"kyverno-policies", "disallow-host-namespaces", "", "kyverno-disallow-host-namespaces.yaml"},
    {"kyverno-policies", "require-ro-rootfs", "", "kyverno-require-ro-rootfs.yaml"},
    {"kyverno-policies", "disallow-latest-tag", "", "kyverno-disallow-latest-tag.yaml"},
    {"kyverno-policies", "restrict-image-registries", "", "kyverno-restrict-image-registries.yaml"},
    {"kyverno-policies", "require-image-checksum", "", "kyverno-require-image-checksum.yaml"},
    // values.yaml mocks every image at 3Gi; only the size matters to the rule.
    {"kyverno-policies",
     "block-large-images",
     "",
     "kyverno-block-large-images.yaml",
     {.compressedSize = 3 * kGi, .user = "65532"}},
    {"gatekeeper-library", "read-only-root-filesystem", R"({"exemptImages":["specialprogram"]})",
     "gatekeeper-read-only-root-filesystem-exempt-specialprogram.yaml"},
    {"gatekeeper-library", "read-only-root-filesystem", R"({"exemptImages":["*"]})",
     "gatekeeper-read-only-root-filesystem-full-wildcard.yaml"},
    {"gatekeeper-library", "read-only-root-filesystem", R"({"exemptImages":["safe-images.com/*"]})",
     "gatekeeper-read-only-root-filesystem-wildcard-prefix.yaml"},
    {"gatekeeper-library", "users",
     R"({"runAsUser":{"rule":"MustRunAsNonRoot"},"runAsGroup":{"rule":"RunAsAny"},
         "supplementalGroups":{"rule":"RunAsAny"},"fsGroup":{"rule":"RunAsAny"}})",
     "gatekeeper-users-must-run-as-non-root.yaml"},
    {"gatekeeper-library", "allow-privilege-escalation", R"({"exemptImages":["safeimages.com/*"]})",
     "gatekeeper-allow-privilege-escalation.yaml"},
    {"gatekeeper-library", "privileged-containers", R"({"exemptImages":["safeimages.com/*"]})",
     "gatekeeper-privileged-containers.yaml"},
    {"gatekeeper-library", "host-namespaces", "{}", "gatekeeper-host-namespaces.yaml"},
    {"gatekeeper-library", "allowedrepos", R"({"repos":["openpolicyagent/"]})",
     "gatekeeper-allowedrepos.yaml"},
    {"gatekeeper-library", "allowedreposv2",
     R"({"allowedImages":["openpolicyagent/*","myregistry.azurecr.io/*","mydockerhub/*",
         "ubuntu:20.14","123456789123.dkr.ecr.eu-west-1.amazonaws.com/postgres"]})",
     "gatekeeper-allowedreposv2.yaml"},
    {"gatekeeper-library", "disallowedrepos", R"({"repos":["k8s.gcr.io/"]})",
     "gatekeeper-disallowedrepos.yaml"},
    {"gatekeeper-library", "disallowedtags",
     R"({"tags":["latest"],
         "exemptImages":["openpolicyagent/opa-exp:latest","openpolicyagent/opa-exp2:latest"]})",
     "gatekeeper-disallowedtags.yaml"},
    {"gatekeeper-library", "imagedigests", "{}", "gatekeeper-imagedigests.yaml"},
    {"kubewarden-policies", "allow-privilege-escalation-psp-policy", "{}",
     "kubewarden-allow-privilege-escalation.yaml"},
    // The e2e test passes a key the policy does not know; upstream ignores it (defaults apply).
    {"kubewarden-policies", "allow-privilege-escalation-psp-policy",
     R"({"allowPrivilegeEscalation":false})", "kubewarden-allow-privilege-escalation.yaml"},
    {"kubewarden-policies", "pod-privileged-policy", "{}", "kubewarden-pod-privileged.yaml"},
    {"kubewarden-policies", "host-namespaces-psp-policy",
     R"({"allow_host_ipc":false,"allow_host_network":false,"allow_host_pid":false,
         "allow_host_ports":[{"min":8080,"max":8080}]})",
     "kubewarden-host-namespaces.yaml"},
    {"kubewarden-policies", "trusted-repos-policy", R"({"tags":{"reject":["latest"]}})",
     "kubewarden-trusted-repos-reject-latest.yaml"},
    {"kubewarden-policies", "trusted-repos-policy",
     R"({"registries":{"allow":["ghcr.io"]},"tags":{"reject":["latest"]}})",
     "kubewarden-trusted-repos-ghcr-without-latest.yaml"},
    {"kubewarden-policies", "trusted-repos-policy",
     R"({"images":{"reject":["ghcr.io/kubewarden/test-verify-image-signatures:signed"]}})",
     "kubewarden-trusted-repos-reject-signed-image.yaml"},
    {"kubewarden-policies", "trusted-repos-policy",
     R"({"images":{"allow":["ghcr.io/kubewarden/test-verify-image-signatures:signed"]}})",
     "kubewarden-trusted-repos-allow-signed-image.yaml"},
    {"kubewarden-policies", "trusted-repos-policy",
     R"({"images":{"allow":["docker.io/library/*"]}})",
     "kubewarden-trusted-repos-allow-docker-library.yaml"},
    {"kubewarden-policies", "trusted-repos-policy", R"({"images":{"allow":["ghcr.io/*"]}})",
     "kubewarden-trusted-repos-allow-ghcr-images.yaml"},
    {"kubewarden-policies", "trusted-repos-policy", R"({"registries":{"allow":["*.io"]}})",
     "kubewarden-trusted-repos-allow-io-registries.yaml"},
    // validate_only only turns mutation off; we never mutate, so both variants are one policy.
    {"kubewarden-policies", "user-group-psp-policy",
     R"({"run_as_user":{"rule":"MustRunAsNonRoot"},"run_as_group":{"rule":"RunAsAny"},
         "supplemental_groups":{"rule":"RunAsAny"}})",
     "kubewarden-user-group-must-run-as-non-root.yaml"},
    {"kubewarden-policies", "user-group-psp-policy",
     R"({"run_as_user":{"rule":"MustRunAsNonRoot"},"run_as_group":{"rule":"RunAsAny"},
         "supplemental_groups":{"rule":"RunAsAny"},"validate_only":true})",
     "kubewarden-user-group-must-run-as-non-root.yaml"},
};

/// An upstream policy (with given parameters) that our rules cannot express, and why.
struct Unmapped {
  std::string_view source;
  std::string_view policy;
  std::string_view params;  ///< As in Mapping; empty: any params not mapped above.
  std::string_view reason;
};

constexpr Unmapped kUnmapped[] = {
    {"kyverno-policies", "only-trustworthy-registries-set-root", "",
     "denies an image whose config USER is empty only when its registry is not ghcr.io, and the "
     "mock says every image is on ghcr.io whatever the pod names; imagegate's runAsNonRoot judges "
     "the USER itself (root is root on any registry) and registries by the reference in the pod"},
    {"kubewarden-policies", "pod-privileged-policy",
     R"({"skip_init_containers":true,"skip_ephemeral_containers":true})",
     "settings skip init and ephemeral containers; every imagegate rule checks all container "
     "kinds"},
    {"kubewarden-policies", "user-group-psp-policy", "",
     "MustRunAs/MayRunAs ID ranges for runAsUser, runAsGroup and supplementalGroups (or only "
     "RunAsAny): imagegate has no UID range, group or supplemental group rules"},
};

constexpr std::string_view kSkipsUpdate =
    "Gatekeeper's PSP templates skip UPDATE requests; imagegate evaluates UPDATE like CREATE, "
    "since an update can change images and workload pod templates";
constexpr std::string_view kUnsetUserIsUnknown =
    "upstream only rejects a runAsUser of 0 that is set; with neither runAsUser nor "
    "runAsNonRoot: true the effective user is the image USER, possibly root, so imagegate denies";
constexpr std::string_view kKubeletChecksTheImageUser =
    "with runAsNonRoot: true and no runAsUser the kubelet checks the image's USER before starting "
    "the container, and imagegate checks it at admission to deny what the kubelet would refuse; "
    "upstream's case has no image and this test no registry, so onFetchError: Deny denies";
constexpr std::string_view kUnsetEscalationIsAllowed =
    "upstream accepts an unset allowPrivilegeEscalation (its default setting allows it); "
    "imagegate counts unset as true, the Kubernetes default, and denies";

/// A case whose verdict differs from upstream because the semantics differ on purpose.
struct KnownMismatch {
  std::string_view caseId;
  std::string_view reason;
};

constexpr KnownMismatch kKnownMismatches[] = {
    {"kyverno/require-run-as-non-root-user/Pod/goodpod01", kUnsetUserIsUnknown},
    {"kyverno/require-run-as-non-root-user/Pod/goodpod04", kUnsetUserIsUnknown},
    {"kyverno/require-run-as-non-root-user/Pod/goodpod07", kUnsetUserIsUnknown},
    {"kyverno/require-run-as-non-root-user/Pod/goodpod08", kUnsetUserIsUnknown},
    {"kyverno/require-run-as-non-root-user/Pod/goodpod10", kUnsetUserIsUnknown},
    {"kyverno/require-run-as-non-root-user/Deployment/gooddeployment01", kUnsetUserIsUnknown},
    {"kyverno/require-run-as-non-root-user/Deployment/gooddeployment04", kUnsetUserIsUnknown},
    {"kyverno/require-run-as-non-root-user/Deployment/gooddeployment07", kUnsetUserIsUnknown},
    {"kyverno/require-run-as-non-root-user/Deployment/gooddeployment08", kUnsetUserIsUnknown},
    {"kyverno/require-run-as-non-root-user/Deployment/gooddeployment10", kUnsetUserIsUnknown},
    {"kyverno/require-run-as-non-root-user/CronJob/goodcronjob01", kUnsetUserIsUnknown},
    {"kyverno/require-run-as-non-root-user/CronJob/goodcronjob04", kUnsetUserIsUnknown},
    {"kyverno/require-run-as-non-root-user/CronJob/goodcronjob07", kUnsetUserIsUnknown},
    {"kyverno/require-run-as-non-root-user/CronJob/goodcronjob08", kUnsetUserIsUnknown},
    {"kyverno/require-run-as-non-root-user/CronJob/goodcronjob10", kUnsetUserIsUnknown},
    {"kyverno/require-run-as-nonroot/CronJob/goodcronjob01", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/CronJob/goodcronjob02", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/CronJob/goodcronjob03", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/CronJob/goodcronjob04", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/CronJob/goodcronjob05", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/CronJob/goodcronjob06", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/CronJob/goodcronjob07", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/CronJob/goodcronjob08", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/CronJob/goodcronjob09", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/CronJob/goodcronjob10", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Deployment/gooddeployment01", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Deployment/gooddeployment02", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Deployment/gooddeployment03", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Deployment/gooddeployment04", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Deployment/gooddeployment05", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Deployment/gooddeployment06", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Deployment/gooddeployment07", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Deployment/gooddeployment08", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Deployment/gooddeployment09", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Deployment/gooddeployment10", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Pod/goodpod01", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Pod/goodpod02", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Pod/goodpod03", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Pod/goodpod04", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Pod/goodpod05", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Pod/goodpod06", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Pod/goodpod07", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Pod/goodpod08", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Pod/goodpod09", kKubeletChecksTheImageUser},
    {"kyverno/require-run-as-nonroot/Pod/goodpod10", kKubeletChecksTheImageUser},
    {"gatekeeper/read-only-root-filesystem/require-read-only-root-filesystem/update", kSkipsUpdate},
    {"gatekeeper/users/users-and-groups-together/update", kSkipsUpdate},
    {"gatekeeper/allow-privilege-escalation/allow-privilege-escalation/update", kSkipsUpdate},
    {"gatekeeper/privileged-containers/privileged-containers-disallowed/update", kSkipsUpdate},
    {"gatekeeper/host-namespaces/host-namespace/update", kSkipsUpdate},
    {"kubewarden/allow-privilege-escalation-psp-policy/accept pod without security context",
     kUnsetEscalationIsAllowed},
    {"kubewarden/user-group-psp-policy/MustRunAsNonRoot should accept request when user defined "
     "is not root",
     "upstream accepts without a patch although container sleeping-sidecar sets neither "
     "runAsUser nor runAsNonRoot (it rejects only user IDs set to 0); imagegate checks each "
     "container's effective user, and that one's is the image USER, possibly root"},
};

std::optional<std::string_view> knownMismatch(std::string_view caseId) {
  for (const auto& known : kKnownMismatches) {
    if (known.caseId == caseId) return known.reason;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Cases: expected.json entries with what to do about each.

enum class Disposition {
  kRun,              ///< Mapped: run it and compare.
  kNeedsRegistry,    ///< Verdict depends on registry data (image size, config USER).
  kUpstreamMutates,  ///< Upstream accepts only after patching the object.
  kNotMapped,        ///< No imagegate rule expresses the upstream policy with its params.
  kFolderAbsent,     ///< Stand-in case: the peer-cases folder is not there.
  kBroken,           ///< Stand-in case: expected.json could not be read.
};

struct PeerCase {
  std::string id;  ///< "kyverno/<policy>/<Kind>/<name>", "gatekeeper/<policy>/<upstream case>".
  std::string testName;
  json entry;  ///< The expected.json entry.
  Disposition disposition = Disposition::kRun;
  std::string policyFile;  ///< Set when kRun.
  MockedImages mocked;     ///< Set when kRun and the verdict needs image facts.
  std::string note;        ///< Why the case does not run.

  std::string source() const { return entry.value("source", ""); }
  std::string policy() const { return entry.value("policy", ""); }
  bool expectAllowed() const { return entry.value("expected", "") == "allow"; }
};

// gtest lists each case as ".../<index>  # GetParam() = <this>", and CMake's
// gtest_discover_tests turns that into the ctest name ".../<this>": so print the readable name.
// (A custom gtest name would leave the whole "# GetParam()" comment in the ctest name.)
void PrintTo(const PeerCase& peerCase, std::ostream* out) { *out << peerCase.testName; }

fs::path peerCasesDir() {
  if (const char* fromEnv = std::getenv("IMAGEGATE_PEER_CASES"); fromEnv && *fromEnv) {
    return fromEnv;
  }
  return fs::path(IMAGEGATE_SOURCE_DIR "/../shared/peer-cases").lexically_normal();
}

fs::path policiesDir() { return fs::path(IMAGEGATE_SOURCE_DIR) / "tests/peer/policies"; }

bool paramsMatch(std::string_view wanted, const json& params) {
  return wanted.empty() || json::parse(wanted) == params;
}

std::string shortSource(const std::string& source) { return source.substr(0, source.find('-')); }

/// The upstream case name without tool prefixes and trailing remarks, for readable ids.
std::string cleanUpstreamCase(std::string text) {
  for (std::string_view prefix : {"e2e.bats: ", "src/lib.rs unit test: "}) {
    if (text.starts_with(prefix)) text.erase(0, prefix.size());
  }
  if (const auto paren = text.find(" ("); paren != std::string::npos) text.erase(paren);
  return text;
}

std::string caseId(const json& entry) {
  const std::string prefix =
      shortSource(entry.value("source", "")) + "/" + entry.value("policy", "") + "/";
  if (entry.contains("upstream_case")) {
    return prefix + cleanUpstreamCase(entry.value("upstream_case", ""));
  }
  return prefix + entry.value("resource_kind", "") + "/" + entry.value("resource_name", "");
}

/// gtest names allow only [A-Za-z0-9_].
std::string sanitize(std::string_view text) {
  std::string name;
  for (const char c : text) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (alnum) {
      name += c;
    } else if (!name.empty() && name.back() != '_') {
      name += '_';
    }
  }
  while (!name.empty() && name.back() == '_') name.pop_back();
  return name.empty() ? "case" : name;
}

/// The first row of a mapping table for the case's upstream policy and params, or nullptr.
template <typename Row, std::size_t N>
const Row* lookup(const Row (&table)[N], const PeerCase& peerCase) {
  const json params = peerCase.entry.value("params", json::object());
  for (const Row& row : table) {
    if (row.source == peerCase.source() && row.policy == peerCase.policy() &&
        paramsMatch(row.params, params)) {
      return &row;
    }
  }
  return nullptr;
}

void classify(PeerCase& peerCase) {
  const bool needsRegistry = peerCase.entry.value("requires_registry", false);
  const Mapping* mapping = lookup(kMappings, peerCase);
  const Unmapped* unmapped = lookup(kUnmapped, peerCase);
  if (peerCase.entry.value("upstream_mutates", false)) {
    peerCase.disposition = Disposition::kUpstreamMutates;
    peerCase.note = "upstream allows only after mutating the object; imagegate only validates";
  } else if (mapping != nullptr && (!needsRegistry || mapping->mocked.compressedSize > 0)) {
    peerCase.policyFile = mapping->policyFile;
    peerCase.mocked = mapping->mocked;
  } else if (unmapped != nullptr) {
    peerCase.disposition = Disposition::kNotMapped;
    peerCase.note = unmapped->reason;
  } else if (needsRegistry) {
    // Upstream fetched a real image (ghcr.io), which this machine cannot reach.
    peerCase.disposition = Disposition::kNeedsRegistry;
    peerCase.note = "verdict needs a real image from a registry out of reach";
  } else {
    peerCase.disposition = Disposition::kNotMapped;
    peerCase.note = "no mapping reviewed yet for this upstream policy and params";
  }
}

PeerCase standInCase(Disposition disposition, std::string testName, std::string note) {
  PeerCase peerCase;
  peerCase.id = testName;
  peerCase.testName = std::move(testName);
  peerCase.disposition = disposition;
  peerCase.note = std::move(note);
  return peerCase;
}

std::vector<PeerCase> readCases(const fs::path& expectedFile) {
  std::ifstream in(expectedFile);
  const json entries = json::parse(in);
  std::vector<PeerCase> cases;
  std::set<std::string> names;
  for (const json& entry : entries) {
    PeerCase peerCase;
    peerCase.entry = entry;
    peerCase.id = caseId(entry);
    peerCase.testName = sanitize(peerCase.id);
    // Ids are unique in today's data; a suffix keeps ctest names apart should a copy repeat one.
    for (int n = 2; !names.insert(peerCase.testName).second; ++n) {
      peerCase.testName = sanitize(peerCase.id) + "_" + std::to_string(n);
    }
    classify(peerCase);
    cases.push_back(std::move(peerCase));
  }
  return cases;
}

/// Built once, when gtest expands the parameterized suite (also when listing tests for ctest).
const std::vector<PeerCase>& allCases() {
  static const std::vector<PeerCase> cases = [] {
    const fs::path expectedFile = peerCasesDir() / "expected.json";
    if (!fs::exists(expectedFile)) {
      return std::vector{standInCase(
          Disposition::kFolderAbsent, "PeerCasesFolderAbsent",
          "peer cases not found: " + expectedFile.string() +
              " does not exist; set IMAGEGATE_PEER_CASES to the folder holding expected.json")};
    }
    try {
      return readCases(expectedFile);
    } catch (const std::exception& e) {
      return std::vector{standInCase(Disposition::kBroken, "ExpectedJsonUnreadable",
                                     expectedFile.string() + ": " + e.what())};
    }
  }();
  return cases;
}

std::vector<json> readDocuments(const fs::path& file) {
  if (!fs::exists(file)) throw std::runtime_error(file.string() + " does not exist");
  if (file.extension() == ".json") {
    std::ifstream in(file);
    return {json::parse(in)};
  }
  std::vector<json> documents;
  for (const auto& node : YAML::LoadAllFromFile(file.string())) {
    // Comment-only documents (a leading "###### Pods" banner) load as null.
    if (!node.IsNull()) documents.push_back(toJson(node));
  }
  return documents;
}

// ---------------------------------------------------------------------------------------------
// From a case to an AdmissionReview body.

/// What the case file says about the request, beyond the object itself.
struct LocatedObject {
  json object;
  json kind;                  ///< request.kind from an AdmissionRequest fixture; null otherwise.
  std::string namespaceName;  ///< request.namespace from an AdmissionRequest fixture.
};

/// A string member, or "" when absent, null or not a string: fixtures are not always complete.
std::string stringField(const json& object, const std::string& key) {
  if (!object.is_object()) return "";
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string nameOf(const json& object) {
  return stringField(object.value("metadata", json::object()), "name");
}

json selectByKindAndName(const std::vector<json>& documents, const PeerCase& peerCase) {
  const std::string kind = peerCase.entry.value("resource_kind", "");
  const std::string name = peerCase.entry.value("resource_name", "");
  std::vector<json> found;
  for (const json& document : documents) {
    if (document.is_object() && stringField(document, "kind") == kind && nameOf(document) == name) {
      found.push_back(document);
    }
  }
  if (found.size() != 1) {
    throw std::runtime_error(std::to_string(found.size()) + " documents are " + kind + "/" + name +
                             "; expected exactly one");
  }
  return found.front();
}

LocatedObject locateObject(const PeerCase& peerCase, const fs::path& root) {
  const std::vector<json> documents = readDocuments(root / peerCase.entry.value("file", ""));
  const std::string format = peerCase.entry.value("input_format", "");
  if (format == "AdmissionRequest") {
    const json& request = documents.at(0);
    return {request.at("object"), request.value("kind", json()), stringField(request, "namespace")};
  }
  if (format == "AdmissionReview") {
    return {documents.at(0).at("request").at("object"), json(), ""};
  }
  return {selectByKindAndName(documents, peerCase), json(), ""};
}

/// request.kind from the object's apiVersion ("apps/v1", "v1") and kind.
json groupVersionKind(const json& object) {
  const std::string apiVersion = stringField(object, "apiVersion");
  const auto slash = apiVersion.find('/');
  const std::string group = slash == std::string::npos ? "" : apiVersion.substr(0, slash);
  const std::string version =
      slash == std::string::npos ? apiVersion : apiVersion.substr(slash + 1);
  return {{"group", group}, {"version", version}, {"kind", stringField(object, "kind")}};
}

/// Objects without a namespace are created in "default", as kubectl would do.
std::string namespaceFor(const LocatedObject& located) {
  std::string name = stringField(located.object.value("metadata", json::object()), "namespace");
  if (name.empty()) name = located.namespaceName;
  return name.empty() ? "default" : name;
}

json admissionReview(const PeerCase& peerCase, const LocatedObject& located) {
  // kubewarden fixtures may omit apiVersion/kind in the object; their request.kind says it.
  const json kind = located.kind.is_object() ? located.kind : groupVersionKind(located.object);
  json request = {{"uid", "peer-" + peerCase.testName},
                  {"kind", kind},
                  {"name", nameOf(located.object)},
                  {"namespace", namespaceFor(located)},
                  {"operation", peerCase.entry.value("operation", "CREATE")},
                  {"userInfo", {{"username", "peer-cases-test"}}},
                  {"object", located.object}};
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request", std::move(request)}};
}

// ---------------------------------------------------------------------------------------------
// Running a case.

std::shared_ptr<const policy::PolicySet> loadPolicy(const std::string& file) {
  static std::map<std::string, std::shared_ptr<const policy::PolicySet>> cache;
  auto& entry = cache[file];
  if (!entry) {
    entry = std::make_shared<const policy::PolicySet>(policy::loadPolicies(policiesDir() / file));
  }
  return entry;
}

std::string describeError(const std::exception& error) {
  const auto* loadError = dynamic_cast<const policy::PolicyLoadError*>(&error);
  if (loadError == nullptr) return error.what();
  std::string text;
  for (const auto& problem : loadError->problems()) text += "\n  " + problem.str();
  return text;
}

struct CaseRun {
  bool ok = false;  ///< The review was built and answered.
  bool allowed = false;
  std::string error;
  std::string body;   ///< The AdmissionReview sent.
  std::string reply;  ///< What the service answered.
};

/// A denial for a request we built wrongly (code 400) is not a verdict about the object.
bool isBadRequest(const std::string& reply) {
  const json root = json::parse(reply, nullptr, false);
  if (!root.is_object()) return true;
  const json response = root.value("response", json::object());
  return response.value("status", json::object()).value("code", 0) == 400;
}

CaseRun runCase(const PeerCase& peerCase) {
  // The verdict and its reasons are in the reply; one info log line per review buries the rest.
  log::setLevel(log::Level::kWarn);
  CaseRun run;
  try {
    const LocatedObject located = locateObject(peerCase, peerCasesDir());
    run.body = admissionReview(peerCase, located).dump();
    service::ServiceOptions options;
    if (peerCase.mocked.compressedSize > 0) {
      auto registry = std::make_shared<testutil::FakeRegistry>();
      registry->answerEveryImage(std::string(peerCase.mocked.user), peerCase.mocked.compressedSize);
      options.facts.registry = registry;
    }
    const service::AdmissionService service(loadPolicy(peerCase.policyFile), std::move(options));
    const auto outcome = service.review(run.body, Deadline::after(10s));
    run.reply = outcome.reply.body;
    run.allowed = outcome.allowed;
    run.ok = outcome.answered && !isBadRequest(run.reply);
    if (!run.ok) run.error = "HTTP " + std::to_string(outcome.reply.status) + ": " + run.reply;
  } catch (const std::exception& e) {
    run.error = describeError(e);
  }
  return run;
}

std::string verdict(bool allowed) { return allowed ? "allow" : "deny"; }

std::string caseDetails(const PeerCase& peerCase, const CaseRun& run) {
  std::ostringstream text;
  text << "case " << peerCase.id << "\n  file: " << peerCase.entry.value("file", "")
       << "\n  object: " << peerCase.entry.value("resource_kind", "") << "/"
       << peerCase.entry.value("resource_name", "")
       << "\n  params: " << peerCase.entry.value("params", json()).dump()
       << "\n  policy: tests/peer/policies/" << peerCase.policyFile
       << "\n  expected: " << verdict(peerCase.expectAllowed()) << ", got " << verdict(run.allowed)
       << "\n  sent: " << run.body << "\n  reply: " << run.reply;
  return text.str();
}

// ---------------------------------------------------------------------------------------------
// Tests.

class PeerCaseTest : public testing::TestWithParam<PeerCase> {};

TEST_P(PeerCaseTest, MatchesUpstreamVerdict) {
  const PeerCase& peerCase = GetParam();
  if (peerCase.disposition == Disposition::kBroken) FAIL() << peerCase.note;
  if (peerCase.disposition != Disposition::kRun) GTEST_SKIP() << peerCase.note;

  const CaseRun run = runCase(peerCase);
  ASSERT_TRUE(run.ok) << "case " << peerCase.id << " could not be reviewed: " << run.error;
  if (const auto reason = knownMismatch(peerCase.id)) {
    EXPECT_NE(run.allowed, peerCase.expectAllowed())
        << "known mismatch now agrees with upstream; remove it from kKnownMismatches (reason was: "
        << *reason << ")\n"
        << caseDetails(peerCase, run);
  } else {
    EXPECT_EQ(run.allowed, peerCase.expectAllowed()) << caseDetails(peerCase, run);
  }
}

// Names of this file's tests start with "peer" (lower case) so that `ctest -R peer` runs them all.
INSTANTIATE_TEST_SUITE_P(peer, PeerCaseTest, testing::ValuesIn(allCases()));

/// Counts for one upstream policy in the summary.
struct Tally {
  int total = 0;
  int matched = 0;
  int knownMismatch = 0;
  int unexpected = 0;  ///< Mismatches not in kKnownMismatches, and cases that failed to run.
  int notMapped = 0;
  int needsRegistry = 0;
  int mutates = 0;

  int ran() const { return matched + knownMismatch + unexpected; }

  Tally& operator+=(const Tally& other) {
    total += other.total;
    matched += other.matched;
    knownMismatch += other.knownMismatch;
    unexpected += other.unexpected;
    notMapped += other.notMapped;
    needsRegistry += other.needsRegistry;
    mutates += other.mutates;
    return *this;
  }
};

void count(Tally& tally, const PeerCase& peerCase, std::set<std::string>& notes) {
  ++tally.total;
  switch (peerCase.disposition) {
    case Disposition::kNeedsRegistry:
      ++tally.needsRegistry;
      return;
    case Disposition::kUpstreamMutates:
      ++tally.mutates;
      return;
    case Disposition::kNotMapped:
      ++tally.notMapped;
      notes.insert(peerCase.source() + "/" + peerCase.policy() + ": " + peerCase.note);
      return;
    case Disposition::kFolderAbsent:
    case Disposition::kBroken:
      return;
    case Disposition::kRun:
      break;
  }
  const CaseRun run = runCase(peerCase);
  if (run.ok && run.allowed == peerCase.expectAllowed()) {
    ++tally.matched;
    if (knownMismatch(peerCase.id)) notes.insert("KNOWN MISMATCH NOW MATCHES " + peerCase.id);
  } else if (run.ok && knownMismatch(peerCase.id)) {
    ++tally.knownMismatch;
  } else {
    ++tally.unexpected;
    notes.insert("UNEXPECTED " + peerCase.id + ": " +
                 (run.ok ? "expected " + verdict(peerCase.expectAllowed()) : run.error));
  }
}

void printRow(std::string_view name, const Tally& tally) {
  std::cout << std::left << std::setw(58) << name << std::right << std::setw(6) << tally.total
            << std::setw(5) << tally.ran() << std::setw(8) << tally.matched << std::setw(7)
            << tally.knownMismatch << std::setw(7) << tally.unexpected << std::setw(8)
            << tally.notMapped << std::setw(6) << tally.needsRegistry << std::setw(8)
            << tally.mutates << "\n";
}

void printTable(const std::map<std::string, Tally>& tallies) {
  std::cout << "\nPeer cases: imagegate verdicts against upstream\n"
            << std::left << std::setw(58) << "source/policy" << std::right << std::setw(6)
            << "total" << std::setw(5) << "ran" << std::setw(8) << "matched" << std::setw(7)
            << "known" << std::setw(7) << "unexp" << std::setw(8) << "unmapd" << std::setw(6)
            << "regy" << std::setw(8) << "mutates"
            << "\n";
  Tally all;
  for (const auto& [name, tally] : tallies) {
    printRow(name, tally);
    all += tally;
  }
  printRow("TOTAL", all);
  std::cout << "(known = known mismatch, unexp = unexpected mismatch or error, unmapd = not "
               "mapped, regy = needs a real image from a registry out of reach)\n";
}

void printKnownMismatches() {
  // Grouped by reason: many cases share one, and the table is read by reason.
  std::map<std::string_view, std::vector<std::string_view>> byReason;
  for (const auto& known : kKnownMismatches) byReason[known.reason].push_back(known.caseId);
  std::cout << "\nKnown mismatches (" << std::size(kKnownMismatches)
            << " cases; semantics differ on purpose):\n";
  for (const auto& [reason, ids] : byReason) {
    std::cout << "* " << reason << "\n";
    for (const auto& id : ids) std::cout << "    " << id << "\n";
  }
}

// A stale entry would hide nothing, but would mislead readers of the summary.
void expectKnownMismatchesRun(const std::vector<PeerCase>& cases) {
  for (const auto& known : kKnownMismatches) {
    const bool runs = std::any_of(cases.begin(), cases.end(), [&](const PeerCase& peerCase) {
      return peerCase.id == known.caseId && peerCase.disposition == Disposition::kRun;
    });
    EXPECT_TRUE(runs) << "kKnownMismatches names a case that does not run: " << known.caseId;
  }
}

// Runs every case again in one process: ctest runs each case test in a process of its own, so
// only this test sees them all.
TEST(peerCases, PrintsVerdictTable) {
  const auto& cases = allCases();
  if (cases.size() == 1 && cases.front().disposition != Disposition::kRun) {
    GTEST_SKIP() << cases.front().note;
  }
  std::map<std::string, Tally> tallies;
  std::set<std::string> notes;
  for (const auto& peerCase : cases) {
    count(tallies[peerCase.source() + "/" + peerCase.policy()], peerCase, notes);
  }
  printTable(tallies);
  printKnownMismatches();
  std::cout << "\nNot mapped, and unexpected results:\n";
  for (const auto& note : notes) std::cout << "  " << note << "\n";
  std::cout << std::flush;
  expectKnownMismatchesRun(cases);
}

TEST(peerPolicies, EveryFileLoadsAndIsMapped) {
  std::set<std::string> mapped;
  for (const auto& mapping : kMappings) mapped.insert(std::string(mapping.policyFile));
  for (const auto& entry : fs::directory_iterator(policiesDir())) {
    const std::string file = entry.path().filename().string();
    EXPECT_TRUE(mapped.contains(file)) << file << " is not used by kMappings";
  }
  for (const auto& file : mapped) {
    try {
      EXPECT_FALSE(loadPolicy(file)->policies.empty()) << file;
    } catch (const std::exception& e) {
      ADD_FAILURE() << file << " does not load:" << describeError(e);
    }
  }
}

}  // namespace
}  // namespace imagegate
