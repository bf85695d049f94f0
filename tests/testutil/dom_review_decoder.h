#pragma once

// The DOM decoder of AdmissionReview bodies that production used before the SAX decoder
// (webhook/admission/review.cc), kept only as a test oracle: tests decode the same bodies both
// ways and compare the models, so a field the SAX decoder forgets to keep shows up as a
// difference. Header-only, in its own namespace; production code has one decoder.

#include <nlohmann/json.hpp>

#include <limits>

#include "admission/review.h"
#include "common/json_depth.h"
#include "common/json_parse.h"

namespace imagegate::testutil::dom_review {

using namespace imagegate::admission;

using nlohmann::json;

/// A field of an answerable review is missing or has the wrong type; becomes MalformedRequest.
struct FieldProblem {
  std::string message;
};

[[noreturn]] inline void fail(std::string message) { throw FieldProblem{std::move(message)}; }

inline std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

/// Typed accessors over a JSON object that record the JSON path for messages. `null` counts as
/// absent, as in the Kubernetes API.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string path) : object_(&object), path_(std::move(path)) {}

  const std::string& path() const { return path_; }

  const json* find(std::string_view key) const {
    const auto it = object_->find(key);
    return it == object_->end() || it->is_null() ? nullptr : &*it;
  }

  std::optional<std::string> optString(std::string_view key) const {
    const json* value = find(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_string()) fail(join(path_, key) + " must be a string");
    return value->get<std::string>();
  }

  std::string requireString(std::string_view key) const {
    auto value = optString(key);
    if (!value) fail(join(path_, key) + " is required");
    return *value;
  }

  std::optional<bool> optBool(std::string_view key) const {
    const json* value = find(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_boolean()) fail(join(path_, key) + " must be a boolean");
    return value->get<bool>();
  }

  std::optional<std::int64_t> optInt64(std::string_view key) const {
    const json* value = find(key);
    if (value == nullptr) return std::nullopt;
    if (value->is_number_integer()) {
      if (value->is_number_unsigned() &&
          value->get<std::uint64_t>() >
              static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        fail(join(path_, key) + " is out of range");
      }
      return value->get<std::int64_t>();
    }
    fail(join(path_, key) + " must be an integer");
  }

  std::optional<ObjectReader> optObject(std::string_view key) const {
    const json* value = find(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_object()) fail(join(path_, key) + " must be an object");
    return ObjectReader(*value, join(path_, key));
  }

  ObjectReader requireObject(std::string_view key) const {
    auto value = optObject(key);
    if (!value) fail(join(path_, key) + " is required");
    return *value;
  }

  /// Elements of an optional array, each required to be an object.
  std::vector<ObjectReader> optObjectArray(std::string_view key) const {
    std::vector<ObjectReader> items;
    const json* value = find(key);
    if (value == nullptr) return items;
    if (!value->is_array()) fail(join(path_, key) + " must be an array");
    items.reserve(value->size());
    for (std::size_t i = 0; i < value->size(); ++i) {
      const std::string itemPath = join(path_, key) + "[" + std::to_string(i) + "]";
      if (!(*value)[i].is_object()) fail(itemPath + " must be an object");
      items.emplace_back((*value)[i], itemPath);
    }
    return items;
  }

  /// Elements of an optional array, each required to be a string.
  std::vector<std::string> optStringArray(std::string_view key) const {
    std::vector<std::string> items;
    const json* value = find(key);
    if (value == nullptr) return items;
    if (!value->is_array()) fail(join(path_, key) + " must be an array");
    items.reserve(value->size());
    for (std::size_t i = 0; i < value->size(); ++i) {
      const json& item = (*value)[i];
      if (!item.is_string()) {
        fail(join(path_, key) + "[" + std::to_string(i) + "] must be a string");
      }
      items.push_back(item.get<std::string>());
    }
    return items;
  }

  /// The keys whose values are not null, in key order.
  std::vector<std::string> keys() const {
    std::vector<std::string> names;
    for (const auto& [name, value] : object_->items()) {
      if (!value.is_null()) names.push_back(name);
    }
    return names;
  }

  std::map<std::string, std::string> optStringMap(std::string_view key) const {
    std::map<std::string, std::string> result;
    const json* value = find(key);
    if (value == nullptr) return result;
    if (!value->is_object()) fail(join(path_, key) + " must be an object");
    for (const auto& [k, v] : value->items()) {
      if (!v.is_string()) fail(join(path_, key) + "." + k + " must be a string");
      result.emplace(k, v.get<std::string>());
    }
    return result;
  }

 private:
  const json* object_;
  std::string path_;
};

inline Operation parseOperation(const std::string& text) {
  if (text == "CREATE") return Operation::kCreate;
  if (text == "UPDATE") return Operation::kUpdate;
  if (text == "DELETE") return Operation::kDelete;
  if (text == "CONNECT") return Operation::kConnect;
  fail("request.operation must be one of CREATE, UPDATE, DELETE, CONNECT (got \"" + text + "\")");
}

/// Paths in PodSpec and Container are relative to the object, as users write them in manifests
/// (spec.template.spec.hostPID); problem messages keep the full request path.
inline std::string objectRelative(const std::string& path) {
  constexpr std::string_view kObjectPrefix = "request.object.";
  return path.rfind(kObjectPrefix, 0) == 0 ? path.substr(kObjectPrefix.size()) : path;
}

/// `{type: ...}` profiles (seccompProfile, appArmorProfile): the type, "" when it is missing.
inline std::optional<std::string> decodeProfileType(const ObjectReader& sc, std::string_view key) {
  auto profile = sc.optObject(key);
  if (!profile) return std::nullopt;
  return profile->optString("type").value_or("");
}

inline std::optional<SeLinuxOptions> decodeSeLinuxOptions(const ObjectReader& sc) {
  auto options = sc.optObject("seLinuxOptions");
  if (!options) return std::nullopt;
  return SeLinuxOptions{
      options->optString("user").value_or(""), options->optString("role").value_or(""),
      options->optString("type").value_or(""), options->optString("level").value_or("")};
}

inline std::optional<bool> decodeHostProcess(const ObjectReader& sc) {
  auto windows = sc.optObject("windowsOptions");
  return windows ? windows->optBool("hostProcess") : std::nullopt;
}

inline ContainerSecurityContext decodeContainerSecurityContext(const ObjectReader& container) {
  ContainerSecurityContext context;
  if (auto sc = container.optObject("securityContext")) {
    context.runAsNonRoot = sc->optBool("runAsNonRoot");
    context.runAsUser = sc->optInt64("runAsUser");
    context.runAsGroup = sc->optInt64("runAsGroup");
    context.privileged = sc->optBool("privileged");
    context.allowPrivilegeEscalation = sc->optBool("allowPrivilegeEscalation");
    context.readOnlyRootFilesystem = sc->optBool("readOnlyRootFilesystem");
    if (auto capabilities = sc->optObject("capabilities")) {
      context.hasCapabilities = true;
      context.capabilities.add = capabilities->optStringArray("add");
      context.capabilities.drop = capabilities->optStringArray("drop");
    }
    context.seccompProfileType = decodeProfileType(*sc, "seccompProfile");
    context.appArmorProfileType = decodeProfileType(*sc, "appArmorProfile");
    context.seLinuxOptions = decodeSeLinuxOptions(*sc);
    context.procMount = sc->optString("procMount");
    context.windowsHostProcess = decodeHostProcess(*sc);
  }
  return context;
}

inline PodSecurityContext decodePodSecurityContext(const ObjectReader& spec) {
  PodSecurityContext context;
  if (auto sc = spec.optObject("securityContext")) {
    context.runAsNonRoot = sc->optBool("runAsNonRoot");
    context.runAsUser = sc->optInt64("runAsUser");
    context.runAsGroup = sc->optInt64("runAsGroup");
    context.seccompProfileType = decodeProfileType(*sc, "seccompProfile");
    context.appArmorProfileType = decodeProfileType(*sc, "appArmorProfile");
    context.seLinuxOptions = decodeSeLinuxOptions(*sc);
    for (const ObjectReader& sysctl : sc->optObjectArray("sysctls")) {
      context.sysctls.push_back(sysctl.optString("name").value_or(""));
    }
    context.windowsHostProcess = decodeHostProcess(*sc);
  }
  return context;
}

inline std::vector<std::int64_t> decodeHostPorts(const ObjectReader& container) {
  std::vector<std::int64_t> hostPorts;
  for (const ObjectReader& port : container.optObjectArray("ports")) {
    const auto hostPort = port.optInt64("hostPort");
    if (hostPort && *hostPort != 0) hostPorts.push_back(*hostPort);
  }
  return hostPorts;
}

/// The `host` of a handler's httpGet and tcpSocket, when set and not empty.
inline void decodeHandlerHosts(const ObjectReader& handler, std::vector<std::string>& hosts) {
  for (std::string_view action : {"httpGet", "tcpSocket"}) {
    if (auto target = handler.optObject(action)) {
      auto host = target->optString("host");
      if (host && !host->empty()) hosts.push_back(*host);
    }
  }
}

inline std::vector<std::string> decodeProbeHosts(const ObjectReader& container) {
  std::vector<std::string> hosts;
  for (std::string_view probe : {"livenessProbe", "readinessProbe", "startupProbe"}) {
    if (auto handler = container.optObject(probe)) decodeHandlerHosts(*handler, hosts);
  }
  if (auto lifecycle = container.optObject("lifecycle")) {
    for (std::string_view hook : {"postStart", "preStop"}) {
      if (auto handler = lifecycle->optObject(hook)) decodeHandlerHosts(*handler, hosts);
    }
  }
  return hosts;
}

inline std::vector<Volume> decodeVolumes(const ObjectReader& spec, const DecodeLimits& limits) {
  std::vector<Volume> volumes;
  for (const ObjectReader& item : spec.optObjectArray("volumes")) {
    if (volumes.size() >= limits.maxVolumes) {
      fail(spec.path() + " has more than " + std::to_string(limits.maxVolumes) + " volumes");
    }
    Volume volume;
    volume.name = item.optString("name").value_or("");
    for (const std::string& key : item.keys()) {
      if (key == "name") continue;
      // Every volume source is an object; checking the type keeps `hostPath: "/"` from
      // passing as a source nobody can read.
      (void)item.requireObject(key);
      volume.sources.push_back(key);
    }
    volumes.push_back(std::move(volume));
  }
  return volumes;
}

inline void decodeContainers(const ObjectReader& spec, std::string_view key, ContainerKind kind,
                             const DecodeLimits& limits, std::vector<Container>& out) {
  for (const ObjectReader& item : spec.optObjectArray(key)) {
    if (out.size() >= limits.maxContainers) {
      fail(spec.path() + " has more than " + std::to_string(limits.maxContainers) + " containers");
    }
    Container container;
    container.kind = kind;
    container.path = objectRelative(item.path());
    container.name = item.optString("name").value_or("");
    container.image = item.requireString("image");
    container.securityContext = decodeContainerSecurityContext(item);
    container.hostPorts = decodeHostPorts(item);
    container.probeHosts = decodeProbeHosts(item);
    out.push_back(std::move(container));
  }
}

inline PodSpec decodePodSpec(const ObjectReader& spec, const DecodeLimits& limits) {
  PodSpec pod;
  pod.path = objectRelative(spec.path());
  pod.hostNetwork = spec.optBool("hostNetwork").value_or(false);
  pod.hostPID = spec.optBool("hostPID").value_or(false);
  pod.hostIPC = spec.optBool("hostIPC").value_or(false);
  pod.hostUsers = spec.optBool("hostUsers");
  if (auto os = spec.optObject("os")) pod.osName = os->optString("name");
  pod.securityContext = decodePodSecurityContext(spec);
  pod.volumes = decodeVolumes(spec, limits);
  decodeContainers(spec, "containers", ContainerKind::kContainer, limits, pod.containers);
  decodeContainers(spec, "initContainers", ContainerKind::kInitContainer, limits, pod.containers);
  decodeContainers(spec, "ephemeralContainers", ContainerKind::kEphemeralContainer, limits,
                   pod.containers);
  return pod;
}

/// Where the pod spec lives for each kind we evaluate; empty for kinds we let through untouched.
inline std::vector<std::string_view> podSpecPath(std::string_view group, std::string_view kind) {
  if (group.empty() && kind == "Pod") return {"spec"};
  if (group.empty() && kind == "ReplicationController") return {"spec", "template", "spec"};
  if (group == "apps" && (kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet" ||
                          kind == "ReplicaSet")) {
    return {"spec", "template", "spec"};
  }
  if (group == "batch" && kind == "Job") return {"spec", "template", "spec"};
  if (group == "batch" && kind == "CronJob")
    return {"spec", "jobTemplate", "spec", "template", "spec"};
  return {};
}

inline ReviewedObject decodeObject(const ObjectReader& object, const AdmissionRequest& request,
                                   const DecodeLimits& limits) {
  ReviewedObject decoded;
  decoded.apiVersion = object.optString("apiVersion").value_or("");
  decoded.kind = object.optString("kind").value_or(request.kind);
  if (auto metadata = object.optObject("metadata")) {
    decoded.name = metadata->optString("name").value_or("");
    if (decoded.name.empty()) decoded.name = metadata->optString("generateName").value_or("");
    decoded.namespaceName = metadata->optString("namespace").value_or("");
    decoded.labels = metadata->optStringMap("labels");
  }
  // Status and other subresources carry the whole object but change no pod spec.
  const bool evaluatedSubresource =
      request.subResource.empty() || request.subResource == "ephemeralcontainers";
  const auto path = podSpecPath(request.kindGroup, request.kind);
  if (path.empty() || !evaluatedSubresource) {
    return decoded;
  }
  // The pod's metadata sits beside its spec: the object's own for a Pod, the template's for a
  // workload, which is what the pods it creates will carry.
  ObjectReader parent = object;
  for (std::size_t i = 0; i + 1 < path.size(); ++i) {
    parent = parent.requireObject(path[i]);
  }
  decoded.podSpec = decodePodSpec(parent.requireObject(path.back()), limits);
  if (auto metadata = parent.optObject("metadata")) {
    decoded.podSpec->annotations = metadata->optStringMap("annotations");
  }
  return decoded;
}

inline AdmissionRequest decodeRequest(const ObjectReader& reader, std::string uid,
                                      const DecodeLimits& limits) {
  AdmissionRequest request;
  request.uid = std::move(uid);
  const ObjectReader kind = reader.requireObject("kind");
  request.kindGroup = kind.optString("group").value_or("");
  request.kindVersion = kind.optString("version").value_or("");
  request.kind = kind.requireString("kind");
  request.subResource = reader.optString("subResource").value_or("");
  request.namespaceName = reader.optString("namespace").value_or("");
  request.name = reader.optString("name").value_or("");
  request.operation = parseOperation(reader.requireString("operation"));
  request.dryRun = reader.optBool("dryRun").value_or(false);
  if (auto userInfo = reader.optObject("userInfo")) {
    request.userName = userInfo->optString("username").value_or("");
  }
  if (request.operation == Operation::kCreate || request.operation == Operation::kUpdate) {
    request.object = decodeObject(reader.requireObject("object"), request, limits);
    if (request.namespaceName.empty()) request.namespaceName = request.object->namespaceName;
    if (request.name.empty()) request.name = request.object->name;
  }
  return request;
}

inline json parseBody(std::string_view body, const DecodeLimits& limits) {
  switch (checkJsonShape(body, limits.maxDepth, limits.maxValues)) {
    case JsonShape::kTooDeep:
      throw UnreadableReview("request body is nested deeper than " +
                             std::to_string(limits.maxDepth) + " levels");
    case JsonShape::kTooManyValues:
      throw UnreadableReview("request body holds more than " + std::to_string(limits.maxValues) +
                             " JSON values, more than any object the API server stores");
    case JsonShape::kWithinLimits:
      break;
  }
  JsonProblem problem;
  auto root = tryParseJson(body, problem);
  if (!root) throw UnreadableReview("request body is not valid JSON: " + problem.reason);
  return std::move(*root);
}

inline ReviewEnvelope decodeEnvelope(const json& root) {
  if (!root.is_object()) {
    throw UnreadableReview(
        "request body must be a JSON object (an admission.k8s.io/v1 AdmissionReview)");
  }
  const auto text = [&](const char* key) {
    const auto it = root.find(key);
    return it != root.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  ReviewEnvelope envelope{text("apiVersion"), text("kind")};
  if (envelope.kind != "AdmissionReview" || (envelope.apiVersion != "admission.k8s.io/v1" &&
                                             envelope.apiVersion != "admission.k8s.io/v1beta1")) {
    throw UnreadableReview(
        "expected kind AdmissionReview with apiVersion admission.k8s.io/v1, got kind \"" +
        envelope.kind + "\" apiVersion \"" + envelope.apiVersion + "\"");
  }
  return envelope;
}

inline std::string decodeUid(const json& root) {
  const auto request = root.find("request");
  if (request == root.end() || !request->is_object()) {
    throw UnreadableReview("AdmissionReview has no request object");
  }
  const auto uid = request->find("uid");
  if (uid == request->end() || !uid->is_string() || uid->get_ref<const std::string&>().empty()) {
    throw UnreadableReview("AdmissionReview request.uid is missing or not a non-empty string");
  }
  return uid->get<std::string>();
}

/// Decodes an AdmissionReview body with nlohmann's DOM, as production did before the SAX
/// decoder. The one intended difference: the kubectl.kubernetes.io/last-applied-configuration
/// annotation, which no rule reads and the SAX decoder skips, is dropped here too.
inline DecodedReview decodeReview(std::string_view body, const DecodeLimits& limits = {}) {
  const json root = parseBody(body, limits);
  DecodedReview decoded{decodeEnvelope(root), MalformedRequest{}};
  std::string uid = decodeUid(root);
  try {
    decoded.request = decodeRequest(ObjectReader(root.at("request"), "request"), uid, limits);
  } catch (const FieldProblem& problem) {
    decoded.request = MalformedRequest{std::move(uid), problem.message};
  }
  if (auto* request = std::get_if<AdmissionRequest>(&decoded.request)) {
    if (request->object && request->object->podSpec) {
      request->object->podSpec->annotations.erase(
          "kubectl.kubernetes.io/last-applied-configuration");
    }
  }
  return decoded;
}

}  // namespace imagegate::testutil::dom_review
