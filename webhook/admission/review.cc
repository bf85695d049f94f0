#include "admission/review.h"

#include "admission/skippable_input.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <limits>
#include <span>

// The review is decoded with nlohmann's SAX interface straight into the model: no DOM is built,
// and everything no rule reads (managedFields, env, resources, oldObject, status, ...) is skipped
// as it streams by. Each kind of JSON object the model reads from (the request, a pod spec, a
// container, a securityContext, ...) has its own small handler with a table of the keys it keeps.
//
// The answer must not depend on the order of keys in the body, and must be the one the previous
// DOM decoder gave (tests/testutil/dom_review_decoder.h is kept as the oracle), so:
// - where the pod spec sits depends on request.kind, which may come after the object: the object
//   is decoded for every place a pod spec can sit (spec, spec.template.spec,
//   spec.jobTemplate.spec.template.spec) and the one the kind names is picked at the end;
// - a problem is not reported when found but collected with a rank, the position of its check in
//   the DOM decoder's order (request fields, then the object's metadata, then its pod spec, ...),
//   and with the part of the request it belongs to; at the end the lowest-ranked problem among
//   the parts that apply (the object only for CREATE and UPDATE, the chosen pod spec) is the
//   answer, as the DOM decoder's first failed check was.
namespace imagegate::admission {
namespace {

constexpr std::string_view kLastAppliedAnnotation =
    "kubectl.kubernetes.io/last-applied-configuration";

// ---------------------------------------------------------------------------------------------
// Values as the SAX parser reports them.

enum class JsonType : std::uint8_t {
  kNull,
  kBoolean,
  kInteger,  ///< Negative integers (nlohmann reports non-negative ones as unsigned).
  kUnsigned,
  kFloat,
  kString,
  kObject,
  kArray,
};

struct JsonValue {
  JsonType type = JsonType::kNull;
  bool boolean = false;
  std::int64_t integer = 0;
  std::uint64_t unsignedInteger = 0;
  const std::string* text = nullptr;
};

// ---------------------------------------------------------------------------------------------
// The kinds of JSON object (and array) the decoder reads, with the keys each one keeps. A key's
// index in its table is also its position in the DOM decoder's order of checks.

enum class Node : std::uint8_t {
  kEnvelope,
  kRequest,
  kRequestKind,
  kUserInfo,
  kObject,
  kObjectMetadata,
  kStringMap,  ///< labels, annotations.
  kPodSpec,
  kTemplate,     ///< spec.template of a workload.
  kJobTemplate,  ///< spec.jobTemplate of a CronJob.
  kJobSpec,      ///< spec.jobTemplate.spec of a CronJob.
  kTemplateMetadata,
  kOs,
  kPodSecurityContext,
  kSysctlList,
  kSysctl,
  kVolumeList,
  kVolume,
  kContainerList,
  kContainer,
  kContainerSecurityContext,
  kCapabilities,
  kCapabilityList,
  kProfile,
  kSeLinuxOptions,
  kWindowsOptions,
  kPortList,
  kPort,
  kHandler,  ///< A probe or a lifecycle hook.
  kHandlerTarget,
  kLifecycle,
};

using Keys = std::span<const std::string_view>;

namespace keys {
constexpr std::string_view kEnvelope[] = {"apiVersion", "kind", "request"};
constexpr std::string_view kRequest[] = {"uid",       "kind",   "subResource", "namespace", "name",
                                         "operation", "dryRun", "userInfo",    "object"};
constexpr std::string_view kRequestKind[] = {"group", "version", "kind"};
constexpr std::string_view kUserInfo[] = {"username"};
constexpr std::string_view kObject[] = {"apiVersion", "kind", "metadata", "spec"};
constexpr std::string_view kObjectMetadata[] = {"name", "generateName", "namespace", "labels",
                                                "annotations"};
/// The last two are read only in the object's own spec, where a workload's template sits.
constexpr std::string_view kPodSpec[] = {
    "hostNetwork",     "hostPID",    "hostIPC",    "hostUsers",      "os",
    "securityContext", "volumes",    "containers", "initContainers", "ephemeralContainers",
    "template",        "jobTemplate"};
constexpr std::string_view kTemplate[] = {"spec",
                                          "metadata"};  // The DOM decoder read the spec first.
constexpr std::string_view kJobTemplate[] = {"spec"};
constexpr std::string_view kJobSpec[] = {"template"};
constexpr std::string_view kTemplateMetadata[] = {"annotations"};
constexpr std::string_view kOs[] = {"name"};
constexpr std::string_view kPodSecurityContext[] = {
    "runAsNonRoot",    "runAsUser",      "runAsGroup", "seccompProfile",
    "appArmorProfile", "seLinuxOptions", "sysctls",    "windowsOptions"};
constexpr std::string_view kSysctl[] = {"name"};
constexpr std::string_view kVolume[] = {"name"};
constexpr std::string_view kContainer[] = {"name",         "image",         "securityContext",
                                           "ports",        "livenessProbe", "readinessProbe",
                                           "startupProbe", "lifecycle"};
constexpr std::string_view kContainerSecurityContext[] = {"runAsNonRoot",
                                                          "runAsUser",
                                                          "runAsGroup",
                                                          "privileged",
                                                          "allowPrivilegeEscalation",
                                                          "readOnlyRootFilesystem",
                                                          "capabilities",
                                                          "seccompProfile",
                                                          "appArmorProfile",
                                                          "seLinuxOptions",
                                                          "procMount",
                                                          "windowsOptions"};
constexpr std::string_view kCapabilities[] = {"add", "drop"};
constexpr std::string_view kProfile[] = {"type"};
constexpr std::string_view kSeLinuxOptions[] = {"user", "role", "type", "level"};
constexpr std::string_view kWindowsOptions[] = {"hostProcess"};
constexpr std::string_view kPort[] = {"hostPort"};
constexpr std::string_view kHandler[] = {"httpGet", "tcpSocket"};
constexpr std::string_view kHandlerTarget[] = {"host"};
constexpr std::string_view kLifecycle[] = {"postStart", "preStop"};
}  // namespace keys

Keys keysOf(Node node) {
  switch (node) {
    case Node::kEnvelope:
      return keys::kEnvelope;
    case Node::kRequest:
      return keys::kRequest;
    case Node::kRequestKind:
      return keys::kRequestKind;
    case Node::kUserInfo:
      return keys::kUserInfo;
    case Node::kObject:
      return keys::kObject;
    case Node::kObjectMetadata:
      return keys::kObjectMetadata;
    case Node::kPodSpec:
      return keys::kPodSpec;
    case Node::kTemplate:
      return keys::kTemplate;
    case Node::kJobTemplate:
      return keys::kJobTemplate;
    case Node::kJobSpec:
      return keys::kJobSpec;
    case Node::kTemplateMetadata:
      return keys::kTemplateMetadata;
    case Node::kOs:
      return keys::kOs;
    case Node::kPodSecurityContext:
      return keys::kPodSecurityContext;
    case Node::kSysctl:
      return keys::kSysctl;
    case Node::kVolume:
      return keys::kVolume;
    case Node::kContainer:
      return keys::kContainer;
    case Node::kContainerSecurityContext:
      return keys::kContainerSecurityContext;
    case Node::kCapabilities:
      return keys::kCapabilities;
    case Node::kProfile:
      return keys::kProfile;
    case Node::kSeLinuxOptions:
      return keys::kSeLinuxOptions;
    case Node::kWindowsOptions:
      return keys::kWindowsOptions;
    case Node::kPort:
      return keys::kPort;
    case Node::kHandler:
      return keys::kHandler;
    case Node::kHandlerTarget:
      return keys::kHandlerTarget;
    case Node::kLifecycle:
      return keys::kLifecycle;
    default:
      return {};
  }
}

constexpr std::uint32_t kUnknownKey = std::numeric_limits<std::uint32_t>::max();

std::uint32_t keyIndex(Keys table, std::string_view key) {
  std::uint32_t index = 0;
  for (std::string_view candidate : table) {
    if (candidate == key) return index;
    ++index;
  }
  return kUnknownKey;
}

std::string_view keyName(Keys table, std::uint32_t index) { return table[index]; }

// ---------------------------------------------------------------------------------------------
// Where a problem belongs, which decides whether it counts.

enum class Scope : std::uint8_t {
  kRequest,     ///< Always counts.
  kObject,      ///< request.object: only for CREATE and UPDATE.
  kPod,         ///< The pod spec at spec (a Pod).
  kTemplate,    ///< ... at spec.template.spec (workloads).
  kJobTemplate  ///< ... at spec.jobTemplate.spec.template.spec (CronJob).
};
constexpr std::size_t kPodLocations = 3;

std::size_t locationOf(Scope scope) { return static_cast<std::size_t>(scope) - 2; }

using Rank = std::vector<std::uint32_t>;

struct Problem {
  Scope scope;
  Rank rank;
  std::string message;
};

/// The objects on the path to a pod spec: present (an object), absent (or null), or not an object.
enum class Presence : std::uint8_t { kAbsent, kObject, kNotObject };

enum Step : std::uint8_t {
  kObjectSpec,           ///< object.spec
  kSpecTemplate,         ///< object.spec.template
  kTemplateSpec,         ///< object.spec.template.spec
  kSpecJobTemplate,      ///< object.spec.jobTemplate
  kJobTemplateSpec,      ///< object.spec.jobTemplate.spec
  kJobSpecTemplate,      ///< object.spec.jobTemplate.spec.template
  kJobSpecTemplateSpec,  ///< object.spec.jobTemplate.spec.template.spec
  kStepCount,
};

/// A pod spec being decoded at one of the places one can sit.
struct PodDraft {
  PodSpec spec;
  std::array<std::vector<Container>, 3> containers;  ///< By ContainerKind.
  std::array<std::size_t, 3> containerCounts{};      ///< Including those over the limit.
  std::size_t volumeCount = 0;
  std::map<std::string, std::string> annotations;  ///< Beside the spec, in its metadata.
};

/// One open object or array, and what it fills.
struct Frame {
  Node node = Node::kEnvelope;
  Scope scope = Scope::kRequest;
  std::string_view name{};          ///< Key in the parent object; "" for an array element.
  std::uint32_t index = 0;          ///< Position in the parent array, for an array element.
  std::uint32_t order = 0;          ///< Rank of this frame's checks within its parent's.
  std::uint32_t key = kUnknownKey;  ///< Objects: the current key's index in keysOf(node).
  std::uint32_t next = 0;           ///< Arrays: the index of the next element.
  void* target = nullptr;           ///< The part of the model this frame fills.
  std::uint8_t slot = 0;            ///< Handlers: which probe or hook (for probeHosts' order).
  bool element = false;
};

/// Where a child frame goes; `node` unset means "skip this value".
struct Child {
  std::optional<Node> node{};
  void* target = nullptr;
  std::optional<Scope> scope{};
  std::uint8_t slot = 0;
};

std::string objectRelativePath(Scope scope) {
  switch (scope) {
    case Scope::kTemplate:
      return "spec.template.spec";
    case Scope::kJobTemplate:
      return "spec.jobTemplate.spec.template.spec";
    default:
      return "spec";
  }
}

Operation parseOperation(const std::string& text, bool& known) {
  known = true;
  if (text == "CREATE") return Operation::kCreate;
  if (text == "UPDATE") return Operation::kUpdate;
  if (text == "DELETE") return Operation::kDelete;
  if (text == "CONNECT") return Operation::kConnect;
  known = false;
  return Operation::kCreate;
}

/// Where the pod spec lives for each kind we evaluate; nullopt for kinds we let through untouched.
std::optional<Scope> podLocation(std::string_view group, std::string_view kind) {
  if (group.empty() && kind == "Pod") return Scope::kPod;
  if (group.empty() && kind == "ReplicationController") return Scope::kTemplate;
  if (group == "apps" && (kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet" ||
                          kind == "ReplicaSet")) {
    return Scope::kTemplate;
  }
  if (group == "batch" && kind == "Job") return Scope::kTemplate;
  if (group == "batch" && kind == "CronJob") return Scope::kJobTemplate;
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// The SAX handler.

class ReviewDecoder {
 public:
  explicit ReviewDecoder(const DecodeLimits& limits) : limits_(limits) { frames_.reserve(16); }

  // nlohmann's SAX interface.
  bool null() {
    if (input_ != nullptr) {
      if (const auto captured = input_->takeCapturedString()) {
        // The string the input took in this null's place (captureValue): read it as the parser
        // would have.
        capturedText_.assign(*captured);
        return string(capturedText_);
      }
    }
    return scalar(JsonValue{});
  }
  bool boolean(bool value) {
    return scalar(JsonValue{.type = JsonType::kBoolean, .boolean = value});
  }
  bool number_integer(std::int64_t value) {
    return scalar(JsonValue{.type = JsonType::kInteger, .integer = value});
  }
  bool number_unsigned(std::uint64_t value) {
    return scalar(JsonValue{.type = JsonType::kUnsigned, .unsignedInteger = value});
  }
  bool number_float(double, const std::string&) {
    return scalar(JsonValue{.type = JsonType::kFloat});
  }
  bool string(std::string& value) {
    return scalar(JsonValue{.type = JsonType::kString, .text = &value});
  }
  bool binary(nlohmann::json::binary_t&) { return scalar(JsonValue{}); }  // Not in JSON text.
  bool start_object(std::size_t) { return open(JsonType::kObject); }
  bool start_array(std::size_t) { return open(JsonType::kArray); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(std::string& name) {
    if (skipDepth_ > 0) {
      skipValue();
      return true;
    }
    Frame& frame = frames_.back();
    switch (frame.node) {
      case Node::kStringMap:
        currentKey_ = name;
        frame.key = 0;
        if (name == kLastAppliedAnnotation) {
          skipValue(/*onlyString=*/true);
        } else {
          captureValue();
        }
        break;
      case Node::kVolume:
        // Every key but `name` is a volume source.
        frame.key = name == "name" ? 0 : 1;
        if (frame.key == 1) currentKey_ = name;
        captureValue();
        break;
      default:
        frame.key = keyIndex(keysOf(frame.node), name);
        if (frame.key == kUnknownKey) {
          skipValue();
        } else {
          captureValue();
        }
        break;
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& error) {
    std::string reason = error.what();
    const auto prefixEnd = reason.find("] ");
    if (prefixEnd != std::string::npos) reason.erase(0, prefixEnd + 2);
    unreadable_ = "request body is not valid JSON: " + reason;
    return false;
  }

  /// After sax_parse: the decoded review, or UnreadableReview.
  DecodedReview finish(bool parsed);

  /// Values nothing reads are jumped over in `input` instead of lexed.
  void skipUnreadValuesIn(SkippableInput* input) { input_ = input; }

 private:
  /// The value of the key just read is one nothing reads.
  void skipValue(bool onlyString = false) {
    if (input_ == nullptr) return;
    input_->skipNextValue(
        SkipBudget{limits_.maxDepth - depth_, limits_.maxValues - values_, &values_}, onlyString);
  }

  /// The value of the key just read is kept: a plain string is taken without the lexer.
  void captureValue() {
    if (input_ != nullptr) input_->captureNextString();
  }

  // --- events
  bool countValue() {
    if (++values_ > limits_.maxValues) {
      unreadable_ = "request body holds more than " + std::to_string(limits_.maxValues) +
                    " JSON values, more than any object the API server stores";
      return false;
    }
    return true;
  }

  bool scalar(const JsonValue& value) {
    if (!countValue()) return false;
    if (skipDepth_ > 0) return true;
    if (frames_.empty()) {
      rootIsObject_ = false;
      return true;
    }
    (void)dispatch(value);
    return true;
  }

  bool open(JsonType type) {
    if (!countValue()) return false;
    if (++depth_ > limits_.maxDepth) {
      unreadable_ =
          "request body is nested deeper than " + std::to_string(limits_.maxDepth) + " levels";
      return false;
    }
    if (skipDepth_ > 0) {
      ++skipDepth_;
      return true;
    }
    if (frames_.empty()) {
      if (type == JsonType::kObject) {
        frames_.push_back(Frame{.node = Node::kEnvelope, .scope = Scope::kRequest});
      } else {
        rootIsObject_ = false;
        skipDepth_ = 1;
      }
      return true;
    }
    const Child child = dispatch(JsonValue{.type = type});
    if (!child.node) {
      skipDepth_ = 1;
      return true;
    }
    Frame& parent = frames_.back();
    Frame frame{.node = *child.node,
                .scope = child.scope.value_or(parent.scope),
                .target = child.target,
                .slot = child.slot};
    if (isArray(parent.node)) {
      frame.element = true;
      frame.index = parent.next - 1;
      frame.order = frame.index + 1;  // 0 is the array's check that every element is an object.
    } else {
      frame.name = keyName(keysOf(parent.node), parent.key);
      frame.order = parent.key;
    }
    frames_.push_back(frame);
    return true;
  }

  bool close() {
    --depth_;
    if (skipDepth_ > 0) {
      --skipDepth_;
      return true;
    }
    finishFrame(frames_.back());
    frames_.pop_back();
    return true;
  }

  static bool isArray(Node node) {
    return node == Node::kSysctlList || node == Node::kVolumeList || node == Node::kContainerList ||
           node == Node::kCapabilityList || node == Node::kPortList;
  }

  /// A value inside the innermost open object or array: handled by that frame's node.
  Child dispatch(const JsonValue& value) {
    Frame& frame = frames_.back();
    if (isArray(frame.node)) return element(frame, value, frame.next++);
    if (frame.key == kUnknownKey) return {};
    switch (frame.node) {
      case Node::kEnvelope:
        return envelopeField(frame, value);
      case Node::kRequest:
        return requestField(frame, value);
      case Node::kRequestKind:
        return requestKindField(frame, value);
      case Node::kUserInfo:
        return userInfoField(frame, value);
      case Node::kObject:
        return objectField(frame, value);
      case Node::kObjectMetadata:
        return objectMetadataField(frame, value);
      case Node::kStringMap:
        return stringMapEntry(frame, value);
      case Node::kPodSpec:
        return podSpecField(frame, value);
      case Node::kTemplate:
        return templateField(frame, value);
      case Node::kJobTemplate:
        return step(value, kJobTemplateSpec, Node::kJobSpec);
      case Node::kJobSpec:
        return step(value, kJobSpecTemplate, Node::kTemplate);
      case Node::kTemplateMetadata:
        return objectValue(value, Node::kStringMap, &pod(frame.scope).annotations);
      case Node::kOs:
        return readString(value, *static_cast<std::optional<std::string>*>(frame.target));
      case Node::kPodSecurityContext:
        return podSecurityContextField(frame, value);
      case Node::kSysctl:
        return sysctlField(frame, value);
      case Node::kVolume:
        return volumeField(frame, value);
      case Node::kContainer:
        return containerField(frame, value);
      case Node::kContainerSecurityContext:
        return containerSecurityContextField(frame, value);
      case Node::kCapabilities:
        return capabilitiesField(frame, value);
      case Node::kProfile:
        return profileField(frame, value);
      case Node::kSeLinuxOptions:
        return seLinuxOptionsField(frame, value);
      case Node::kWindowsOptions:
        return readBool(value, *static_cast<std::optional<bool>*>(frame.target));
      case Node::kPort:
        return readInt64(value, portHostPort_);
      case Node::kHandler:
        return handlerField(frame, value);
      case Node::kHandlerTarget:
        return handlerTargetField(frame, value);
      case Node::kLifecycle:
        return lifecycleField(frame, value);
      default:
        return {};
    }
  }

  // --- typed reads of the current key's value; `null` counts as absent, as in the API.
  Child readString(const JsonValue& value, std::optional<std::string>& out) {
    if (value.type == JsonType::kNull) {
      out.reset();
    } else if (value.type == JsonType::kString) {
      out = *value.text;
    } else {
      fieldProblem("must be a string");
    }
    return {};
  }

  Child readBool(const JsonValue& value, std::optional<bool>& out) {
    if (value.type == JsonType::kNull) {
      out.reset();
    } else if (value.type == JsonType::kBoolean) {
      out = value.boolean;
    } else {
      fieldProblem("must be a boolean");
    }
    return {};
  }

  Child readInt64(const JsonValue& value, std::optional<std::int64_t>& out) {
    switch (value.type) {
      case JsonType::kNull:
        out.reset();
        break;
      case JsonType::kInteger:
        out = value.integer;
        break;
      case JsonType::kUnsigned:
        if (value.unsignedInteger >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
          fieldProblem("is out of range");
        } else {
          out = static_cast<std::int64_t>(value.unsignedInteger);
        }
        break;
      default:
        fieldProblem("must be an integer");
        break;
    }
    return {};
  }

  /// An object-valued key: decoded by `node` into `target`.
  Child objectValue(const JsonValue& value, Node node, void* target, std::uint8_t slot = 0) {
    if (value.type == JsonType::kObject) return {.node = node, .target = target, .slot = slot};
    if (value.type != JsonType::kNull) fieldProblem("must be an object");
    return {};
  }

  /// An array-valued key whose elements `node` decodes.
  Child arrayValue(const JsonValue& value, Node node, void* target, std::uint8_t slot = 0) {
    if (value.type == JsonType::kArray) return {.node = node, .target = target, .slot = slot};
    if (value.type != JsonType::kNull) fieldProblem("must be an array");
    return {};
  }

  /// An object on the path to a pod spec: its presence is checked at the end, for the path the
  /// request's kind names.
  Child step(const JsonValue& value, Step which, Node node, std::optional<Scope> scope = {}) {
    steps_[which] = value.type == JsonType::kObject ? Presence::kObject
                    : value.type == JsonType::kNull ? Presence::kAbsent
                                                    : Presence::kNotObject;
    if (value.type != JsonType::kObject) return {};
    return {.node = node, .scope = scope};
  }

  // --- one function per kind of object
  Child envelopeField(const Frame& frame, const JsonValue& value) {
    switch (frame.key) {
      case 0:  // apiVersion; anything but a string is checked as "" at the end.
        envelope_.apiVersion = value.type == JsonType::kString ? *value.text : "";
        return {};
      case 1:
        envelope_.kind = value.type == JsonType::kString ? *value.text : "";
        return {};
      default:  // request
        requestIsObject_ = value.type == JsonType::kObject;
        if (!requestIsObject_) return {};
        return {.node = Node::kRequest};
    }
  }

  Child requestField(const Frame& frame, const JsonValue& value) {
    switch (frame.key) {
      case 0:  // uid
        uid_ = value.type == JsonType::kString ? std::optional(*value.text) : std::nullopt;
        return {};
      case 1:
        kindPresence_ = value.type == JsonType::kObject ? Presence::kObject
                        : value.type == JsonType::kNull ? Presence::kAbsent
                                                        : Presence::kNotObject;
        kind_ = {};
        return objectValue(value, Node::kRequestKind, nullptr);
      case 2:
        return readString(value, subResource_);
      case 3:
        return readString(value, namespace_);
      case 4:
        return readString(value, name_);
      case 5:
        return readString(value, operation_);
      case 6:
        return readBool(value, dryRun_);
      case 7:
        return objectValue(value, Node::kUserInfo, nullptr);
      default:  // object
        objectPresence_ = value.type == JsonType::kObject ? Presence::kObject
                          : value.type == JsonType::kNull ? Presence::kAbsent
                                                          : Presence::kNotObject;
        if (value.type != JsonType::kObject) return {};
        return {.node = Node::kObject, .scope = Scope::kObject};
    }
  }

  Child requestKindField(const Frame& frame, const JsonValue& value) {
    return readString(value, frame.key == 0   ? kind_.group
                             : frame.key == 1 ? kind_.version
                                              : kind_.kind);
  }

  Child userInfoField(const Frame&, const JsonValue& value) { return readString(value, userName_); }

  Child objectField(const Frame& frame, const JsonValue& value) {
    switch (frame.key) {
      case 0:
        return readString(value, object_.apiVersion);
      case 1:
        return readString(value, object_.kind);
      case 2:
        return objectValue(value, Node::kObjectMetadata, nullptr);
      default:  // spec: a Pod's pod spec, or where a workload's template sits.
        return step(value, kObjectSpec, Node::kPodSpec, Scope::kPod);
    }
  }

  Child objectMetadataField(const Frame& frame, const JsonValue& value) {
    switch (frame.key) {
      case 0:
        return readString(value, object_.name);
      case 1:
        // Read only when there is no name: a problem is kept aside until then.
        generateNameIsString_ = value.type == JsonType::kString || value.type == JsonType::kNull;
        object_.generateName =
            value.type == JsonType::kString ? std::optional(*value.text) : std::nullopt;
        return {};
      case 2:
        return readString(value, object_.namespaceName);
      case 3:
        return objectValue(value, Node::kStringMap, &object_.labels);
      default:  // annotations: the Pod's own, read after its spec and only for a Pod.
        if (value.type != JsonType::kObject && value.type != JsonType::kNull) {
          problem(Scope::kPod, {8, 4}, "request.object.metadata.annotations must be an object");
          return {};
        }
        return objectValue(value, Node::kStringMap, &pod(Scope::kPod).annotations, /*slot=*/1);
    }
  }

  /// labels and annotations: every value must be a string.
  Child stringMapEntry(Frame& frame, const JsonValue& value) {
    if (value.type != JsonType::kString) {
      // The DOM decoder checked the keys in sorted order: remember the first bad one.
      if (!firstBadKey_ || currentKey_ < *firstBadKey_) firstBadKey_ = currentKey_;
      return {};
    }
    if (currentKey_ == kLastAppliedAnnotation) return {};  // A whole copy of the object.
    auto& map = *static_cast<std::map<std::string, std::string>*>(frame.target);
    map.insert_or_assign(currentKey_, *value.text);
    return {};
  }

  Child podSpecField(const Frame& frame, const JsonValue& value) {
    PodDraft& draft = pod(frame.scope);
    PodSpec& spec = draft.spec;
    switch (frame.key) {
      case 0:
        return readFlag(value, spec.hostNetwork);
      case 1:
        return readFlag(value, spec.hostPID);
      case 2:
        return readFlag(value, spec.hostIPC);
      case 3:
        return readBool(value, spec.hostUsers);
      case 4:
        spec.osName.reset();
        return objectValue(value, Node::kOs, &spec.osName);
      case 5:
        spec.securityContext = {};
        return objectValue(value, Node::kPodSecurityContext, &spec.securityContext);
      case 6:
        spec.volumes.clear();
        draft.volumeCount = 0;
        return arrayValue(value, Node::kVolumeList, &draft);
      case 7:
      case 8:
      case 9: {
        const auto kind = static_cast<std::uint8_t>(frame.key - 7);
        draft.containers[kind].clear();
        draft.containerCounts[kind] = 0;
        return arrayValue(value, Node::kContainerList, &draft, kind);
      }
      case 10:  // template: only in the object's own spec.
        if (frame.scope != Scope::kPod) return {};
        return step(value, kSpecTemplate, Node::kTemplate, Scope::kTemplate);
      default:  // jobTemplate
        if (frame.scope != Scope::kPod) return {};
        return step(value, kSpecJobTemplate, Node::kJobTemplate, Scope::kJobTemplate);
    }
  }

  /// hostNetwork and the like: optional booleans that default to false.
  Child readFlag(const JsonValue& value, bool& out) {
    std::optional<bool> flag;
    readBool(value, flag);
    if (value.type == JsonType::kNull || value.type == JsonType::kBoolean)
      out = flag.value_or(false);
    return {};
  }

  Child templateField(const Frame& frame, const JsonValue& value) {
    const bool job = frame.scope == Scope::kJobTemplate;
    if (frame.key == 0)
      return step(value, job ? kJobSpecTemplateSpec : kTemplateSpec, Node::kPodSpec);
    return objectValue(value, Node::kTemplateMetadata, nullptr);
  }

  Child podSecurityContextField(const Frame& frame, const JsonValue& value) {
    auto& context = *static_cast<PodSecurityContext*>(frame.target);
    switch (frame.key) {
      case 0:
        return readBool(value, context.runAsNonRoot);
      case 1:
        return readInt64(value, context.runAsUser);
      case 2:
        return readInt64(value, context.runAsGroup);
      case 3:
        return profile(value, context.seccompProfileType);
      case 4:
        return profile(value, context.appArmorProfileType);
      case 5:
        return seLinuxOptions(value, context.seLinuxOptions);
      case 6:
        context.sysctls.clear();
        return arrayValue(value, Node::kSysctlList, &context.sysctls);
      default:
        return windowsOptions(value, context.windowsHostProcess);
    }
  }

  /// `{type: ...}` profiles: the type, "" when it is missing.
  Child profile(const JsonValue& value, std::optional<std::string>& type) {
    type.reset();
    if (value.type == JsonType::kObject) type.emplace();
    return objectValue(value, Node::kProfile, &type);
  }

  Child seLinuxOptions(const JsonValue& value, std::optional<SeLinuxOptions>& options) {
    options.reset();
    if (value.type == JsonType::kObject) options.emplace();
    return objectValue(value, Node::kSeLinuxOptions, &options);
  }

  Child windowsOptions(const JsonValue& value, std::optional<bool>& hostProcess) {
    hostProcess.reset();
    return objectValue(value, Node::kWindowsOptions, &hostProcess);
  }

  Child profileField(const Frame& frame, const JsonValue& value) {
    std::optional<std::string> type;
    readString(value, type);
    if (value.type == JsonType::kString || value.type == JsonType::kNull) {
      *static_cast<std::optional<std::string>*>(frame.target) = type.value_or("");
    }
    return {};
  }

  Child seLinuxOptionsField(const Frame& frame, const JsonValue& value) {
    auto& options = **static_cast<std::optional<SeLinuxOptions>*>(frame.target);
    std::string* fields[] = {&options.user, &options.role, &options.type, &options.level};
    std::optional<std::string> text;
    readString(value, text);
    if (value.type == JsonType::kString || value.type == JsonType::kNull) {
      *fields[frame.key] = text.value_or("");
    }
    return {};
  }

  Child sysctlField(const Frame& frame, const JsonValue& value) {
    auto& names = *static_cast<std::vector<std::string>*>(frame.target);
    std::optional<std::string> name;
    readString(value, name);
    if (value.type == JsonType::kString || value.type == JsonType::kNull) {
      names.back() = name.value_or("");
    }
    return {};
  }

  Child volumeField(const Frame& frame, const JsonValue& value) {
    if (frame.key == 0) {
      std::optional<std::string> name;
      readString(value, name);
      if (value.type == JsonType::kString || value.type == JsonType::kNull) {
        volume_.name = name.value_or("");
      }
      return {};
    }
    // Every volume source is an object; checking the type keeps `hostPath: "/"` from passing
    // as a source nobody can read. null means the key is not set.
    if (value.type == JsonType::kObject) {
      volume_.sources.push_back(currentKey_);
    } else if (value.type != JsonType::kNull) {
      if (!firstBadKey_ || currentKey_ < *firstBadKey_) firstBadKey_ = currentKey_;
    }
    return {};
  }

  Child containerField(const Frame& frame, const JsonValue& value) {
    switch (frame.key) {
      case 0: {
        std::optional<std::string> name;
        readString(value, name);
        if (value.type == JsonType::kString || value.type == JsonType::kNull) {
          container_.name = name.value_or("");
        }
        return {};
      }
      case 1:
        return readString(value, image_);
      case 2:
        container_.securityContext = {};
        return objectValue(value, Node::kContainerSecurityContext, &container_.securityContext);
      case 3:
        container_.hostPorts.clear();
        return arrayValue(value, Node::kPortList, nullptr);
      case 4:
      case 5:
      case 6: {
        const auto slot = static_cast<std::uint8_t>(frame.key - 4);
        clearHandler(slot);
        return objectValue(value, Node::kHandler, nullptr, slot);
      }
      default:
        clearHandler(3);
        clearHandler(4);
        return objectValue(value, Node::kLifecycle, nullptr);
    }
  }

  Child containerSecurityContextField(const Frame& frame, const JsonValue& value) {
    auto& context = *static_cast<ContainerSecurityContext*>(frame.target);
    switch (frame.key) {
      case 0:
        return readBool(value, context.runAsNonRoot);
      case 1:
        return readInt64(value, context.runAsUser);
      case 2:
        return readInt64(value, context.runAsGroup);
      case 3:
        return readBool(value, context.privileged);
      case 4:
        return readBool(value, context.allowPrivilegeEscalation);
      case 5:
        return readBool(value, context.readOnlyRootFilesystem);
      case 6:
        context.capabilities = {};
        context.hasCapabilities = value.type == JsonType::kObject;
        return objectValue(value, Node::kCapabilities, &context.capabilities);
      case 7:
        return profile(value, context.seccompProfileType);
      case 8:
        return profile(value, context.appArmorProfileType);
      case 9:
        return seLinuxOptions(value, context.seLinuxOptions);
      case 10:
        return readString(value, context.procMount);
      default:
        return windowsOptions(value, context.windowsHostProcess);
    }
  }

  Child capabilitiesField(const Frame& frame, const JsonValue& value) {
    auto& capabilities = *static_cast<Capabilities*>(frame.target);
    auto& names = frame.key == 0 ? capabilities.add : capabilities.drop;
    names.clear();
    return arrayValue(value, Node::kCapabilityList, &names);
  }

  Child handlerField(const Frame& frame, const JsonValue& value) {
    const auto slot = static_cast<std::uint8_t>(frame.slot * 2 + frame.key);
    handlerHosts_[slot].reset();
    return objectValue(value, Node::kHandlerTarget, nullptr, slot);
  }

  Child handlerTargetField(const Frame& frame, const JsonValue& value) {
    return readString(value, handlerHosts_[frame.slot]);
  }

  Child lifecycleField(const Frame& frame, const JsonValue& value) {
    const auto slot = static_cast<std::uint8_t>(3 + frame.key);
    clearHandler(slot);
    return objectValue(value, Node::kHandler, nullptr, slot);
  }

  void clearHandler(std::uint8_t slot) {
    handlerHosts_[slot * 2].reset();
    handlerHosts_[slot * 2 + 1].reset();
  }

  /// An element of an array the model reads.
  Child element(Frame& list, const JsonValue& value, std::uint32_t index) {
    if (list.node == Node::kCapabilityList) {
      if (value.type == JsonType::kString) {
        static_cast<std::vector<std::string>*>(list.target)->push_back(*value.text);
      } else {
        problem(rankOf({index}), pathOf() + "[" + std::to_string(index) + "] must be a string");
      }
      return {};
    }
    if (value.type != JsonType::kObject) {
      // Checked for all elements before any is decoded.
      problem(rankOf({0, index}), pathOf() + "[" + std::to_string(index) + "] must be an object");
      return {};
    }
    switch (list.node) {
      case Node::kSysctlList:
        static_cast<std::vector<std::string>*>(list.target)->emplace_back();
        return {.node = Node::kSysctl, .target = list.target};
      case Node::kVolumeList:
        volume_ = {};
        firstBadKey_.reset();
        return {.node = Node::kVolume, .target = list.target};
      case Node::kContainerList:
        container_ = {};
        image_.reset();
        handlerHosts_ = {};
        return {.node = Node::kContainer, .target = list.target, .slot = list.slot};
      default:  // kPortList
        portHostPort_.reset();
        return {.node = Node::kPort};
    }
  }

  // --- end of an object or array
  void finishFrame(Frame& frame) {
    switch (frame.node) {
      case Node::kStringMap:
        finishStringMap(frame);
        break;
      case Node::kVolume:
        finishVolume(frame);
        break;
      case Node::kContainer:
        finishContainer(frame);
        break;
      case Node::kPort:
        if (portHostPort_ && *portHostPort_ != 0) container_.hostPorts.push_back(*portHostPort_);
        break;
      default:
        break;
    }
  }

  void finishStringMap(const Frame& frame) {
    if (!firstBadKey_) return;
    const std::string message = pathOf() + "." + *firstBadKey_ + " must be a string";
    // The Pod's own annotations were read after its spec, and only for a Pod.
    if (frame.slot == 1) {
      problem(Scope::kPod, {8, 4}, message);
    } else {
      problem(rankOf({}), message);
    }
    firstBadKey_.reset();
  }

  void finishVolume(const Frame& frame) {
    auto& draft = *static_cast<PodDraft*>(frame.target);
    if (firstBadKey_) {
      problem(rankOf({1}), pathOf() + "." + *firstBadKey_ + " must be an object");
      firstBadKey_.reset();
    }
    // The DOM decoder listed the sources in key order, each once.
    std::sort(volume_.sources.begin(), volume_.sources.end());
    volume_.sources.erase(std::unique(volume_.sources.begin(), volume_.sources.end()),
                          volume_.sources.end());
    if (++draft.volumeCount <= limits_.maxVolumes) draft.spec.volumes.push_back(std::move(volume_));
  }

  void finishContainer(const Frame& frame) {
    auto& draft = *static_cast<PodDraft*>(frame.target);
    if (!image_) {
      problem(rankOf({1}), pathOf() + ".image is required");
    } else {
      container_.image = std::move(*image_);
    }
    for (auto& host : handlerHosts_) {
      if (host && !host->empty()) container_.probeHosts.push_back(std::move(*host));
    }
    const auto kind = static_cast<ContainerKind>(frame.slot);
    container_.kind = kind;
    container_.path = objectRelativePath(frame.scope) + "." +
                      std::string(keysOf(Node::kPodSpec)[7 + frame.slot]) + "[" +
                      std::to_string(frame.index) + "]";
    const std::size_t total =
        draft.containers[0].size() + draft.containers[1].size() + draft.containers[2].size();
    ++draft.containerCounts[frame.slot];
    if (total < limits_.maxContainers)
      draft.containers[frame.slot].push_back(std::move(container_));
  }

  // --- problems
  PodDraft& pod(Scope scope) { return pods_[locationOf(scope)]; }

  /// The JSON path of the innermost open object or array, e.g. "request.object.spec".
  std::string pathOf() const {
    std::string path;
    for (std::size_t i = 1; i < frames_.size(); ++i) {
      const Frame& frame = frames_[i];
      if (frame.element) {
        path += "[" + std::to_string(frame.index) + "]";
      } else {
        if (!path.empty()) path += '.';
        path += frame.name;
      }
    }
    return path;
  }

  /// The rank of a check inside the innermost open frame: the frames' orders, then `inner`.
  Rank rankOf(std::initializer_list<std::uint32_t> inner) const {
    Rank rank;  // Request fields rank by their own order: the envelope and request frames add none.
    for (std::size_t i = 2; i < frames_.size(); ++i) rank.push_back(frames_[i].order);
    rank.insert(rank.end(), inner);
    return rank;
  }

  /// The current key's value is of the wrong type.
  void fieldProblem(std::string_view what) {
    const Frame& frame = frames_.back();
    problem(rankOf({frame.key}), pathOf() + "." +
                                     std::string(keyName(keysOf(frame.node), frame.key)) + " " +
                                     std::string(what));
  }

  void problem(Rank rank, std::string message) {
    problems_.push_back(Problem{frames_.back().scope, std::move(rank), std::move(message)});
  }

  void problem(Scope scope, Rank rank, std::string message) {
    problems_.push_back(Problem{scope, std::move(rank), std::move(message)});
  }

  // --- the end
  void checkRequest();
  bool checkPodPath(Scope location);
  void checkPodLimits(Scope location);
  ReviewedObject buildObject(const AdmissionRequest& request, std::optional<Scope> location);

  const DecodeLimits& limits_;
  std::vector<Frame> frames_;
  SkippableInput* input_ = nullptr;
  std::string capturedText_;  ///< Reused: the text of the last string the input captured.
  std::size_t depth_ = 0;
  std::size_t values_ = 0;
  std::size_t skipDepth_ = 0;  ///< > 0 inside a value nothing reads.
  std::string unreadable_;
  std::vector<Problem> problems_;

  // The envelope and the request.
  bool rootIsObject_ = true;
  bool requestIsObject_ = false;
  ReviewEnvelope envelope_{"", ""};
  std::optional<std::string> uid_;
  Presence kindPresence_ = Presence::kAbsent;
  struct {
    std::optional<std::string> group, version, kind;
  } kind_;
  std::optional<std::string> subResource_, namespace_, name_, operation_, userName_;
  std::optional<bool> dryRun_;
  Presence objectPresence_ = Presence::kAbsent;

  // The object.
  struct {
    std::optional<std::string> apiVersion, kind, name, generateName, namespaceName;
    std::map<std::string, std::string> labels;
  } object_;
  bool generateNameIsString_ = true;
  std::array<Presence, kStepCount> steps_{};
  std::array<PodDraft, kPodLocations> pods_;

  // What is being decoded now: containers, volumes, ports and map entries do not nest.
  std::string currentKey_;                  ///< The key of a map entry or volume source.
  std::optional<std::string> firstBadKey_;  ///< Of the current map or volume.
  Volume volume_;
  Container container_;
  std::optional<std::string> image_;
  std::optional<std::int64_t> portHostPort_;
  /// liveness, readiness, startup, postStart, preStop, each httpGet then tcpSocket.
  std::array<std::optional<std::string>, 10> handlerHosts_;
};

void ReviewDecoder::checkRequest() {
  if (kindPresence_ == Presence::kAbsent) problem(Scope::kRequest, {1}, "request.kind is required");
  if (kindPresence_ == Presence::kObject && !kind_.kind) {
    problem(Scope::kRequest, {1, 2}, "request.kind.kind is required");
  }
  if (!operation_) {
    problem(Scope::kRequest, {5}, "request.operation is required");
  } else {
    bool known = false;
    (void)parseOperation(*operation_, known);
    if (!known) {
      problem(Scope::kRequest, {5},
              "request.operation must be one of CREATE, UPDATE, DELETE, CONNECT (got \"" +
                  *operation_ + "\")");
    }
  }
  if (objectPresence_ == Presence::kAbsent) {
    problem(Scope::kObject, {8}, "request.object is required");
  } else if (objectPresence_ == Presence::kNotObject) {
    problem(Scope::kObject, {8}, "request.object must be an object");
  }
  if (!generateNameIsString_ && object_.name.value_or("").empty()) {
    problem(Scope::kObject, {8, 2, 1}, "request.object.metadata.generateName must be a string");
  }
}

/// The objects on the way to the pod spec at `location` must be there; the first that is not is
/// a problem, and the pod spec is then not decoded.
bool ReviewDecoder::checkPodPath(Scope location) {
  struct Hop {
    Step step;
    std::string_view name;
    std::uint32_t order;
  };
  std::vector<Hop> hops = {{kObjectSpec, "spec", 3}};
  if (location == Scope::kTemplate) {
    hops.push_back({kSpecTemplate, "template", 10});
    hops.push_back({kTemplateSpec, "spec", 0});
  } else if (location == Scope::kJobTemplate) {
    hops.push_back({kSpecJobTemplate, "jobTemplate", 11});
    hops.push_back({kJobTemplateSpec, "spec", 0});
    hops.push_back({kJobSpecTemplate, "template", 0});
    hops.push_back({kJobSpecTemplateSpec, "spec", 0});
  }
  std::string path = "request.object";
  Rank rank = {8};
  for (const Hop& hop : hops) {
    path += "." + std::string(hop.name);
    rank.push_back(hop.order);
    switch (steps_[hop.step]) {
      case Presence::kObject:
        continue;
      case Presence::kAbsent:
        problem(location, rank, path + " is required");
        return false;
      case Presence::kNotObject:
        problem(location, rank, path + " must be an object");
        return false;
    }
  }
  return true;
}

/// containers, then initContainers, then ephemeralContainers count towards one limit.
void ReviewDecoder::checkPodLimits(Scope location) {
  PodDraft& draft = pod(location);
  Rank podRank = {8, 3};
  if (location == Scope::kTemplate) podRank.insert(podRank.end(), {10, 0});
  if (location == Scope::kJobTemplate) podRank.insert(podRank.end(), {11, 0, 0, 0});
  const std::string podPath = "request.object." + objectRelativePath(location);
  if (draft.volumeCount > limits_.maxVolumes) {
    Rank rank = podRank;
    rank.insert(rank.end(), {6, static_cast<std::uint32_t>(limits_.maxVolumes + 1)});
    problem(location, rank,
            podPath + " has more than " + std::to_string(limits_.maxVolumes) + " volumes");
  }
  std::size_t before = 0;
  for (std::uint32_t kind = 0; kind < 3; ++kind) {
    const std::size_t count = draft.containerCounts[kind];
    if (before + count > limits_.maxContainers) {
      Rank rank = podRank;
      rank.insert(rank.end(),
                  {7 + kind, static_cast<std::uint32_t>(limits_.maxContainers - before + 1)});
      problem(location, rank,
              podPath + " has more than " + std::to_string(limits_.maxContainers) + " containers");
      return;
    }
    before += count;
  }
}

ReviewedObject ReviewDecoder::buildObject(const AdmissionRequest& request,
                                          std::optional<Scope> location) {
  ReviewedObject reviewed;
  reviewed.apiVersion = object_.apiVersion.value_or("");
  reviewed.kind = object_.kind.value_or(request.kind);
  reviewed.name = object_.name.value_or("");
  if (reviewed.name.empty()) reviewed.name = object_.generateName.value_or("");
  reviewed.namespaceName = object_.namespaceName.value_or("");
  reviewed.labels = std::move(object_.labels);
  if (location) {
    PodDraft& draft = pod(*location);
    PodSpec& spec = draft.spec;
    spec.path = objectRelativePath(*location);
    spec.containers.reserve(draft.containers[0].size() + draft.containers[1].size() +
                            draft.containers[2].size());
    for (auto& byKind : draft.containers) {
      for (Container& container : byKind) spec.containers.push_back(std::move(container));
    }
    spec.annotations = std::move(draft.annotations);
    reviewed.podSpec = std::move(spec);
  }
  return reviewed;
}

DecodedReview ReviewDecoder::finish(bool parsed) {
  if (!parsed || !unreadable_.empty()) {
    throw UnreadableReview(unreadable_.empty() ? "request body is not valid JSON" : unreadable_);
  }
  if (!rootIsObject_) {
    throw UnreadableReview(
        "request body must be a JSON object (an admission.k8s.io/v1 AdmissionReview)");
  }
  if (envelope_.kind != "AdmissionReview" || (envelope_.apiVersion != "admission.k8s.io/v1" &&
                                              envelope_.apiVersion != "admission.k8s.io/v1beta1")) {
    throw UnreadableReview(
        "expected kind AdmissionReview with apiVersion admission.k8s.io/v1, got kind \"" +
        envelope_.kind + "\" apiVersion \"" + envelope_.apiVersion + "\"");
  }
  if (!requestIsObject_) throw UnreadableReview("AdmissionReview has no request object");
  if (!uid_ || uid_->empty()) {
    throw UnreadableReview("AdmissionReview request.uid is missing or not a non-empty string");
  }

  AdmissionRequest request;
  request.uid = *uid_;
  request.kindGroup = kind_.group.value_or("");
  request.kindVersion = kind_.version.value_or("");
  request.kind = kind_.kind.value_or("");
  request.subResource = subResource_.value_or("");
  request.namespaceName = namespace_.value_or("");
  request.name = name_.value_or("");
  bool knownOperation = false;
  request.operation = parseOperation(operation_.value_or(""), knownOperation);
  request.dryRun = dryRun_.value_or(false);
  request.userName = userName_.value_or("");

  checkRequest();
  const bool evaluated = knownOperation && (request.operation == Operation::kCreate ||
                                            request.operation == Operation::kUpdate);
  // Status and other subresources carry the whole object but change no pod spec.
  const bool evaluatedSubresource =
      request.subResource.empty() || request.subResource == "ephemeralcontainers";
  std::optional<Scope> location;  // Of the pod spec the kind names.
  bool podSpecThere = false;
  if (evaluated && objectPresence_ == Presence::kObject && evaluatedSubresource) {
    location = podLocation(request.kindGroup, request.kind);
    podSpecThere = location && checkPodPath(*location);
    if (podSpecThere) checkPodLimits(*location);
  }

  const auto counts = [&](const Problem& found) {
    switch (found.scope) {
      case Scope::kRequest:
        return true;
      case Scope::kObject:
        return evaluated;
      default:
        return evaluated && location == found.scope;
    }
  };
  const Problem* first = nullptr;
  for (const Problem& found : problems_) {
    if (counts(found) && (first == nullptr || found.rank < first->rank)) first = &found;
  }
  DecodedReview decoded{std::move(envelope_), MalformedRequest{}};
  if (first != nullptr) {
    decoded.request = MalformedRequest{request.uid, first->message};
    return decoded;
  }
  if (evaluated) {
    request.object = buildObject(request, podSpecThere ? location : std::nullopt);
    if (request.namespaceName.empty()) request.namespaceName = request.object->namespaceName;
    if (request.name.empty()) request.name = request.object->name;
  }
  decoded.request = std::move(request);
  return decoded;
}

}  // namespace

std::string_view describe(ContainerKind kind) {
  switch (kind) {
    case ContainerKind::kContainer:
      return "container";
    case ContainerKind::kInitContainer:
      return "init container";
    case ContainerKind::kEphemeralContainer:
      return "ephemeral container";
  }
  return "container";
}

namespace {

template <class... Input>
bool parse(ReviewDecoder& decoder, Input&&... input) {
  try {
    return nlohmann::json::sax_parse(std::forward<Input>(input)..., &decoder);
  } catch (const nlohmann::json::exception& e) {
    // sax_parse reports errors through parse_error; this is for anything it throws instead.
    throw UnreadableReview(std::string("request body is not valid JSON: ") + e.what());
  }
}

}  // namespace

DecodedReview decodeReview(std::string_view body, const DecodeLimits& limits) {
  {
    ReviewDecoder decoder(limits);
    SkippableInput input(body);
    decoder.skipUnreadValuesIn(&input);
    if (parse(decoder, input.begin(), SkippableInput::end())) return decoder.finish(true);
  }
  // Skips move the positions nlohmann's messages give: a body that cannot be parsed is read
  // again without them, for the true position.
  ReviewDecoder decoder(limits);
  return decoder.finish(parse(decoder, body));
}

}  // namespace imagegate::admission
