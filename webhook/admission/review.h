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

  friend bool operator==(const Capabilities&, const Capabilities&) = default;
};

/// securityContext.seLinuxOptions; absent fields are "" as in the Kubernetes API.
struct SeLinuxOptions {
  std::string user;
  std::string role;
  std::string type;
  std::string level;

  friend bool operator==(const SeLinuxOptions&, const SeLinuxOptions&) = default;
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
  /// Set when `capabilities` is written at all: the Pod Security Standards tell an absent
  /// capabilities object from an empty one only through it, as the API does.
  bool hasCapabilities = false;
  /// seccompProfile.type, "" when the profile is written without a type; nullopt when absent.
  std::optional<std::string> seccompProfileType;
  /// appArmorProfile.type, "" when the profile is written without a type; nullopt when absent.
  std::optional<std::string> appArmorProfileType;
  std::optional<SeLinuxOptions> seLinuxOptions;
  std::optional<std::string> procMount;    ///< "Default", "Unmasked", ...
  std::optional<bool> windowsHostProcess;  ///< windowsOptions.hostProcess.

  friend bool operator==(const ContainerSecurityContext&,
                         const ContainerSecurityContext&) = default;
};

struct PodSecurityContext {
  std::optional<bool> runAsNonRoot;
  std::optional<std::int64_t> runAsUser;
  std::optional<std::int64_t> runAsGroup;
  std::optional<std::string> seccompProfileType;   ///< As in ContainerSecurityContext.
  std::optional<std::string> appArmorProfileType;  ///< As in ContainerSecurityContext.
  std::optional<SeLinuxOptions> seLinuxOptions;
  std::vector<std::string> sysctls;  ///< sysctls[*].name, in order.
  std::optional<bool> windowsHostProcess;

  friend bool operator==(const PodSecurityContext&, const PodSecurityContext&) = default;
};

struct Container {
  ContainerKind kind = ContainerKind::kContainer;
  std::string name;
  std::string image;  ///< As written in the spec (not normalized).
  ContainerSecurityContext securityContext;
  std::vector<std::int64_t> hostPorts;  ///< ports[*].hostPort that are set and not 0.
  /// Non-empty `host` of httpGet/tcpSocket in liveness/readiness/startup probes and in
  /// lifecycle postStart/preStop handlers, in that order.
  std::vector<std::string> probeHosts;
  std::string path;  ///< JSON path for messages, e.g. "spec.template.spec.initContainers[0]".

  friend bool operator==(const Container&, const Container&) = default;
};

/// One entry of spec.volumes: its name and which volume sources it sets.
struct Volume {
  std::string name;
  /// The keys other than `name` whose value is not null ("hostPath", "emptyDir", ...), as
  /// written; the API allows one, but a request may carry more.
  std::vector<std::string> sources;

  friend bool operator==(const Volume&, const Volume&) = default;
};

struct PodSpec {
  bool hostNetwork = false;
  bool hostPID = false;
  bool hostIPC = false;
  std::optional<bool> hostUsers;
  std::optional<std::string> osName;  ///< spec.os.name ("linux", "windows").
  PodSecurityContext securityContext;
  std::vector<Volume> volumes;
  std::vector<Container>
      containers;  ///< containers, then initContainers, then ephemeralContainers.
  /// The pod's annotations: the object's for a Pod, its pod template's for a workload, as Pod
  /// Security Admission reads them (AppArmor and seccomp annotations).
  std::map<std::string, std::string> annotations;
  std::string path;  ///< JSON path of the pod spec inside the object.

  friend bool operator==(const PodSpec&, const PodSpec&) = default;
};

/// The object under review. `podSpec` is set for Pods and workload kinds with a pod template.
struct ReviewedObject {
  std::string apiVersion;
  std::string kind;
  std::string name;
  std::string namespaceName;
  std::map<std::string, std::string> labels;
  std::optional<PodSpec> podSpec;

  friend bool operator==(const ReviewedObject&, const ReviewedObject&) = default;
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

  friend bool operator==(const AdmissionRequest&, const AdmissionRequest&) = default;
};

/// The envelope to echo in the response: apiVersion and kind as the caller sent them.
struct ReviewEnvelope {
  std::string apiVersion = "admission.k8s.io/v1";
  std::string kind = "AdmissionReview";

  friend bool operator==(const ReviewEnvelope&, const ReviewEnvelope&) = default;
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

  friend bool operator==(const MalformedRequest&, const MalformedRequest&) = default;
};

struct DecodedReview {
  ReviewEnvelope envelope;
  std::variant<AdmissionRequest, MalformedRequest> request;

  friend bool operator==(const DecodedReview&, const DecodedReview&) = default;
};

struct DecodeLimits {
  std::size_t maxDepth = 64;         ///< JSON nesting depth.
  std::size_t maxContainers = 1024;  ///< All container kinds together.
  std::size_t maxVolumes = 1024;     ///< spec.volumes entries.
  /// JSON values in the body, bounding the decoded tree's memory (~100 bytes a value): etcd keeps
  /// objects under 1.5 MiB, ~100k values, and a review carries object and oldObject.
  std::size_t maxValues = 262'144;
};

/// Decodes an AdmissionReview body. Throws UnreadableReview when no response can be addressed.
DecodedReview decodeReview(std::string_view body, const DecodeLimits& limits = {});

}  // namespace imagegate::admission
