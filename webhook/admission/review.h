#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/error.h"

// admission.k8s.io/v1 AdmissionReview decoding: from the raw request body to the parts of the
// object that policies look at. Knows nothing about HTTP or policies.
namespace imagegate::admission {

enum class ContainerKind { kContainer, kInitContainer, kEphemeralContainer };

/// "container", "init container", "ephemeral container": for messages.
std::string_view describe(ContainerKind kind);

/// securityContext.capabilities, names as written ("SYS_ADMIN", "CAP_NET_RAW", "all"): runtimes
/// compare them without case and with or without the CAP_ prefix, so rules must too.
struct Capabilities {
  std::vector<std::string> add;
  std::vector<std::string> drop;
};

/// The fields of a container's securityContext that rules read; unset fields stay nullopt so
/// rules can apply Kubernetes defaults and pod-level fallbacks themselves.
struct ContainerSecurityContext {
  std::optional<bool> runAsNonRoot;
  std::optional<std::int64_t> runAsUser;
  std::optional<std::int64_t> runAsGroup;
  std::optional<bool> privileged;
  std::optional<bool> allowPrivilegeEscalation;
  std::optional<bool> readOnlyRootFilesystem;
  Capabilities capabilities;
};

struct PodSecurityContext {
  std::optional<bool> runAsNonRoot;
  std::optional<std::int64_t> runAsUser;
  std::optional<std::int64_t> runAsGroup;
};

struct Container {
  ContainerKind kind = ContainerKind::kContainer;
  std::string name;
  std::string image;  ///< As written in the spec (not normalized).
  ContainerSecurityContext securityContext;
  std::string path;  ///< JSON path for messages, e.g. "spec.template.spec.initContainers[0]".
};

struct PodSpec {
  bool hostNetwork = false;
  bool hostPID = false;
  bool hostIPC = false;
  PodSecurityContext securityContext;
  std::vector<Container>
      containers;    ///< containers, then initContainers, then ephemeralContainers.
  std::string path;  ///< JSON path of the pod spec inside the object.
};

/// The object under review. `podSpec` is set for Pods and workload kinds with a pod template.
struct ReviewedObject {
  std::string apiVersion;
  std::string kind;
  std::string name;
  std::string namespaceName;
  std::map<std::string, std::string> labels;
  std::optional<PodSpec> podSpec;
};

enum class Operation { kCreate, kUpdate, kDelete, kConnect };

struct AdmissionRequest {
  std::string uid;
  std::string kindGroup;    ///< request.kind.group ("" for core, "apps", "batch").
  std::string kindVersion;  ///< request.kind.version.
  std::string kind;         ///< request.kind.kind ("Pod", "Deployment", ...).
  std::string
      subResource;  ///< request.subResource ("" for the main resource, "ephemeralcontainers").
  std::string namespaceName;
  std::string name;
  Operation operation = Operation::kCreate;
  bool dryRun = false;
  std::string userName;  ///< request.userInfo.username, for logs.
  /// Set for CREATE/UPDATE; absent for DELETE/CONNECT where the object is not evaluated.
  std::optional<ReviewedObject> object;
};

/// The envelope to echo in the response: apiVersion and kind as the caller sent them.
struct ReviewEnvelope {
  std::string apiVersion = "admission.k8s.io/v1";
  std::string kind = "AdmissionReview";
};

/// The body is not an AdmissionReview we can answer at all (not JSON, no request.uid, too deep):
/// the HTTP layer replies 400 with this message.
class UnreadableReview : public Error {
 public:
  using Error::Error;
};

/// The review has a uid but its request or object is malformed (wrong types, missing object on
/// CREATE, ...). It can still be answered: with a denial naming the problem.
struct MalformedRequest {
  std::string uid;
  std::string problem;  ///< e.g. "request.object.spec.containers[1].image must be a string".
};

struct DecodedReview {
  ReviewEnvelope envelope;
  std::variant<AdmissionRequest, MalformedRequest> request;
};

struct DecodeLimits {
  std::size_t maxDepth = 64;         ///< JSON nesting depth.
  std::size_t maxContainers = 1024;  ///< All container kinds together.
  /// JSON values in the body, bounding the decoded tree's memory (~100 bytes a value): etcd keeps
  /// objects under 1.5 MiB, ~100k values, and a review carries object and oldObject.
  std::size_t maxValues = 262'144;
};

/// Decodes an AdmissionReview body. Throws UnreadableReview when no response can be addressed.
DecodedReview decodeReview(std::string_view body, const DecodeLimits& limits = {});

}  // namespace imagegate::admission
