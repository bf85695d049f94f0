// The SAX decoder (webhook/admission/review.cc) keeps only what rules read and skips the rest as
// it streams by; a key missing from one of its tables would silently drop a field such as
// `privileged`. These tests decode every review body the repository has (the admission
// fixtures, every rule fixture as a Pod, a Deployment and a CronJob, the bench's body and, when
// ../shared/peer-cases is there, every Kubernetes object in the peer cases) with it and with the
// DOM decoder it replaced (tests/testutil/dom_review_decoder.h), and require the same model,
// field by field; then the same with every value of each body replaced by null or by a value of
// the wrong type, one at a time and two at a time, which must give the same model or the same
// problem; and with the keys of every object in reverse order.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "admission/review.h"
#include "testutil/dom_review_decoder.h"
#include "testutil/yaml_json.h"

namespace imagegate::admission {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

const fs::path kSourceDir = IMAGEGATE_SOURCE_DIR;

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// --- A canonical dump of the model, so that a difference reads as a diff of two JSON texts.

json dump(const std::optional<std::string>& value) { return value ? json(*value) : json(); }
json dump(const std::optional<bool>& value) { return value ? json(*value) : json(); }
json dump(const std::optional<std::int64_t>& value) { return value ? json(*value) : json(); }
json dump(const std::optional<SeLinuxOptions>& value) {
  if (!value) return nullptr;
  return {
      {"user", value->user}, {"role", value->role}, {"type", value->type}, {"level", value->level}};
}

json dump(const ContainerSecurityContext& context) {
  return {{"runAsNonRoot", dump(context.runAsNonRoot)},
          {"runAsUser", dump(context.runAsUser)},
          {"runAsGroup", dump(context.runAsGroup)},
          {"privileged", dump(context.privileged)},
          {"allowPrivilegeEscalation", dump(context.allowPrivilegeEscalation)},
          {"readOnlyRootFilesystem", dump(context.readOnlyRootFilesystem)},
          {"capabilities.add", context.capabilities.add},
          {"capabilities.drop", context.capabilities.drop},
          {"hasCapabilities", context.hasCapabilities},
          {"seccompProfileType", dump(context.seccompProfileType)},
          {"appArmorProfileType", dump(context.appArmorProfileType)},
          {"seLinuxOptions", dump(context.seLinuxOptions)},
          {"procMount", dump(context.procMount)},
          {"windowsHostProcess", dump(context.windowsHostProcess)}};
}

json dump(const PodSecurityContext& context) {
  return {{"runAsNonRoot", dump(context.runAsNonRoot)},
          {"runAsUser", dump(context.runAsUser)},
          {"runAsGroup", dump(context.runAsGroup)},
          {"seccompProfileType", dump(context.seccompProfileType)},
          {"appArmorProfileType", dump(context.appArmorProfileType)},
          {"seLinuxOptions", dump(context.seLinuxOptions)},
          {"sysctls", context.sysctls},
          {"windowsHostProcess", dump(context.windowsHostProcess)}};
}

json dump(const PodSpec& pod) {
  json containers = json::array();
  for (const Container& container : pod.containers) {
    containers.push_back({{"kind", std::string(describe(container.kind))},
                          {"name", container.name},
                          {"image", container.image},
                          {"securityContext", dump(container.securityContext)},
                          {"hostPorts", container.hostPorts},
                          {"probeHosts", container.probeHosts},
                          {"path", container.path}});
  }
  json volumes = json::array();
  for (const Volume& volume : pod.volumes) {
    volumes.push_back({{"name", volume.name}, {"sources", volume.sources}});
  }
  return {{"hostNetwork", pod.hostNetwork},
          {"hostPID", pod.hostPID},
          {"hostIPC", pod.hostIPC},
          {"hostUsers", dump(pod.hostUsers)},
          {"osName", dump(pod.osName)},
          {"securityContext", dump(pod.securityContext)},
          {"volumes", volumes},
          {"containers", containers},
          {"annotations", pod.annotations},
          {"path", pod.path}};
}

json dump(const DecodedReview& decoded) {
  json out = {{"envelope", {decoded.envelope.apiVersion, decoded.envelope.kind}}};
  if (const auto* malformed = std::get_if<MalformedRequest>(&decoded.request)) {
    out["malformed"] = {{"uid", malformed->uid}, {"problem", malformed->problem}};
    return out;
  }
  const auto& request = std::get<AdmissionRequest>(decoded.request);
  out["request"] = {{"uid", request.uid},
                    {"kind", {request.kindGroup, request.kindVersion, request.kind}},
                    {"subResource", request.subResource},
                    {"namespace", request.namespaceName},
                    {"name", request.name},
                    {"operation", static_cast<int>(request.operation)},
                    {"dryRun", request.dryRun},
                    {"userName", request.userName}};
  if (request.object) {
    const ReviewedObject& object = *request.object;
    out["object"] = {{"apiVersion", object.apiVersion},
                     {"kind", object.kind},
                     {"name", object.name},
                     {"namespace", object.namespaceName},
                     {"labels", object.labels},
                     {"podSpec", object.podSpec ? dump(*object.podSpec) : json()}};
  }
  return out;
}

/// Decodes `body` both ways: the same model, or the same UnreadableReview message.
void expectSameDecoding(const std::string& body, const std::string& what,
                        const DecodeLimits& limits = {}) {
  std::optional<DecodedReview> dom, sax;
  std::string domError, saxError;
  try {
    dom = testutil::dom_review::decodeReview(body, limits);
  } catch (const UnreadableReview& e) {
    domError = e.what();
  }
  try {
    sax = decodeReview(body, limits);
  } catch (const UnreadableReview& e) {
    saxError = e.what();
  }
  ASSERT_EQ(saxError, domError) << what;
  if (!dom) return;
  ASSERT_TRUE(sax) << what;
  EXPECT_EQ(dump(*sax).dump(1), dump(*dom).dump(1)) << what;
  EXPECT_TRUE(*sax == *dom) << what << ": a field the dump does not show differs";
}

// --- Review bodies.

json reviewOf(json request) {
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request", std::move(request)}};
}

/// request.kind from an object's apiVersion ("apps/v1", "v1") and kind.
json groupVersionKind(const json& object) {
  const std::string apiVersion = object.value("apiVersion", "");
  const auto slash = apiVersion.find('/');
  return {{"group", slash == std::string::npos ? "" : apiVersion.substr(0, slash)},
          {"version", slash == std::string::npos ? apiVersion : apiVersion.substr(slash + 1)},
          {"kind", object.value("kind", "")}};
}

/// A CREATE of `object`, and an UPDATE with a changed copy as oldObject (the SAX decoder skips
/// oldObject: nothing reads it).
std::vector<json> reviewsOfObject(const json& object) {
  json create = {
      {"uid", "equivalence"},  {"kind", groupVersionKind(object)},     {"namespace", "default"},
      {"operation", "CREATE"}, {"userInfo", {{"username", "tester"}}}, {"object", object}};
  json update = create;
  update["operation"] = "UPDATE";
  update["oldObject"] = object;
  update["oldObject"]["spec"] = {{"containers", {{{"name", "old"}, {"privileged", true}}}}};
  return {reviewOf(create), reviewOf(update)};
}

/// A rule fixture's pod as a Pod (as tests/unit/policy/rule_fixtures_test.cc builds it), as the
/// template of a Deployment and as the job template of a CronJob.
std::vector<json> objectsOfRuleFixture(const YAML::Node& doc) {
  json spec = doc["pod"] ? testutil::toJson(doc["pod"]) : json::object();
  if (doc["container"]) {
    json container = testutil::toJson(doc["container"]);
    if (!container.contains("name")) container["name"] = "app";
    spec["containers"] = json::array({container});
  }
  const json metadata = doc["metadata"] ? testutil::toJson(doc["metadata"]) : json::object();
  json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", metadata}, {"spec", spec}};
  const json podTemplate = {{"metadata", metadata}, {"spec", spec}};
  json deployment = {{"apiVersion", "apps/v1"},
                     {"kind", "Deployment"},
                     {"metadata", {{"name", "d"}, {"labels", {{"app", "d"}}}}},
                     {"spec", {{"replicas", 2}, {"template", podTemplate}}}};
  json cronJob = {
      {"apiVersion", "batch/v1"},
      {"kind", "CronJob"},
      {"metadata", {{"generateName", "c-"}}},
      {"spec",
       {{"schedule", "* * * * *"}, {"jobTemplate", {{"spec", {{"template", podTemplate}}}}}}}};
  return {pod, deployment, cronJob};
}

struct Body {
  std::string what;  ///< Where it comes from, for messages.
  std::string text;
};

std::vector<Body> repositoryBodies() {
  std::vector<Body> bodies;
  for (const auto& entry : fs::directory_iterator(kSourceDir / "tests/data/admission")) {
    bodies.push_back({entry.path().string(), readFile(entry.path())});
  }
  bodies.push_back({"bench/pod3.json", readFile(kSourceDir / "bench/pod3.json")});
  std::vector<fs::path> fixtures;
  for (const auto& entry : fs::recursive_directory_iterator(kSourceDir / "tests/data/rules")) {
    if (entry.path().extension() == ".yaml") fixtures.push_back(entry.path());
  }
  std::sort(fixtures.begin(), fixtures.end());
  for (const fs::path& path : fixtures) {
    for (const json& object : objectsOfRuleFixture(YAML::LoadFile(path.string()))) {
      for (const json& review : reviewsOfObject(object)) {
        bodies.push_back({path.string() + " as " + object.value("kind", ""), review.dump()});
      }
    }
  }
  return bodies;
}

fs::path peerCasesDir() { return (kSourceDir / "../shared/peer-cases").lexically_normal(); }

/// Every Kubernetes object, AdmissionRequest and AdmissionReview in the peer cases.
std::vector<Body> peerCaseBodies() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(peerCasesDir())) {
    const auto extension = entry.path().extension();
    if (extension == ".yaml" || extension == ".yml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<Body> bodies;
  for (const fs::path& path : files) {
    std::vector<YAML::Node> documents;
    try {
      documents = YAML::LoadAllFromFile(path.string());
    } catch (const YAML::Exception&) {
      continue;  // Templates and the like that are not YAML on their own.
    }
    for (const YAML::Node& document : documents) {
      if (!document.IsMap()) continue;
      const json value = testutil::toJson(document);
      const std::string kind = value.value("kind", "");
      if (kind == "AdmissionReview" && value.contains("request")) {
        bodies.push_back({path.string(), value.dump()});
      } else if (value.contains("object") && value.contains("operation")) {
        bodies.push_back({path.string() + " (request)", reviewOf(value).dump()});
      } else if (!kind.empty() && value.contains("spec")) {
        for (const json& review : reviewsOfObject(value)) {
          bodies.push_back({path.string(), review.dump()});
        }
      }
    }
  }
  return bodies;
}

// --- Variants of a body.

/// The same JSON with the keys of every object in reverse order: the decoder must not depend on
/// the order of keys (the API server sends request.kind before the object; tests need not).
ordered_json reversedKeys(const json& value) {
  if (value.is_object()) {
    ordered_json out = ordered_json::object();
    for (auto it = value.rbegin(); it != value.rend(); ++it) out[it.key()] = reversedKeys(*it);
    return out;
  }
  if (value.is_array()) {
    ordered_json out = ordered_json::array();
    for (const json& item : value) out.push_back(reversedKeys(item));
    return out;
  }
  return ordered_json::parse(value.dump());
}

/// Every value's JSON pointer under /request, in document order.
void collectPointers(const json& value, const json::json_pointer& at,
                     std::vector<json::json_pointer>& out) {
  out.push_back(at);
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) collectPointers(item, at / key, out);
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) collectPointers(value[i], at / i, out);
  }
}

/// A value of another type than `value`'s (and null), to replace it with.
std::vector<json> wrongValues(const json& value) {
  std::vector<json> values = {nullptr};
  if (!value.is_string()) values.push_back("x");
  if (!value.is_boolean()) values.push_back(true);
  if (!value.is_number()) values.push_back(-3);
  if (!value.is_object()) values.push_back(json::object());
  if (!value.is_array()) values.push_back(json::array({1}));
  values.push_back(18446744073709551615u);  // Out of int64's range.
  values.push_back(1.5);
  return values;
}

std::vector<json::json_pointer> requestPointers(const json& review) {
  std::vector<json::json_pointer> pointers;
  if (review.contains("request"))
    collectPointers(review["request"], json::json_pointer("/request"), pointers);
  return pointers;
}

/// What distinguishes the mutations of two bodies: the kind and operation (which decide what is
/// read), the place and the value. Rule fixtures share most of their shape: each mutation is
/// tried once, which keeps the sweep to seconds.
std::string mutationKey(const json& review, const json::json_pointer& pointer, const json& value) {
  const json::json_pointer kind("/request/kind/kind");
  const json::json_pointer operation("/request/operation");
  return (review.contains(kind) ? review[kind].dump() : "") + " " +
         (review.contains(operation) ? review[operation].dump() : "") + " " + pointer.to_string() +
         " " + value.dump();
}

void expectSameForAllVariants(const Body& body, std::set<std::string>& tried) {
  SCOPED_TRACE(body.what);
  expectSameDecoding(body.text, body.what);
  json review;
  try {
    review = json::parse(body.text);
  } catch (const json::exception&) {
    return;  // Not JSON: only the body itself.
  }
  expectSameDecoding(reversedKeys(review).dump(), body.what + ", keys reversed");
  const std::vector<json::json_pointer> pointers = requestPointers(review);
  for (const auto& pointer : pointers) {
    for (const json& wrong : wrongValues(review[pointer])) {
      if (!tried.insert(mutationKey(review, pointer, wrong)).second) continue;
      json mutated = review;
      mutated[pointer] = wrong;
      const std::string what = body.what + ", " + pointer.to_string() + " = " + wrong.dump();
      expectSameDecoding(mutated.dump(), what);
      if (::testing::Test::HasFailure()) return;  // One report per body is enough.
    }
  }
  // Two problems at once: the one the DOM decoder found first must be the one reported.
  std::mt19937 random(42);
  for (int round = 0; round < 10 && pointers.size() > 2; ++round) {
    json mutated = review;
    std::string what = body.what + ",";
    for (int i = 0; i < 2; ++i) {
      const auto& pointer = pointers[random() % pointers.size()];
      if (!mutated.contains(pointer)) continue;
      const std::vector<json> wrong = wrongValues(mutated[pointer]);
      mutated[pointer] = wrong[1 + random() % (wrong.size() - 1)];
      what += " " + pointer.to_string() + " = " + mutated[pointer].dump();
    }
    expectSameDecoding(mutated.dump(), what);
    expectSameDecoding(reversedKeys(mutated).dump(), what + ", keys reversed");
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(ReviewEquivalence, RepositoryBodiesDecodeAsWithTheDom) {
  const std::vector<Body> bodies = repositoryBodies();
  ASSERT_GT(bodies.size(), 100u);
  std::set<std::string> tried;
  for (const Body& body : bodies) expectSameForAllVariants(body, tried);
}

TEST(ReviewEquivalence, PeerCasesDecodeAsWithTheDom) {
  if (!fs::is_directory(peerCasesDir())) {
    GTEST_SKIP() << peerCasesDir() << " is not there (it lives outside the repository, see "
                 << "tests/peer/peer_cases_test.cc): no peer cases to compare";
  }
  const std::vector<Body> bodies = peerCaseBodies();
  ASSERT_FALSE(bodies.empty()) << "no Kubernetes objects found under " << peerCasesDir();
  for (const Body& body : bodies) {
    expectSameDecoding(body.text, body.what);
    json review = json::parse(body.text);
    expectSameDecoding(reversedKeys(review).dump(), body.what + ", keys reversed");
  }
}

// The limits, at their edges, give the same answer both ways.
TEST(ReviewEquivalence, LimitsDecodeAsWithTheDom) {
  const json container = {{"name", "c"}, {"image", "x"}};
  const json volume = {{"name", "v"}, {"emptyDir", json::object()}};
  for (std::size_t count : {3u, 4u, 5u}) {
    json spec = {{"containers", json::array()},
                 {"initContainers", json::array()},
                 {"ephemeralContainers", json::array({container, 42})},
                 {"volumes", json::array()}};
    for (std::size_t i = 0; i < count; ++i) {
      spec["containers"].push_back(container);
      spec["initContainers"].push_back(i == 1 ? json(7) : container);
      spec["volumes"].push_back(volume);
    }
    const json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"spec", spec}};
    DecodeLimits limits;
    limits.maxContainers = 2 * count + 1;
    limits.maxVolumes = 4;
    for (const json& review : reviewsOfObject(pod)) {
      expectSameDecoding(review.dump(), "limits, " + std::to_string(count), limits);
      limits.maxContainers = count + 1;
      expectSameDecoding(review.dump(), "limits, " + std::to_string(count), limits);
      limits.maxContainers = count - 1;
      expectSameDecoding(review.dump(), "limits, " + std::to_string(count), limits);
    }
  }
}

/// A Pod review whose request, metadata, spec and first container each carry `value` under a key
/// nothing reads (so the decoder jumps over it), as raw text: `value` need not be valid JSON.
std::string reviewWithUnreadValues(std::string_view value) {
  const std::string unread = "\"unread\": " + std::string(value);
  return R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{)" + unread +
         R"(,"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE",)" +
         R"("object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p",)" + unread +
         R"(,"annotations":{"kubectl.kubernetes.io/last-applied-configuration":)" +
         std::string(value) + R"(,"a":"b"}},"spec":{)" + unread + R"(,"containers":[{"name":"c",)" +
         unread + R"(,"image":"x"}]}}}})";
}

// Values nothing reads are jumped over without lexing them (admission/skippable_input.h); what
// the scan does not validate itself is left to nlohmann, so valid, invalid and limit-breaking
// values there all answer as the DOM decoder does, error positions included.
TEST(ReviewEquivalence, SkippedValuesDecodeAsWithTheDom) {
  const std::string deep = std::string(40, '[') + std::string(40, ']');
  std::string many = "[0";
  for (int i = 0; i < 300; ++i) many += ",1";
  many += "]";
  const std::vector<std::string> values = {
      "null", "true", "false", "0", "-12.5", "12345678901234567890123", R"("text")",
      R"("tab\tquote\"slash\/\u00e9")", "{}", "[]", R"({"a":[1,{"b":null}],"c":"d"})",
      " [ 1 , 2 ] ", deep, many,
      // Left to nlohmann: it accepts or refuses these, with its own message.
      "\"caf\xc3\xa9\"", "\"bad \xff utf-8\"", R"("\ud83d\ude00")", R"("\ud800")", "1e3", "1e999",
      "123456789012345678901234567890123456789", R"("bad \x escape")", "[1,]", "{\"a\" 1}", "[1 2]",
      "tru", "-", "01", "1.", R"("unterminated)", "[[[", R"({"a":1,})", "\"\x01\"",
      "\"raw\nnewline\"", R"({"a":1}})", "[1]x"};
  for (const std::string& value : values) {
    expectSameDecoding(reviewWithUnreadValues(value), "unread value " + value);
  }
  // At the edges of the depth and value limits, inside a skipped value.
  for (std::size_t depth : {44u, 45u, 46u, 47u}) {
    DecodeLimits limits;
    limits.maxDepth = depth;
    expectSameDecoding(reviewWithUnreadValues(deep), "depth " + std::to_string(depth), limits);
  }
  for (std::size_t maxValues : {1300u, 1330u, 1340u, 1350u, 1400u}) {
    DecodeLimits limits;
    limits.maxValues = maxValues;
    expectSameDecoding(reviewWithUnreadValues(many), "values " + std::to_string(maxValues), limits);
  }
}

/// A review with `value` (raw JSON text) as the value of keys the decoder keeps: strings there
/// are taken without the lexer when they are plain (SkippableInput::captureNextString).
std::string reviewWithKeptValues(std::string_view value) {
  const std::string v(value);
  return R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":)" + v +
         R"(,"kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","namespace" :)" +
         v + R"(,"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":)" + v +
         R"(,"labels":{"app":)" + v + R"(},"annotations":{"a":)" + v +
         R"(}},"spec":{"volumes":[{"name":)" + v + R"(,"hostPath":)" + v +
         R"(}],"containers":[{"name":)" + v + R"(,"image":)" + v +
         R"(,"securityContext":{"procMount":)" + v + R"(,"runAsUser":)" + v +
         R"(}},{"name":"c2","image":)" + "\n\t " + v + R"(,"securityContext":)" + v + R"(}]}}}})";
}

// Plain strings of kept keys are taken as they stand, and everything else is left to the lexer:
// every kind of value there, valid or not, decodes as with the DOM, problems and errors included.
TEST(ReviewEquivalence, KeptStringsDecodeAsWithTheDom) {
  const std::vector<std::string> values = {R"("")",
                                           R"("plain")",
                                           R"("registry.example.com/shop/app:1@sha256:0123")",
                                           "\"del \x7f and ~\"",
                                           R"("with \"escaped\" quote")",
                                           R"("tab\tand\u0041")",
                                           "\"caf\xc3\xa9\"",
                                           "\"bad \xff utf-8\"",
                                           "\"\x01 control\"",
                                           "\"raw\nnewline\"",
                                           R"("unterminated)",
                                           R"("a" "b")",
                                           "null",
                                           "true",
                                           "0",
                                           "-1",
                                           "1.5",
                                           "{}",
                                           "[]",
                                           R"({"a":"b"})",
                                           R"(["x"])",
                                           std::string(300, 'x'),
                                           "\"" + std::string(5000, 'y') + "\""};
  for (const std::string& value : values) {
    expectSameDecoding(reviewWithKeptValues(value), "kept value " + value);
  }
  // A captured string counts as one value, as the lexer's does: at the edge of the value limit.
  for (std::size_t maxValues : {20u, 30u, 33u, 34u, 35u, 36u, 40u}) {
    DecodeLimits limits;
    limits.maxValues = maxValues;
    expectSameDecoding(reviewWithKeptValues(R"("v")"), "values " + std::to_string(maxValues),
                       limits);
  }
}

}  // namespace
}  // namespace imagegate::admission
