#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "admission/review.h"

namespace imagegate::admission {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string readData(const std::string& name) {
  std::ifstream in(std::string(IMAGEGATE_SOURCE_DIR) + "/tests/data/admission/" + name);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

json review(json request) {
  return {{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"request", request}};
}

json podRequest(json spec, std::string operation = "CREATE") {
  return {{"uid", "u-1"},
          {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
          {"namespace", "ns"},
          {"operation", operation},
          {"object",
           {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "p"}}}, {"spec", spec}}}};
}

const AdmissionRequest& requestOf(const DecodedReview& decoded) {
  return std::get<AdmissionRequest>(decoded.request);
}

std::string problemOf(const std::string& body) {
  const DecodedReview decoded = decodeReview(body);
  const auto* malformed = std::get_if<MalformedRequest>(&decoded.request);
  return malformed == nullptr ? "" : malformed->problem;
}

// Policies match on the request's namespace; a namespaced create may leave it to the object.
TEST(DecodeReview, NamespaceFallsBackToTheObjects) {
  json request = podRequest(json::object());
  request.erase("namespace");
  request["object"]["metadata"]["namespace"] = "team-a";
  EXPECT_EQ(requestOf(decodeReview(review(request).dump())).namespaceName, "team-a");
  request["namespace"] = "team-b";  // the request's own comes first
  EXPECT_EQ(requestOf(decodeReview(review(request).dump())).namespaceName, "team-b");
}

TEST(DecodeReview, PodWithAllContainerKinds) {
  const DecodedReview decoded = decodeReview(readData("pod-deny.json"));
  const AdmissionRequest& request = requestOf(decoded);
  EXPECT_EQ(request.uid, "b0c1a2f4-3c55-4a50-9e6a-0d0f4a6f2c11");
  EXPECT_EQ(request.kind, "Pod");
  EXPECT_EQ(request.namespaceName, "default");
  EXPECT_EQ(request.operation, Operation::kCreate);
  EXPECT_EQ(request.userName, "alice");
  ASSERT_TRUE(request.object && request.object->podSpec);
  EXPECT_EQ(request.object->labels.at("app"), "web");
  const PodSpec& pod = *request.object->podSpec;
  ASSERT_EQ(pod.containers.size(), 3u);
  EXPECT_EQ(pod.containers[0].name, "app");
  EXPECT_EQ(pod.containers[0].securityContext.runAsUser, 0);
  EXPECT_EQ(pod.containers[1].securityContext.privileged, true);
  EXPECT_EQ(pod.containers[2].kind, ContainerKind::kInitContainer);
  EXPECT_EQ(pod.containers[2].path, "spec.initContainers[0]");
  EXPECT_FALSE(pod.containers[2].securityContext.allowPrivilegeEscalation.has_value());
}

TEST(DecodeReview, EphemeralContainersAndPodSecurityContext) {
  const json spec = {{"hostPID", true},
                     {"securityContext", {{"runAsNonRoot", true}, {"runAsUser", 1000}}},
                     {"containers", {{{"name", "a"}, {"image", "a"}}}},
                     {"ephemeralContainers", {{{"name", "debug"}, {"image", "busybox"}}}}};
  const PodSpec pod = *requestOf(decodeReview(review(podRequest(spec)).dump())).object->podSpec;
  EXPECT_TRUE(pod.hostPID);
  EXPECT_FALSE(pod.hostNetwork);
  EXPECT_EQ(pod.securityContext.runAsNonRoot, true);
  EXPECT_EQ(pod.securityContext.runAsUser, 1000);
  ASSERT_EQ(pod.containers.size(), 2u);
  EXPECT_EQ(pod.containers[1].kind, ContainerKind::kEphemeralContainer);
}

TEST(DecodeReview, CapabilitiesAreKeptAsWritten) {
  const json capabilities = {{"add", {"SYS_ADMIN", "net_bind_service"}}, {"drop", {"ALL"}}};
  const json spec = {
      {"containers",
       {{{"name", "a"}, {"image", "a"}, {"securityContext", {{"capabilities", capabilities}}}},
        {{"name", "b"}, {"image", "b"}}}}};
  const PodSpec pod = *requestOf(decodeReview(review(podRequest(spec)).dump())).object->podSpec;
  EXPECT_THAT(pod.containers[0].securityContext.capabilities.add,
              ElementsAre("SYS_ADMIN", "net_bind_service"));
  EXPECT_THAT(pod.containers[0].securityContext.capabilities.drop, ElementsAre("ALL"));
  EXPECT_THAT(pod.containers[1].securityContext.capabilities.add, IsEmpty());
  const json wrong = {{"containers",
                       {{{"name", "a"},
                         {"image", "a"},
                         {"securityContext", {{"capabilities", {{"add", {"SYS_ADMIN", 7}}}}}}}}}};
  EXPECT_EQ(problemOf(review(podRequest(wrong)).dump()),
            "request.object.spec.containers[0].securityContext.capabilities.add[1] must be a "
            "string");
}

TEST(DecodeReview, DeploymentTemplate) {
  const AdmissionRequest request = requestOf(decodeReview(readData("deployment-deny.json")));
  ASSERT_TRUE(request.object->podSpec);
  EXPECT_TRUE(request.object->podSpec->hostNetwork);
  EXPECT_EQ(request.object->podSpec->path, "spec.template.spec");
  EXPECT_EQ(request.object->labels.at("tier"), "web");
}

TEST(DecodeReview, CronJobTemplateAndDryRun) {
  const AdmissionRequest request = requestOf(decodeReview(readData("cronjob-deny.json")));
  EXPECT_TRUE(request.dryRun);
  EXPECT_EQ(request.operation, Operation::kUpdate);
  ASSERT_TRUE(request.object->podSpec);
  EXPECT_EQ(request.object->podSpec->containers.at(0).image, "python:3.12");
}

TEST(DecodeReview, EveryWorkloadKindHasItsTemplateFound) {
  const json templateSpec = {
      {"template", {{"spec", {{"containers", {{{"name", "c"}, {"image", "x"}}}}}}}}};
  for (const auto& [group, kind] :
       std::vector<std::pair<std::string, std::string>>{{"apps", "Deployment"},
                                                        {"apps", "StatefulSet"},
                                                        {"apps", "DaemonSet"},
                                                        {"apps", "ReplicaSet"},
                                                        {"", "ReplicationController"},
                                                        {"batch", "Job"}}) {
    json request = podRequest({});
    request["kind"] = {{"group", group}, {"version", "v1"}, {"kind", kind}};
    request["object"]["spec"] = templateSpec;
    const AdmissionRequest decoded = requestOf(decodeReview(review(request).dump()));
    ASSERT_TRUE(decoded.object->podSpec) << kind;
    EXPECT_EQ(decoded.object->podSpec->containers.size(), 1u) << kind;
  }
}

TEST(DecodeReview, OtherKindsHaveNoPodSpec) {
  json request = podRequest({});
  request["kind"] = {{"group", ""}, {"version", "v1"}, {"kind", "ConfigMap"}};
  request["object"] = {{"data", {{"a", "b"}}}};
  EXPECT_FALSE(requestOf(decodeReview(review(request).dump())).object->podSpec);
}

TEST(DecodeReview, StatusSubresourceIsNotEvaluated) {
  json request = podRequest({{"containers", {{{"name", "a"}, {"image", "a"}}}}}, "UPDATE");
  request["subResource"] = "status";
  EXPECT_FALSE(requestOf(decodeReview(review(request).dump())).object->podSpec);
  request["subResource"] = "ephemeralcontainers";
  EXPECT_TRUE(requestOf(decodeReview(review(request).dump())).object->podSpec);
}

TEST(DecodeReview, DeleteAndConnectCarryNoObject) {
  for (const char* op : {"DELETE", "CONNECT"}) {
    json request = podRequest({});
    request["operation"] = op;
    request.erase("object");
    const AdmissionRequest decoded = requestOf(decodeReview(review(request).dump()));
    EXPECT_FALSE(decoded.object.has_value()) << op;
  }
}

TEST(DecodeReview, NullFieldsCountAsAbsent) {
  const json spec = {
      {"securityContext", nullptr},
      {"containers",
       {{{"name", "a"}, {"image", "a"}, {"securityContext", {{"runAsUser", nullptr}}}}}},
      {"initContainers", nullptr}};
  const PodSpec pod = *requestOf(decodeReview(review(podRequest(spec)).dump())).object->podSpec;
  ASSERT_EQ(pod.containers.size(), 1u);
  EXPECT_FALSE(pod.containers[0].securityContext.runAsUser);
}

TEST(DecodeReview, UnreadableBodiesThrow) {
  EXPECT_THROW(decodeReview("this is not json"), UnreadableReview);
  EXPECT_THROW(decodeReview(""), UnreadableReview);
  EXPECT_THROW(decodeReview("[1,2,3]"), UnreadableReview);
  EXPECT_THROW(decodeReview(R"({"kind":"Pod","apiVersion":"v1"})"), UnreadableReview);
  EXPECT_THROW(decodeReview(R"({"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"})"),
               UnreadableReview);
  EXPECT_THROW(decodeReview(readData("malformed-missing-uid.json")), UnreadableReview);
  EXPECT_THROW(
      decodeReview(
          R"({"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":7}})"),
      UnreadableReview);
}

TEST(DecodeReview, UnreadableMessagesSayWhatIsWrong) {
  try {
    decodeReview("{\"a\": ");
    FAIL();
  } catch (const UnreadableReview& e) {
    EXPECT_THAT(e.what(), HasSubstr("not valid JSON"));
    EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("json.exception")));
  }
}

// nlohmann reports a number it cannot represent as out_of_range, not parse_error (found by
// tests/fuzz): it must be an unreadable body like any other, not an escaping library exception.
TEST(DecodeReview, NumbersTooLargeToRepresentAreUnreadable) {
  for (const std::string& number :
       {std::string("1e400"), std::string("-1e400"), std::string(400, '9') + ".5"}) {
    try {
      decodeReview(R"({"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":)"
                   R"({"uid":"u","x":)" +
                   number + "}}");
      ADD_FAILURE() << number;
    } catch (const UnreadableReview& e) {
      EXPECT_THAT(e.what(), HasSubstr("not valid JSON: number overflow")) << number;
      EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("json.exception")));
    }
  }
}

TEST(DecodeReview, DeepNestingIsRejectedWithoutParsing) {
  const std::string deep(200'000, '[');
  try {
    decodeReview(deep);
    FAIL();
  } catch (const UnreadableReview& e) {
    EXPECT_THAT(e.what(), HasSubstr("nested deeper than 64"));
  }
  // Brackets inside strings do not count.
  json request = podRequest({{"containers",
                              {{{
                                    "name",
                                    std::string(500, '['),
                                },
                                {"image", "a"}}}}});
  EXPECT_NO_THROW(decodeReview(review(request).dump()));
}

TEST(DecodeReview, WrongTypesBecomeAnswerableProblems) {
  EXPECT_EQ(problemOf(readData("malformed-wrong-types.json")),
            "request.object.spec.containers[0].image must be a string");
  EXPECT_EQ(problemOf(review(podRequest({{"containers", "nginx"}})).dump()),
            "request.object.spec.containers must be an array");
  EXPECT_EQ(problemOf(review(podRequest({{"containers", {42}}})).dump()),
            "request.object.spec.containers[0] must be an object");
  EXPECT_EQ(problemOf(review(podRequest({{"hostPID", "yes"}})).dump()),
            "request.object.spec.hostPID must be a boolean");
  EXPECT_EQ(problemOf(review(podRequest({{"containers",
                                          {{{"name", "a"},
                                            {"image", "a"},
                                            {"securityContext", {{"runAsUser", 1.5}}}}}}}))
                          .dump()),
            "request.object.spec.containers[0].securityContext.runAsUser must be an integer");
  EXPECT_EQ(problemOf(review(podRequest({{"containers", {{{"name", "a"}}}}})).dump()),
            "request.object.spec.containers[0].image is required");
}

TEST(DecodeReview, MissingObjectOrOperationIsAnswerable) {
  json request = podRequest({});
  request.erase("object");
  EXPECT_EQ(problemOf(review(request).dump()), "request.object is required");
  request = podRequest({});
  request["operation"] = "PATCH";
  EXPECT_THAT(problemOf(review(request).dump()), HasSubstr("request.operation must be one of"));
  request = podRequest({});
  request["object"].erase("spec");
  EXPECT_EQ(problemOf(review(request).dump()), "request.object.spec is required");
  request = podRequest({});
  request["object"]["metadata"]["labels"] = {{"a", 1}};
  EXPECT_EQ(problemOf(review(request).dump()), "request.object.metadata.labels.a must be a string");
}

TEST(DecodeReview, ContainerCountIsBounded) {
  json containers = json::array();
  for (int i = 0; i < 5; ++i) containers.push_back({{"name", "c"}, {"image", "x"}});
  DecodeLimits limits;
  limits.maxContainers = 4;
  const DecodedReview decoded =
      decodeReview(review(podRequest({{"containers", containers}})).dump(), limits);
  EXPECT_THAT(std::get<MalformedRequest>(decoded.request).problem,
              HasSubstr("more than 4 containers"));
}

// A 3 MB body of empty objects would grow a DOM of hundreds of MB before any field is read.
TEST(DecodeReview, ValueCountIsBoundedBeforeParsing) {
  std::string bomb = R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","x":[)";
  for (int i = 0; i < 1000; ++i) bomb += "{},";
  bomb += "{}]}";
  DecodeLimits limits;
  limits.maxValues = 1000;
  EXPECT_THROW(
      {
        try {
          decodeReview(bomb, limits);
        } catch (const UnreadableReview& e) {
          EXPECT_THAT(e.what(), HasSubstr("more than 1000 JSON values"));
          throw;
        }
      },
      UnreadableReview);
  // The default leaves room for the largest objects the API server stores.
  EXPECT_NO_THROW(decodeReview(review(podRequest({})).dump()));
}

TEST(DecodeReview, PodSecurityStandardsFields) {
  const json spec = {
      {"hostUsers", false},
      {"os", {{"name", "windows"}}},
      {"securityContext",
       {{"seccompProfile", {{"type", "RuntimeDefault"}}},
        {"appArmorProfile", {{"type", "Localhost"}, {"localhostProfile", "p"}}},
        {"seLinuxOptions", {{"type", "container_t"}, {"level", "s0"}}},
        {"sysctls", {{{"name", "kernel.shm_rmid_forced"}, {"value", "1"}}}},
        {"windowsOptions", {{"hostProcess", false}}}}},
      {"volumes",
       {{{"name", "data"}, {"emptyDir", json::object()}},
        {{"name", "host"}, {"hostPath", {{"path", "/"}}}},
        {{"name", "defaulted"}, {"configMap", nullptr}}}},
      {"containers",
       {{{"name", "a"},
         {"image", "a"},
         {"ports", {{{"containerPort", 80}, {"hostPort", 8080}}, {{"containerPort", 81}}}},
         {"livenessProbe", {{"httpGet", {{"host", "10.0.0.1"}, {"port", 80}}}}},
         {"readinessProbe", {{"tcpSocket", {{"host", ""}, {"port", 80}}}}},
         {"lifecycle", {{"preStop", {{"httpGet", {{"host", "example.com"}, {"port", 80}}}}}}},
         {"securityContext",
          {{"seccompProfile", json::object()},
           {"procMount", "Unmasked"},
           {"capabilities", json::object()},
           {"seLinuxOptions", {{"user", "u"}, {"role", "r"}}},
           {"windowsOptions", {{"hostProcess", true}}}}}}}}};
  const AdmissionRequest request = requestOf(decodeReview(review(podRequest(spec)).dump()));
  const PodSpec& pod = *request.object->podSpec;
  EXPECT_EQ(pod.hostUsers, false);
  EXPECT_EQ(pod.osName, "windows");
  EXPECT_EQ(pod.securityContext.seccompProfileType, "RuntimeDefault");
  EXPECT_EQ(pod.securityContext.appArmorProfileType, "Localhost");
  EXPECT_EQ(pod.securityContext.seLinuxOptions->type, "container_t");
  EXPECT_EQ(pod.securityContext.seLinuxOptions->level, "s0");
  EXPECT_THAT(pod.securityContext.sysctls, ElementsAre("kernel.shm_rmid_forced"));
  EXPECT_EQ(pod.securityContext.windowsHostProcess, false);
  ASSERT_EQ(pod.volumes.size(), 3u);
  EXPECT_THAT(pod.volumes[0].sources, ElementsAre("emptyDir"));
  EXPECT_THAT(pod.volumes[1].sources, ElementsAre("hostPath"));
  EXPECT_THAT(pod.volumes[2].sources, IsEmpty());
  const Container& container = pod.containers.at(0);
  EXPECT_THAT(container.hostPorts, ElementsAre(8080));
  EXPECT_THAT(container.probeHosts, ElementsAre("10.0.0.1", "example.com"));
  const ContainerSecurityContext& context = container.securityContext;
  EXPECT_EQ(context.seccompProfileType, "");  // Written without a type.
  EXPECT_FALSE(context.appArmorProfileType);
  EXPECT_EQ(context.procMount, "Unmasked");
  EXPECT_TRUE(context.hasCapabilities);
  EXPECT_EQ(context.seLinuxOptions->user, "u");
  EXPECT_EQ(context.seLinuxOptions->role, "r");
  EXPECT_EQ(context.windowsHostProcess, true);
}

TEST(DecodeReview, PodAnnotationsComeFromThePodOrItsTemplate) {
  json request = podRequest({{"containers", {{{"name", "a"}, {"image", "a"}}}}});
  request["object"]["metadata"]["annotations"] = {{"k", "pod"}};
  EXPECT_EQ(requestOf(decodeReview(review(request).dump())).object->podSpec->annotations.at("k"),
            "pod");
  const json templateSpec = {{"containers", {{{"name", "a"}, {"image", "a"}}}}};
  const json cronJob = {{"uid", "u"},
                        {"kind", {{"group", "batch"}, {"version", "v1"}, {"kind", "CronJob"}}},
                        {"operation", "CREATE"},
                        {"object",
                         {{"metadata", {{"name", "c"}, {"annotations", {{"k", "cronjob"}}}}},
                          {"spec",
                           {{"jobTemplate",
                             {{"metadata", {{"annotations", {{"k", "job"}}}}},
                              {"spec",
                               {{"template",
                                 {{"metadata", {{"annotations", {{"k", "template"}}}}},
                                  {"spec", templateSpec}}}}}}}}}}}};
  EXPECT_EQ(requestOf(decodeReview(review(cronJob).dump())).object->podSpec->annotations.at("k"),
            "template");
}

TEST(DecodeReview, PodSecurityFieldsOfTheWrongTypeAreAnswerableProblems) {
  const auto problemWith = [](const json& spec) {
    return problemOf(review(podRequest(spec)).dump());
  };
  const json container = {{"name", "a"}, {"image", "a"}};
  EXPECT_EQ(problemWith({{"hostUsers", "false"}}),
            "request.object.spec.hostUsers must be a boolean");
  EXPECT_EQ(problemWith({{"os", {{"name", 1}}}}), "request.object.spec.os.name must be a string");
  EXPECT_EQ(problemWith({{"volumes", {{{"name", "v"}, {"hostPath", "/"}}}}}),
            "request.object.spec.volumes[0].hostPath must be an object");
  EXPECT_EQ(problemWith({{"securityContext", {{"sysctls", {"kernel.msgmax"}}}}}),
            "request.object.spec.securityContext.sysctls[0] must be an object");
  EXPECT_EQ(problemWith({{"securityContext", {{"seccompProfile", {{"type", true}}}}}}),
            "request.object.spec.securityContext.seccompProfile.type must be a string");
  json withPort = container;
  withPort["ports"] = {{{"hostPort", "80"}}};
  EXPECT_EQ(problemWith({{"containers", {withPort}}}),
            "request.object.spec.containers[0].ports[0].hostPort must be an integer");
  json withProbe = container;
  withProbe["startupProbe"] = {{"httpGet", {{"host", 1}}}};
  EXPECT_EQ(problemWith({{"containers", {withProbe}}}),
            "request.object.spec.containers[0].startupProbe.httpGet.host must be a string");
  json request = podRequest(json::object());
  request["object"]["metadata"]["annotations"] = {{"a", true}};
  EXPECT_EQ(problemOf(review(request).dump()),
            "request.object.metadata.annotations.a must be a string");
}

TEST(DecodeReview, VolumeCountIsBounded) {
  json volumes = json::array();
  for (int i = 0; i < 5; ++i) volumes.push_back({{"name", "v"}, {"emptyDir", json::object()}});
  DecodeLimits limits;
  limits.maxVolumes = 4;
  const DecodedReview decoded =
      decodeReview(review(podRequest({{"volumes", volumes}})).dump(), limits);
  EXPECT_THAT(std::get<MalformedRequest>(decoded.request).problem,
              HasSubstr("more than 4 volumes"));
}

TEST(DecodeReview, EnvelopeIsEchoed) {
  json body = review(podRequest({}));
  body["apiVersion"] = "admission.k8s.io/v1beta1";
  EXPECT_EQ(decodeReview(body.dump()).envelope.apiVersion, "admission.k8s.io/v1beta1");
}

}  // namespace
}  // namespace imagegate::admission
