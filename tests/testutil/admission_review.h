#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

// AdmissionReviews of a Pod as the API server sends them to the webhook, and the raw HTTP
// request and answer around them, for the tests that drive a real `imagegate serve`.
namespace imagegate::testutil {

/// One container of the Pod: {"name": NAME, "image": IMAGE} plus `extra` fields of its spec
/// (e.g. a securityContext).
inline nlohmann::json podContainer(const std::string& name, const std::string& image,
                                   const nlohmann::json& extra = nlohmann::json::object()) {
  nlohmann::json container = extra;
  container["name"] = name;
  container["image"] = image;
  return container;
}

/// Containers without a securityContext, so the images' USER decides runAsNonRoot, from (name,
/// image) pairs.
inline nlohmann::json podContainers(
    const std::vector<std::pair<std::string, std::string>>& nameAndImage) {
  nlohmann::json containers = nlohmann::json::array();
  for (const auto& [name, image] : nameAndImage) containers.push_back(podContainer(name, image));
  return containers;
}

/// What varies between the Pods the tests send; the rest is a CREATE of pods/v1.
struct PodReview {
  std::string uid;
  nlohmann::json containers = nlohmann::json::array();  ///< see podContainers
  std::string podName = "app";
  std::string namespaceName = "shop";
  std::string username = "ci";
  nlohmann::json podSecurityContext = nullptr;  ///< null: the Pod sets none
};

/// An admission.k8s.io/v1 AdmissionReview of creating the Pod `pod` describes.
inline nlohmann::json podAdmissionReview(const PodReview& pod) {
  nlohmann::json spec = {{"containers", pod.containers}};
  if (!pod.podSecurityContext.is_null()) spec["securityContext"] = pod.podSecurityContext;
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", pod.uid},
            {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
            {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
            {"name", pod.podName},
            {"namespace", pod.namespaceName},
            {"operation", "CREATE"},
            {"userInfo", {{"username", pod.username}}},
            {"object",
             {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", pod.podName}, {"namespace", pod.namespaceName}}},
              {"spec", spec}}}}}};
}

/// The raw HTTP/1.1 request POSTing `body` to /validate`query` on its own connection.
inline std::string validateRequest(const std::string& body, const std::string& query = "") {
  return "POST /validate" + query +
         " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

/// The `response` of the AdmissionReview in a raw HTTP answer, or {"error": what came instead}.
inline nlohmann::json reviewResponseOf(const std::string& raw) {
  const std::size_t bodyStart = raw.find("\r\n\r\n");
  if (bodyStart == std::string::npos) return {{"error", "no HTTP response: " + raw}};
  const nlohmann::json body = nlohmann::json::parse(raw.substr(bodyStart + 4), nullptr, false);
  if (!body.is_object() || !body.contains("response")) {
    return {{"error", "no AdmissionReview in: " + raw}};
  }
  return body["response"];
}

}  // namespace imagegate::testutil
