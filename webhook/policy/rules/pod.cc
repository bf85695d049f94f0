// Rules on the pod as a whole, checked once per pod rather than per container.

#include "policy/rules/rule_support.h"

namespace imagegate::policy {
namespace {

class HostNamespaces final : public RuleCheck {
 public:
  explicit HostNamespaces(bool allowed) : allowed_(allowed) {}

  Finding check(const Target& target) const override {
    if (allowed_) return pass();
    const std::vector<std::string> shared = sharedNamespaces(target.pod);
    if (shared.empty()) return pass();
    std::string message = "shares the host's namespaces:";
    std::string remediation = "set";
    for (std::size_t i = 0; i < shared.size(); ++i) {
      message += (i == 0 ? " " : ", ") + shared[i] + " is true";
      remediation += (i == 0 ? " " : " and ") + shared[i] + ": false";
    }
    return fail(message, remediation + " (or remove the field)");
  }

 private:
  static std::vector<std::string> sharedNamespaces(const admission::PodSpec& pod) {
    std::vector<std::string> shared;
    if (pod.hostNetwork) shared.push_back(podField(pod, "hostNetwork"));
    if (pod.hostPID) shared.push_back(podField(pod, "hostPID"));
    if (pod.hostIPC) shared.push_back(podField(pod, "hostIPC"));
    return shared;
  }

  bool allowed_;
};

}  // namespace

std::vector<RuleType> podRuleTypes() {
  return {
      {"hostNamespaces", RuleLevel::kPod,
       "the pod shares none of the host's network, PID and IPC namespaces (unless allowed: true)",
       readAllowedBody<HostNamespaces>},
  };
}

}  // namespace imagegate::policy
