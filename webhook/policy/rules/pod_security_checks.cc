// The Pod Security Standards checks, one function per upstream check version. Each keeps the
// name of the Go function it ports (check_<id>.go upstream) so that a later upstream change can
// be compared side by side, and builds its message with PSA's own phrases: users look the reason
// up in the Kubernetes documentation, and tools that parse PSA warnings keep working.

#include "policy/rules/pod_security_checks.h"

#include <algorithm>
#include <cstdio>

namespace imagegate::policy::pss {
namespace {

using admission::Container;
using admission::ContainerKind;
using admission::PodSpec;
using admission::SeLinuxOptions;

using CheckFn = std::optional<Forbidden> (*)(const PodSpec&);

struct VersionedCheck {
  int minimumMinor;  ///< Applies from v1.<minimumMinor> until the next entry.
  CheckFn check;
  /// Baseline check ids this one replaces at restricted (PSA's OverrideCheckIDs).
  std::vector<std::string_view> overrides = {};
};

struct CheckDefinition {
  std::string_view id;
  Level level;
  std::vector<VersionedCheck> versions;  ///< Oldest first.
};

using SortedSet = std::set<std::string>;  // PSA's sets.String: List() is sorted.

// ---------------------------------------------------------------------------------------------
// PSA's message helpers (helpers.go).

std::string pluralize(std::string_view singular, std::string_view plural, std::size_t count) {
  return std::string(count == 1 ? singular : plural);
}

/// Go's %q for the ASCII range, which is what PSA quotes names and values with.
std::string quote(std::string_view text) {
  std::string out = "\"";
  for (const unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char escaped[5];
          std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
          out += escaped;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string text;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) text += separator;
    text += items[i];
  }
  return text;
}

std::string joinQuote(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  quoted.reserve(items.size());
  for (const std::string& item : items) quoted.push_back(quote(item));
  return join(quoted, ", ");
}

std::vector<std::string> list(const SortedSet& set) { return {set.begin(), set.end()}; }

/// `container "a"` or `containers "a", "b"`.
std::string containersPhrase(const std::vector<std::string>& names) {
  return pluralize("container", "containers", names.size()) + " " + joinQuote(names);
}

/// PSA's visitContainers order: init containers, containers, then ephemeral containers.
template <typename Visitor>
void visitContainers(const PodSpec& pod, Visitor visit) {
  for (const ContainerKind kind : {ContainerKind::kInitContainer, ContainerKind::kContainer,
                                   ContainerKind::kEphemeralContainer}) {
    for (const Container& container : pod.containers) {
      if (container.kind == kind) visit(container);
    }
  }
}

/// The v1.25 exemption of Linux-only restricted checks for pods that declare Windows.
bool isWindows(const PodSpec& pod) { return pod.osName == "windows"; }

/// relaxPolicyForUserNamespacePod: from v1.35, a pod in a user namespace (hostUsers: false)
/// is exempt from the checks whose risk the user namespace removes.
bool inUserNamespace(const PodSpec& pod) { return pod.hostUsers == false; }

bool startsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// ---------------------------------------------------------------------------------------------
// Baseline.

std::optional<Forbidden> appArmorProfile_1_0(const PodSpec& pod) {
  const auto allowedType = [](const std::string& type) {
    return type == "RuntimeDefault" || type == "Localhost";
  };
  // An empty annotation means "the default", which is confined.
  const auto allowedAnnotation = [](const std::string& value) {
    return value.empty() || value == "runtime/default" || startsWith(value, "localhost/");
  };
  std::vector<std::string> setters;
  SortedSet badValues;
  const auto& podType = pod.securityContext.appArmorProfileType;
  if (podType && !allowedType(*podType)) {
    setters.push_back("pod");
    badValues.insert(*podType);
  }
  std::vector<std::string> badContainers;
  visitContainers(pod, [&](const Container& container) {
    const auto& type = container.securityContext.appArmorProfileType;
    if (type && !allowedType(*type)) {
      badContainers.push_back(container.name);
      badValues.insert(*type);
    }
  });
  if (!badContainers.empty()) setters.push_back(containersPhrase(badContainers));
  std::vector<std::string> badAnnotations;
  for (const auto& [key, value] : pod.annotations) {
    if (startsWith(key, "container.apparmor.security.beta.kubernetes.io/") &&
        !allowedAnnotation(value)) {
      badAnnotations.push_back(key + "=" + quote(value));
    }
  }
  std::sort(badAnnotations.begin(), badAnnotations.end());
  std::vector<std::string> badValueList = list(badValues);
  if (!badAnnotations.empty()) {
    badValueList.insert(badValueList.end(), badAnnotations.begin(), badAnnotations.end());
    setters.push_back(pluralize("annotation", "annotations", badAnnotations.size()));
  }
  if (setters.empty()) return std::nullopt;
  return Forbidden{
      pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", badValueList.size()),
      join(setters, " and ") + " must not set AppArmor profile type to " + joinQuote(badValueList)};
}

std::optional<Forbidden> capabilitiesBaseline_1_0(const PodSpec& pod) {
  // The container runtimes' default set; names compare exactly, as PSA compares them.
  static const std::set<std::string, std::less<>> kAllowed{
      "AUDIT_WRITE",      "CHOWN",   "DAC_OVERRIDE", "FOWNER",  "FSETID", "KILL",      "MKNOD",
      "NET_BIND_SERVICE", "SETFCAP", "SETGID",       "SETPCAP", "SETUID", "SYS_CHROOT"};
  std::vector<std::string> badContainers;
  SortedSet forbidden;
  visitContainers(pod, [&](const Container& container) {
    bool bad = false;
    for (const std::string& capability : container.securityContext.capabilities.add) {
      if (!kAllowed.contains(capability)) {
        bad = true;
        forbidden.insert(capability);
      }
    }
    if (bad) badContainers.push_back(container.name);
  });
  if (badContainers.empty()) return std::nullopt;
  return Forbidden{"non-default capabilities",
                   containersPhrase(badContainers) + " must not include " +
                       joinQuote(list(forbidden)) + " in securityContext.capabilities.add"};
}

std::optional<Forbidden> hostNamespaces_1_0(const PodSpec& pod) {
  std::vector<std::string> shared;
  if (pod.hostNetwork) shared.push_back("hostNetwork=true");
  if (pod.hostPID) shared.push_back("hostPID=true");
  if (pod.hostIPC) shared.push_back("hostIPC=true");
  if (shared.empty()) return std::nullopt;
  return Forbidden{"host namespaces", join(shared, ", ")};
}

bool hasSource(const admission::Volume& volume, std::string_view source) {
  return std::find(volume.sources.begin(), volume.sources.end(), source) != volume.sources.end();
}

std::optional<Forbidden> hostPathVolumes_1_0(const PodSpec& pod) {
  std::vector<std::string> badVolumes;
  for (const admission::Volume& volume : pod.volumes) {
    if (hasSource(volume, "hostPath")) badVolumes.push_back(volume.name);
  }
  if (badVolumes.empty()) return std::nullopt;
  return Forbidden{"hostPath volumes",
                   pluralize("volume", "volumes", badVolumes.size()) + " " + joinQuote(badVolumes)};
}

std::optional<Forbidden> hostPorts_1_0(const PodSpec& pod) {
  std::vector<std::string> badContainers;
  SortedSet ports;  // Sorted as strings, as PSA sorts them.
  visitContainers(pod, [&](const Container& container) {
    for (const std::int64_t port : container.hostPorts) ports.insert(std::to_string(port));
    if (!container.hostPorts.empty()) badContainers.push_back(container.name);
  });
  if (badContainers.empty()) return std::nullopt;
  return Forbidden{"hostPort", containersPhrase(badContainers) + " " +
                                   pluralize("uses", "use", badContainers.size()) + " " +
                                   pluralize("hostPort", "hostPorts", ports.size()) + " " +
                                   join(list(ports), ", ")};
}

std::optional<Forbidden> hostProbesAndHostLifecycleV1Dot34(const PodSpec& pod) {
  SortedSet badContainers;
  SortedSet hosts;
  visitContainers(pod, [&](const Container& container) {
    if (container.probeHosts.empty()) return;
    badContainers.insert(container.name);
    hosts.insert(container.probeHosts.begin(), container.probeHosts.end());
  });
  if (badContainers.empty()) return std::nullopt;
  return Forbidden{
      "probe or lifecycle host",
      pluralize("container", "containers", badContainers.size()) + " " +
          joinQuote(list(badContainers)) + " " + pluralize("uses", "use", badContainers.size()) +
          " " + pluralize("probe or lifecycle host", "probe or lifecycle hosts", hosts.size()) +
          " " + joinQuote(list(hosts))};
}

std::optional<Forbidden> privileged_1_0(const PodSpec& pod) {
  std::vector<std::string> badContainers;
  visitContainers(pod, [&](const Container& container) {
    if (container.securityContext.privileged == true) badContainers.push_back(container.name);
  });
  if (badContainers.empty()) return std::nullopt;
  return Forbidden{"privileged", containersPhrase(badContainers) +
                                     " must not set securityContext.privileged=true"};
}

/// Also procMount_restricted from v1.35, where it keeps the unconditional form at restricted.
std::optional<Forbidden> procMount_1_0(const PodSpec& pod) {
  std::vector<std::string> badContainers;
  SortedSet types;
  visitContainers(pod, [&](const Container& container) {
    const auto& procMount = container.securityContext.procMount;
    if (procMount && *procMount != "Default") {
      badContainers.push_back(container.name);
      types.insert(*procMount);
    }
  });
  if (badContainers.empty()) return std::nullopt;
  return Forbidden{"procMount", containersPhrase(badContainers) +
                                    " must not set securityContext.procMount to " +
                                    joinQuote(list(types))};
}

std::optional<Forbidden> procMount1_35baseline(const PodSpec& pod) {
  // An unmasked /proc in a user namespace exposes only what that namespace owns.
  if (inUserNamespace(pod)) return std::nullopt;
  return procMount_1_0(pod);
}

std::optional<Forbidden> seLinuxOptions(const PodSpec& pod, const std::set<std::string>& types) {
  std::vector<std::string> setters;
  SortedSet badTypes;
  bool setUser = false;
  bool setRole = false;
  const auto valid = [&](const SeLinuxOptions& options) {
    bool ok = true;
    if (!types.contains(options.type)) {
      ok = false;
      badTypes.insert(options.type);
    }
    if (!options.user.empty()) {
      ok = false;
      setUser = true;
    }
    if (!options.role.empty()) {
      ok = false;
      setRole = true;
    }
    return ok;
  };
  const auto& podOptions = pod.securityContext.seLinuxOptions;
  if (podOptions && !valid(*podOptions)) setters.push_back("pod");
  std::vector<std::string> badContainers;
  visitContainers(pod, [&](const Container& container) {
    const auto& options = container.securityContext.seLinuxOptions;
    if (options && !valid(*options)) badContainers.push_back(container.name);
  });
  if (!badContainers.empty()) setters.push_back(containersPhrase(badContainers));
  if (setters.empty()) return std::nullopt;
  std::vector<std::string> badData;
  if (!badTypes.empty()) {
    badData.push_back(pluralize("type", "types", badTypes.size()) + " " +
                      joinQuote(list(badTypes)));
  }
  if (setUser) badData.push_back("user may not be set");
  if (setRole) badData.push_back("role may not be set");
  return Forbidden{"seLinuxOptions",
                   join(setters, " and ") +
                       " set forbidden securityContext.seLinuxOptions: " + join(badData, "; ")};
}

std::optional<Forbidden> seLinuxOptions_1_0(const PodSpec& pod) {
  static const std::set<std::string> kTypes{"", "container_t", "container_init_t",
                                            "container_kvm_t"};
  return seLinuxOptions(pod, kTypes);
}

std::optional<Forbidden> seLinuxOptions_1_31(const PodSpec& pod) {
  static const std::set<std::string> kTypes{"", "container_t", "container_init_t",
                                            "container_kvm_t", "container_engine_t"};
  return seLinuxOptions(pod, kTypes);
}

/// Before v1.19 seccomp was set by annotations only.
std::optional<Forbidden> seccompProfileBaseline_1_0(const PodSpec& pod) {
  const auto valid = [](const std::string& value) {
    return value == "runtime/default" || value == "docker/default" ||
           startsWith(value, "localhost/");
  };
  SortedSet forbidden;
  const auto inspect = [&](const std::string& key) {
    const auto found = pod.annotations.find(key);
    if (found != pod.annotations.end() && !valid(found->second)) {
      forbidden.insert(key + "=" + quote(found->second));
    }
  };
  inspect("seccomp.security.alpha.kubernetes.io/pod");
  visitContainers(pod, [&](const Container& container) {
    inspect("container.seccomp.security.alpha.kubernetes.io/" + container.name);
  });
  if (forbidden.empty()) return std::nullopt;
  return Forbidden{"seccompProfile", "forbidden " +
                                         pluralize("annotation", "annotations", forbidden.size()) +
                                         " " + join(list(forbidden), ", ")};
}

bool validSeccomp(const std::string& type) {
  return type == "Localhost" || type == "RuntimeDefault";
}

std::optional<Forbidden> seccompProfileBaseline_1_19(const PodSpec& pod) {
  std::vector<std::string> setters;
  SortedSet badValues;
  const auto& podType = pod.securityContext.seccompProfileType;
  if (podType && !validSeccomp(*podType)) {
    setters.push_back("pod");
    badValues.insert(*podType);
  }
  std::vector<std::string> badContainers;
  visitContainers(pod, [&](const Container& container) {
    const auto& type = container.securityContext.seccompProfileType;
    if (type && !validSeccomp(*type)) {
      badContainers.push_back(container.name);
      badValues.insert(*type);
    }
  });
  if (!badContainers.empty()) setters.push_back(containersPhrase(badContainers));
  if (setters.empty()) return std::nullopt;
  return Forbidden{"seccompProfile", join(setters, " and ") +
                                         " must not set securityContext.seccompProfile.type to " +
                                         joinQuote(list(badValues))};
}

/// The namespaced, isolated ("safe") sysctls and the policy version that first allows each.
struct SafeSysctl {
  std::string_view name;
  int sinceMinor;
};

constexpr SafeSysctl kSafeSysctls[] = {
    {"kernel.shm_rmid_forced", 0},
    {"net.ipv4.ip_local_port_range", 0},
    {"net.ipv4.tcp_syncookies", 0},
    {"net.ipv4.ping_group_range", 0},
    {"net.ipv4.ip_unprivileged_port_start", 0},
    {"net.ipv4.ip_local_reserved_ports", 27},
    {"net.ipv4.tcp_keepalive_time", 29},
    {"net.ipv4.tcp_fin_timeout", 29},
    {"net.ipv4.tcp_keepalive_intvl", 29},
    {"net.ipv4.tcp_keepalive_probes", 29},
    {"net.ipv4.tcp_rmem", 32},
    {"net.ipv4.tcp_wmem", 32},
    {"net.ipv4.tcp_slow_start_after_idle", 37},
    {"net.ipv4.tcp_notsent_lowat", 37},
};

/// sysctlsV1Dot0, V1Dot27, V1Dot29, V1Dot32 and V1Dot37: one function per safe set.
template <int Minor>
std::optional<Forbidden> sysctlsV1Dot(const PodSpec& pod) {
  std::vector<std::string> forbidden;
  for (const std::string& name : pod.securityContext.sysctls) {
    const bool safe =
        std::any_of(std::begin(kSafeSysctls), std::end(kSafeSysctls),
                    [&](const SafeSysctl& s) { return s.name == name && s.sinceMinor <= Minor; });
    if (!safe) forbidden.push_back(name);
  }
  if (forbidden.empty()) return std::nullopt;
  return Forbidden{"forbidden sysctls", join(forbidden, ", ")};
}

std::optional<Forbidden> windowsHostProcess_1_0(const PodSpec& pod) {
  std::vector<std::string> setters;
  if (pod.securityContext.windowsHostProcess == true) setters.push_back("pod");
  std::vector<std::string> badContainers;
  visitContainers(pod, [&](const Container& container) {
    if (container.securityContext.windowsHostProcess == true) {
      badContainers.push_back(container.name);
    }
  });
  if (!badContainers.empty()) setters.push_back(containersPhrase(badContainers));
  if (setters.empty()) return std::nullopt;
  return Forbidden{
      "hostProcess",
      join(setters, " and ") + " must not set securityContext.windowsOptions.hostProcess=true"};
}

// ---------------------------------------------------------------------------------------------
// Restricted.

std::optional<Forbidden> allowPrivilegeEscalation_1_8(const PodSpec& pod) {
  std::vector<std::string> badContainers;
  visitContainers(pod, [&](const Container& container) {
    if (container.securityContext.allowPrivilegeEscalation != false) {
      badContainers.push_back(container.name);
    }
  });
  if (badContainers.empty()) return std::nullopt;
  return Forbidden{
      "allowPrivilegeEscalation != false",
      containersPhrase(badContainers) + " must set securityContext.allowPrivilegeEscalation=false"};
}

std::optional<Forbidden> allowPrivilegeEscalation_1_25(const PodSpec& pod) {
  if (isWindows(pod)) return std::nullopt;
  return allowPrivilegeEscalation_1_8(pod);
}

std::optional<Forbidden> capabilitiesRestricted_1_22(const PodSpec& pod) {
  std::vector<std::string> missingDropAll;
  std::vector<std::string> addingForbidden;
  SortedSet forbidden;
  visitContainers(pod, [&](const Container& container) {
    const auto& context = container.securityContext;
    if (!context.hasCapabilities) {
      missingDropAll.push_back(container.name);
      return;
    }
    const auto& drop = context.capabilities.drop;
    if (std::find(drop.begin(), drop.end(), "ALL") == drop.end()) {
      missingDropAll.push_back(container.name);
    }
    bool adds = false;
    for (const std::string& capability : context.capabilities.add) {
      if (capability != "NET_BIND_SERVICE") {
        adds = true;
        forbidden.insert(capability);
      }
    }
    if (adds) addingForbidden.push_back(container.name);
  });
  std::vector<std::string> details;
  if (!missingDropAll.empty()) {
    details.push_back(containersPhrase(missingDropAll) +
                      " must set securityContext.capabilities.drop=[\"ALL\"]");
  }
  if (!addingForbidden.empty()) {
    details.push_back(containersPhrase(addingForbidden) + " must not include " +
                      joinQuote(list(forbidden)) + " in securityContext.capabilities.add");
  }
  if (details.empty()) return std::nullopt;
  return Forbidden{"unrestricted capabilities", join(details, "; ")};
}

std::optional<Forbidden> capabilitiesRestricted_1_25(const PodSpec& pod) {
  if (isWindows(pod)) return std::nullopt;
  return capabilitiesRestricted_1_22(pod);
}

std::optional<Forbidden> restrictedVolumes_1_0(const PodSpec& pod) {
  // `image` was added to the v1.0 function upstream (Kubernetes 1.33), so it is allowed at
  // every version, as PSA allows it.
  static constexpr std::string_view kAllowed[] = {
      "configMap", "csi",   "downwardAPI",           "emptyDir",
      "ephemeral", "image", "persistentVolumeClaim", "projected",
      "secret"};
  static constexpr std::string_view kRestricted[] = {"hostPath",
                                                     "gcePersistentDisk",
                                                     "awsElasticBlockStore",
                                                     "gitRepo",
                                                     "nfs",
                                                     "iscsi",
                                                     "glusterfs",
                                                     "rbd",
                                                     "flexVolume",
                                                     "cinder",
                                                     "cephfs",
                                                     "flocker",
                                                     "fc",
                                                     "azureFile",
                                                     "vsphereVolume",
                                                     "quobyte",
                                                     "azureDisk",
                                                     "photonPersistentDisk",
                                                     "portworxVolume",
                                                     "scaleIO",
                                                     "storageos"};
  std::vector<std::string> badVolumes;
  SortedSet badTypes;
  for (const admission::Volume& volume : pod.volumes) {
    // A volume without a source is defaulted to emptyDir by the API server.
    if (volume.sources.empty()) continue;
    const auto has = [&](std::string_view source) { return hasSource(volume, source); };
    if (std::any_of(std::begin(kAllowed), std::end(kAllowed), has)) continue;
    badVolumes.push_back(volume.name);
    const auto* type = std::find_if(std::begin(kRestricted), std::end(kRestricted), has);
    badTypes.insert(type == std::end(kRestricted) ? "unknown" : std::string(*type));
  }
  if (badVolumes.empty()) return std::nullopt;
  return Forbidden{
      "restricted volume types",
      pluralize("volume", "volumes", badVolumes.size()) + " " + joinQuote(badVolumes) + " " +
          pluralize("uses", "use", badVolumes.size()) + " " +
          pluralize("restricted volume type", "restricted volume types", badTypes.size()) + " " +
          joinQuote(list(badTypes))};
}

std::optional<Forbidden> runAsNonRoot_1_0(const PodSpec& pod) {
  std::vector<std::string> setters;
  bool podRunAsNonRoot = false;
  if (const auto& podValue = pod.securityContext.runAsNonRoot) {
    if (!*podValue) {
      setters.push_back("pod");
    } else {
      podRunAsNonRoot = true;
    }
  }
  std::vector<std::string> explicitlyBad;
  std::vector<std::string> implicitlyBad;
  visitContainers(pod, [&](const Container& container) {
    const auto& value = container.securityContext.runAsNonRoot;
    if (value) {
      if (!*value) explicitlyBad.push_back(container.name);
    } else if (!podRunAsNonRoot) {
      implicitlyBad.push_back(container.name);
    }
  });
  if (!explicitlyBad.empty()) setters.push_back(containersPhrase(explicitlyBad));
  if (!setters.empty()) {
    return Forbidden{"runAsNonRoot != true",
                     join(setters, " and ") + " must not set securityContext.runAsNonRoot=false"};
  }
  if (!implicitlyBad.empty()) {
    return Forbidden{"runAsNonRoot != true", "pod or " + containersPhrase(implicitlyBad) +
                                                 " must set securityContext.runAsNonRoot=true"};
  }
  return std::nullopt;
}

std::optional<Forbidden> runAsNonRoot_1_35(const PodSpec& pod) {
  // Root in a user namespace is an unprivileged user on the node (KEP-127).
  if (inUserNamespace(pod)) return std::nullopt;
  return runAsNonRoot_1_0(pod);
}

std::optional<Forbidden> runAsUser_1_23(const PodSpec& pod) {
  std::vector<std::string> setters;
  if (pod.securityContext.runAsUser == 0) setters.push_back("pod");
  std::vector<std::string> badContainers;
  visitContainers(pod, [&](const Container& container) {
    if (container.securityContext.runAsUser == 0) badContainers.push_back(container.name);
  });
  if (!badContainers.empty()) setters.push_back(containersPhrase(badContainers));
  if (setters.empty()) return std::nullopt;
  return Forbidden{"runAsUser=0", join(setters, " and ") + " must not set runAsUser=0"};
}

std::optional<Forbidden> runAsUser_1_35(const PodSpec& pod) {
  if (inUserNamespace(pod)) return std::nullopt;
  return runAsUser_1_23(pod);
}

std::optional<Forbidden> seccompProfileRestricted_1_19(const PodSpec& pod) {
  std::vector<std::string> setters;
  SortedSet badValues;
  bool podSeccompSet = false;
  if (const auto& podType = pod.securityContext.seccompProfileType) {
    if (!validSeccomp(*podType)) {
      setters.push_back("pod");
      badValues.insert(*podType);
    } else {
      podSeccompSet = true;
    }
  }
  std::vector<std::string> explicitlyBad;
  std::vector<std::string> implicitlyBad;
  visitContainers(pod, [&](const Container& container) {
    const auto& type = container.securityContext.seccompProfileType;
    if (type) {
      if (!validSeccomp(*type)) {
        explicitlyBad.push_back(container.name);
        badValues.insert(*type);
      }
    } else if (!podSeccompSet) {
      implicitlyBad.push_back(container.name);
    }
  });
  if (!explicitlyBad.empty()) setters.push_back(containersPhrase(explicitlyBad));
  if (!setters.empty()) {
    return Forbidden{"seccompProfile", join(setters, " and ") +
                                           " must not set securityContext.seccompProfile.type to " +
                                           joinQuote(list(badValues))};
  }
  if (!implicitlyBad.empty()) {
    return Forbidden{"seccompProfile",
                     "pod or " + containersPhrase(implicitlyBad) +
                         " must set securityContext.seccompProfile.type to \"RuntimeDefault\" or "
                         "\"Localhost\""};
  }
  return std::nullopt;
}

std::optional<Forbidden> seccompProfileRestricted_1_25(const PodSpec& pod) {
  if (isWindows(pod)) return std::nullopt;
  return seccompProfileRestricted_1_19(pod);
}

// ---------------------------------------------------------------------------------------------
// The registry: PSA's check list at Kubernetes 1.37, baseline then restricted, each in the
// order of its upstream file name (the order PSA reports them in).

const std::vector<CheckDefinition>& definitions() {
  static const std::vector<CheckDefinition> kChecks = {
      {"appArmorProfile", Level::kBaseline, {{0, appArmorProfile_1_0}}},
      {"capabilities_baseline", Level::kBaseline, {{0, capabilitiesBaseline_1_0}}},
      {"hostNamespaces", Level::kBaseline, {{0, hostNamespaces_1_0}}},
      {"hostPathVolumes", Level::kBaseline, {{0, hostPathVolumes_1_0}}},
      {"hostPorts", Level::kBaseline, {{0, hostPorts_1_0}}},
      {"hostProbesAndHostLifecycle", Level::kBaseline, {{34, hostProbesAndHostLifecycleV1Dot34}}},
      {"privileged", Level::kBaseline, {{0, privileged_1_0}}},
      {"procMount", Level::kBaseline, {{0, procMount_1_0}, {35, procMount1_35baseline}}},
      {"seLinuxOptions", Level::kBaseline, {{0, seLinuxOptions_1_0}, {31, seLinuxOptions_1_31}}},
      {"seccompProfile_baseline",
       Level::kBaseline,
       {{0, seccompProfileBaseline_1_0}, {19, seccompProfileBaseline_1_19}}},
      {"sysctls",
       Level::kBaseline,
       {{0, sysctlsV1Dot<0>},
        {27, sysctlsV1Dot<27>},
        {29, sysctlsV1Dot<29>},
        {32, sysctlsV1Dot<32>},
        {37, sysctlsV1Dot<37>}}},
      {"windowsHostProcess", Level::kBaseline, {{0, windowsHostProcess_1_0}}},
      {"allowPrivilegeEscalation",
       Level::kRestricted,
       {{8, allowPrivilegeEscalation_1_8}, {25, allowPrivilegeEscalation_1_25}}},
      {"capabilities_restricted",
       Level::kRestricted,
       {{22, capabilitiesRestricted_1_22, {"capabilities_baseline"}},
        {25, capabilitiesRestricted_1_25, {"capabilities_baseline"}}}},
      {"procMount_restricted", Level::kRestricted, {{35, procMount_1_0, {"procMount"}}}},
      {"restrictedVolumes", Level::kRestricted, {{0, restrictedVolumes_1_0, {"hostPathVolumes"}}}},
      {"runAsNonRoot", Level::kRestricted, {{0, runAsNonRoot_1_0}, {35, runAsNonRoot_1_35}}},
      {"runAsUser", Level::kRestricted, {{23, runAsUser_1_23}, {35, runAsUser_1_35}}},
      {"seccompProfile_restricted",
       Level::kRestricted,
       {{19, seccompProfileRestricted_1_19, {"seccompProfile_baseline"}},
        {25, seccompProfileRestricted_1_25, {"seccompProfile_baseline"}}}},
  };
  return kChecks;
}

}  // namespace

std::vector<std::string_view> checkIds() {
  std::vector<std::string_view> ids;
  for (const CheckDefinition& definition : definitions()) ids.push_back(definition.id);
  return ids;
}

std::vector<Violation> evaluate(Level level, int minor, const PodSpec& pod,
                                const std::set<std::string, std::less<>>& exclude) {
  struct Selected {
    std::string_view id;
    const VersionedCheck* version;
  };
  std::vector<Selected> selected;
  std::set<std::string_view> overridden;
  for (const CheckDefinition& definition : definitions()) {
    if (definition.level == Level::kRestricted && level == Level::kBaseline) continue;
    // An excluded check overrides nothing: excluding restrictedVolumes must not also lift
    // the hostPath ban it would have replaced.
    if (exclude.contains(definition.id)) continue;
    const VersionedCheck* chosen = nullptr;
    for (const VersionedCheck& version : definition.versions) {
      if (version.minimumMinor <= minor) chosen = &version;
    }
    if (chosen == nullptr) continue;  // The check did not exist yet at this version.
    selected.push_back({definition.id, chosen});
    overridden.insert(chosen->overrides.begin(), chosen->overrides.end());
  }
  std::vector<Violation> violations;
  for (const Selected& check : selected) {
    if (overridden.contains(check.id)) continue;
    if (auto forbidden = check.version->check(pod)) {
      violations.push_back({check.id, std::move(*forbidden)});
    }
  }
  return violations;
}

}  // namespace imagegate::policy::pss
