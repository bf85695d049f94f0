#include "policy/loader.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <system_error>
#include <utility>

#include "common/glob.h"
#include "common/quantity.h"
#include "policy/label_selector.h"

namespace imagegate::policy {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kApiVersion = "imagegate.dev/v1alpha1";
constexpr std::string_view kKind = "ImagePolicy";
// Policy names become audit-annotation keys, whose name part is limited to 63 characters.
constexpr std::size_t kMaxPolicyNameLength = 63;
constexpr std::size_t kMaxRuleNameLength = 63;

// ---------------------------------------------------------------------------------------------
// Problem reporting

/// Collects problems for one source; marks are yaml-cpp's 0-based positions.
class Diagnostics {
 public:
  Diagnostics(std::string file, std::vector<LoadProblem>& problems)
      : file_(std::move(file)), problems_(&problems) {}

  const std::string& file() const { return file_; }

  void report(const YAML::Mark& mark, std::string message) {
    // yaml-cpp uses -1 for "no position"; LoadProblem uses 0.
    problems_->push_back(LoadProblem{file_, mark.line + 1, mark.column + 1, std::move(message)});
  }

  /// "file:line:column", for pointing at an earlier definition.
  std::string where(const YAML::Mark& mark) const {
    return file_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }

 private:
  std::string file_;
  std::vector<LoadProblem>* problems_;
};

std::string describeType(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "\"" + node.Scalar() + "\"";
    default:
      return "null";
  }
}

std::string join(const std::vector<std::string_view>& words) {
  std::string text;
  for (std::string_view word : words) {
    if (!text.empty()) text += ", ";
    text += word;
  }
  return text;
}

std::string indexed(const std::string& path, std::size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

// ---------------------------------------------------------------------------------------------
// Field reader: one mapping, its allowed keys, typed access with located errors.

struct Scalar {
  std::string text;
  YAML::Mark mark;
};

class Fields {
 public:
  using Keys = std::vector<std::string_view>;

  /// `node` may be null (an empty mapping); anything else but a mapping is reported. `allowed`
  /// nullopt accepts any key (label maps); an empty list accepts none (`runAsNonRoot: {}`).
  Fields(const YAML::Node& node, std::string path, std::optional<Keys> allowed, Diagnostics& diag,
         YAML::Mark fallbackMark = YAML::Mark::null_mark())
      : path_(std::move(path)), allowed_(std::move(allowed)), diag_(&diag), mark_(fallbackMark) {
    if (node.IsNull()) return;
    mark_ = node.Mark();
    if (!node.IsMap()) {
      report(mark_, (path_.empty() ? std::string("a policy document") : path_) +
                        " must be a mapping, got " + describeType(node));
      ok_ = false;
      return;
    }
    for (auto it = node.begin(); it != node.end(); ++it) addEntry(it->first, it->second);
  }

  /// The mapping under `key`, located at the key when its value is null or absent.
  Fields sub(std::string_view key, std::optional<Keys> allowed) const {
    const YAML::Mark at = has(key) ? keyMark(key) : mark_;
    return Fields(value(key).value_or(YAML::Node()), pathOf(key), std::move(allowed), *diag_, at);
  }

  bool ok() const { return ok_; }
  const YAML::Mark& mark() const { return mark_; }
  Diagnostics& diag() const { return *diag_; }
  std::string pathOf(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  /// True when `key` is written, even with a null value.
  bool has(std::string_view key) const { return entries_.find(key) != entries_.end(); }

  YAML::Mark keyMark(std::string_view key) const { return entries_.find(key)->second.key.Mark(); }

  /// The value of `key`; nullopt when absent or null, which Kubernetes treats alike.
  std::optional<YAML::Node> value(std::string_view key) const {
    const auto it = entries_.find(key);
    if (it == entries_.end() || it->second.value.IsNull()) return std::nullopt;
    return it->second.value;
  }

  /// Like value(), reporting "<key> is required" when the key is absent or null.
  std::optional<YAML::Node> required(std::string_view key) const {
    auto node = value(key);
    if (!node) report(has(key) ? keyMark(key) : mark_, pathOf(key) + " is required");
    return node;
  }

  std::optional<Scalar> string(std::string_view key) const {
    auto node = value(key);
    if (!node) return std::nullopt;
    return toString(*node, pathOf(key));
  }

  std::optional<bool> boolean(std::string_view key) const {
    auto node = value(key);
    if (!node) return std::nullopt;
    // Only plain scalars: a quoted "true" is a string, as in Kubernetes' strict decoding.
    if (node->IsScalar() && node->Tag() == "?") {
      const std::string& text = node->Scalar();
      if (text == "true" || text == "True" || text == "TRUE") return true;
      if (text == "false" || text == "False" || text == "FALSE") return false;
    }
    report(node->Mark(),
           pathOf(key) + " must be a boolean (true or false), got " + describeType(*node));
    return std::nullopt;
  }

  /// A list of strings; nullopt when absent, null, or not a list (reported).
  std::optional<std::vector<Scalar>> strings(std::string_view key) const {
    auto node = value(key);
    if (!node) return std::nullopt;
    if (!node->IsSequence()) {
      report(node->Mark(), pathOf(key) + " must be a list of strings, got " + describeType(*node));
      return std::nullopt;
    }
    std::vector<Scalar> items;
    for (std::size_t i = 0; i < node->size(); ++i) {
      if (auto item = toString((*node)[i], indexed(pathOf(key), i))) items.push_back(*item);
    }
    return items;
  }

  /// Entries of a string-to-string mapping such as matchLabels, keys in sorted order.
  std::vector<std::pair<Scalar, Scalar>> stringMap(std::string_view key) const {
    std::vector<std::pair<Scalar, Scalar>> items;
    const Fields map = sub(key, std::nullopt);
    for (const auto& [name, entry] : map.entries_) {
      if (auto text = map.toString(entry.value, map.pathOf(name))) {
        items.emplace_back(Scalar{name, entry.key.Mark()}, std::move(*text));
      }
    }
    return items;
  }

  void report(const YAML::Mark& mark, std::string message) const {
    diag_->report(mark, std::move(message));
  }

 private:
  struct Entry {
    YAML::Node key;
    YAML::Node value;
  };

  void addEntry(const YAML::Node& key, const YAML::Node& value) {
    if (!key.IsScalar()) {
      report(key.Mark(), (path_.empty() ? "document" : path_) + ": field names must be strings");
      return;
    }
    const std::string& name = key.Scalar();
    if (allowed_ && std::find(allowed_->begin(), allowed_->end(), name) == allowed_->end()) {
      report(key.Mark(), pathOf(name) + ": unknown field \"" + name + "\" (" +
                             (allowed_->empty() ? std::string("this takes no options; write {}")
                                                : "allowed here: " + join(*allowed_)) +
                             ")");
      return;
    }
    const auto [it, inserted] = entries_.emplace(name, Entry{key, value});
    if (!inserted) {
      report(key.Mark(), pathOf(name) + " is given more than once (first at " +
                             diag_->where(it->second.key.Mark()) + ")");
    }
  }

  std::optional<Scalar> toString(const YAML::Node& node, const std::string& path) const {
    if (node.IsScalar()) return Scalar{node.Scalar(), node.Mark()};
    report(node.Mark(), path + " must be a string, got " + describeType(node));
    return std::nullopt;
  }

  std::string path_;
  std::optional<Keys> allowed_;
  Diagnostics* diag_;
  YAML::Mark mark_;
  bool ok_ = true;
  std::map<std::string, Entry, std::less<>> entries_;
};

// ---------------------------------------------------------------------------------------------
// Value checks

bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

/// Lowercase alphanumerics plus `extra`, starting and ending alphanumeric (DNS-1123 style).
bool isDnsName(std::string_view name, std::size_t maxLength, std::string_view extra) {
  return !name.empty() && name.size() <= maxLength && isLowerAlnum(name.front()) &&
         isLowerAlnum(name.back()) && std::all_of(name.begin(), name.end(), [&](char c) {
           return isLowerAlnum(c) || extra.find(c) != std::string_view::npos;
         });
}

/// Glob list: each entry checked with globProblem. `emptyMeans` names the effect of `[]` when an
/// empty list is surely a mistake; empty when `[]` is fine.
std::optional<std::vector<std::string>> readGlobs(const Fields& fields, std::string_view key,
                                                  std::string_view emptyMeans = {}) {
  auto items = fields.strings(key);
  if (!items) return std::nullopt;
  const YAML::Node list = *fields.value(key);
  if (list.size() == 0 && !emptyMeans.empty()) {
    fields.report(list.Mark(),
                  fields.pathOf(key) + " is an empty list, which " + std::string(emptyMeans));
  }
  std::vector<std::string> globs;
  for (std::size_t i = 0; i < items->size(); ++i) {
    const Scalar& item = (*items)[i];
    if (auto problem = globProblem(item.text)) {
      fields.report(item.mark, indexed(fields.pathOf(key), i) + ": invalid pattern \"" + item.text +
                                   "\": " + *problem);
    }
    globs.push_back(item.text);
  }
  return globs;
}

// ---------------------------------------------------------------------------------------------
// Rules

constexpr std::string_view kRunAsNonRoot = "runAsNonRoot";
constexpr std::string_view kReadOnlyRootFilesystem = "readOnlyRootFilesystem";
constexpr std::string_view kPrivileged = "privileged";
constexpr std::string_view kAllowPrivilegeEscalation = "allowPrivilegeEscalation";
constexpr std::string_view kAllowedRegistries = "allowedRegistries";
constexpr std::string_view kDisallowedRegistries = "disallowedRegistries";
constexpr std::string_view kImageReference = "imageReference";
constexpr std::string_view kHostNamespaces = "hostNamespaces";
constexpr std::string_view kMaxImageSize = "maxImageSize";

const std::vector<std::string_view> kRuleTypes{
    kRunAsNonRoot,      kReadOnlyRootFilesystem, kPrivileged,     kAllowPrivilegeEscalation,
    kAllowedRegistries, kDisallowedRegistries,   kImageReference, kHostNamespaces,
    kMaxImageSize};

/// Reads `{allowed: bool}`; absent or null means not allowed.
bool readAllowed(const Fields& rule, std::string_view type) {
  return rule.sub(type, Fields::Keys{"allowed"}).boolean("allowed").value_or(false);
}

std::vector<std::string> readRegistryPatterns(const Fields& rule, std::string_view type,
                                              std::string_view emptyMeans) {
  if (!rule.value(type)) {
    rule.report(rule.keyMark(type), rule.pathOf(type) + " must be a list of registry patterns");
    return {};
  }
  return readGlobs(rule, type, emptyMeans).value_or(std::vector<std::string>{});
}

ImageReference readImageReference(const Fields& rule) {
  const Fields body =
      rule.sub(kImageReference, Fields::Keys{"disallowTags", "requireDigest", "requireTag"});
  ImageReference spec;
  spec.disallowTags = readGlobs(body, "disallowTags").value_or(std::vector<std::string>{});
  spec.requireDigest = body.boolean("requireDigest").value_or(false);
  spec.requireTag = body.boolean("requireTag").value_or(false);
  return spec;
}

MaxImageSize readMaxImageSize(const Fields& rule) {
  const Fields body = rule.sub(kMaxImageSize, Fields::Keys{"compressed"});
  MaxImageSize spec;
  const auto compressed = body.string("compressed");
  if (!compressed) {
    body.report(body.mark(), body.pathOf("compressed") + " is required, e.g. compressed: 200Mi");
    return spec;
  }
  const auto bytes = parseByteQuantity(compressed->text);
  if (!bytes || *bytes == 0) {
    body.report(compressed->mark, body.pathOf("compressed") +
                                      " must be a positive quantity such as "
                                      "500Mi or 1Gi (suffixes Ki Mi Gi Ti, k M G T), got \"" +
                                      compressed->text + "\"");
    return spec;
  }
  spec.compressedBytes = *bytes;
  spec.compressedText = compressed->text;
  return spec;
}

/// Rule types without options accept `{}` or null and report any field.
template <typename Spec>
Spec readEmptyBody(const Fields& rule, std::string_view type) {
  (void)rule.sub(type, Fields::Keys{});
  return Spec{};
}

RuleSpec readRuleSpec(const Fields& rule, std::string_view type) {
  if (type == kRunAsNonRoot) return readEmptyBody<RunAsNonRoot>(rule, type);
  if (type == kReadOnlyRootFilesystem) return readEmptyBody<ReadOnlyRootFilesystem>(rule, type);
  if (type == kPrivileged) return Privileged{readAllowed(rule, type)};
  if (type == kAllowPrivilegeEscalation) return AllowPrivilegeEscalation{readAllowed(rule, type)};
  if (type == kHostNamespaces) return HostNamespaces{readAllowed(rule, type)};
  if (type == kAllowedRegistries) {
    return AllowedRegistries{
        readRegistryPatterns(rule, type, "would deny every image; list the registries to allow")};
  }
  if (type == kDisallowedRegistries) {
    return DisallowedRegistries{readRegistryPatterns(rule, type, "")};
  }
  if (type == kMaxImageSize) return readMaxImageSize(rule);
  return readImageReference(rule);
}

std::vector<std::string_view> presentRuleTypes(const Fields& rule) {
  std::vector<std::string_view> present;
  std::copy_if(kRuleTypes.begin(), kRuleTypes.end(), std::back_inserter(present),
               [&](std::string_view type) { return rule.has(type); });
  return present;
}

std::optional<Rule> readRule(const YAML::Node& node, const std::string& path, Diagnostics& diag) {
  std::vector<std::string_view> allowed{"name"};
  allowed.insert(allowed.end(), kRuleTypes.begin(), kRuleTypes.end());
  if (node.IsNull()) {
    diag.report(node.Mark(), path + " must be a rule mapping, got null");
    return std::nullopt;
  }
  const Fields rule(node, path, allowed, diag);
  if (!rule.ok()) return std::nullopt;
  Rule result;
  if (auto name = rule.string("name")) {
    result.name = name->text;
    if (!isDnsName(name->text, kMaxRuleNameLength, "-")) {
      rule.report(name->mark, rule.pathOf("name") + " \"" + name->text +
                                  "\" must be 1-63 lowercase letters, digits or '-', starting "
                                  "and ending with a letter or digit");
    }
  } else {
    rule.report(rule.mark(), rule.pathOf("name") + " is required");
  }
  const auto types = presentRuleTypes(rule);
  if (types.size() != 1) {
    const std::string what =
        types.empty() ? " has no rule type" : " has several rule types (" + join(types) + ")";
    rule.report(rule.mark(), path + what + "; a rule needs exactly one of: " + join(kRuleTypes));
    return std::nullopt;
  }
  result.spec = readRuleSpec(rule, types.front());
  return result;
}

std::vector<Rule> readRules(const Fields& spec) {
  std::vector<Rule> rules;
  const auto node = spec.required("rules");
  if (!node) return rules;
  if (!node->IsSequence() || node->size() == 0) {
    spec.report(node->Mark(), spec.pathOf("rules") + " must be a non-empty list of rules, got " +
                                  describeType(*node));
    return rules;
  }
  std::map<std::string, YAML::Mark> seen;
  for (std::size_t i = 0; i < node->size(); ++i) {
    const YAML::Node item = (*node)[i];
    auto rule = readRule(item, indexed(spec.pathOf("rules"), i), spec.diag());
    if (!rule) continue;
    if (!rule->name.empty()) {
      const YAML::Mark nameMark = item["name"].Mark();
      const auto [it, inserted] = seen.emplace(rule->name, nameMark);
      if (!inserted) {
        spec.report(nameMark, indexed(spec.pathOf("rules"), i) + ": rule name \"" + rule->name +
                                  "\" is already used at " + spec.diag().where(it->second));
      }
    }
    rules.push_back(std::move(*rule));
  }
  return rules;
}

// ---------------------------------------------------------------------------------------------
// Match

void readMatchLabels(const Fields& selector, LabelSelector& out) {
  for (auto& [key, value] : selector.stringMap("matchLabels")) {
    if (auto problem = labelKeyProblem(key.text)) {
      selector.report(key.mark, selector.pathOf("matchLabels") + ": " + *problem);
    }
    if (auto problem = labelValueProblem(value.text)) {
      selector.report(value.mark, selector.pathOf("matchLabels." + key.text) + ": " + *problem);
    }
    out.matchLabels.emplace(key.text, value.text);
  }
}

std::optional<LabelSelectorRequirement> readRequirement(const YAML::Node& node,
                                                        const std::string& path,
                                                        Diagnostics& diag) {
  const Fields fields(node, path, Fields::Keys{"key", "operator", "values"}, diag);
  if (!fields.ok()) return std::nullopt;
  LabelSelectorRequirement requirement;
  const auto key = fields.string("key");
  const auto op = fields.string("operator");
  if (!key) fields.report(fields.mark(), fields.pathOf("key") + " is required");
  if (!op) fields.report(fields.mark(), fields.pathOf("operator") + " is required");
  if (!key || !op) return std::nullopt;
  requirement.key = key->text;
  const auto parsed = parseSelectorOperator(op->text);
  if (!parsed) {
    fields.report(op->mark, fields.pathOf("operator") +
                                " must be one of In, NotIn, Exists, DoesNotExist, got \"" +
                                op->text + "\"");
    return std::nullopt;
  }
  requirement.op = *parsed;
  for (auto& value : fields.strings("values").value_or(std::vector<Scalar>{})) {
    requirement.values.push_back(value.text);
  }
  if (auto problem = requirementProblem(requirement)) {
    fields.report(fields.mark(), path + ": " + *problem);
  }
  return requirement;
}

LabelSelector readSelector(const Fields& match) {
  LabelSelector selector;
  const Fields fields =
      match.sub("objectSelector", Fields::Keys{"matchLabels", "matchExpressions"});
  if (!fields.ok()) return selector;
  readMatchLabels(fields, selector);
  const auto expressions = fields.value("matchExpressions");
  if (!expressions) return selector;
  if (!expressions->IsSequence()) {
    fields.report(expressions->Mark(), fields.pathOf("matchExpressions") + " must be a list, got " +
                                           describeType(*expressions));
    return selector;
  }
  for (std::size_t i = 0; i < expressions->size(); ++i) {
    const std::string path = indexed(fields.pathOf("matchExpressions"), i);
    if (auto requirement = readRequirement((*expressions)[i], path, match.diag())) {
      selector.matchExpressions.push_back(std::move(*requirement));
    }
  }
  return selector;
}

Match readMatch(const Fields& spec) {
  Match match;
  const Fields fields = spec.sub(
      "match",
      Fields::Keys{"namespaces", "excludeNamespaces", "objectSelector", "images", "excludeImages"});
  if (!fields.ok()) return match;
  constexpr std::string_view kMatchesNothing =
      "matches nothing; remove the field to match everything";
  if (auto globs = readGlobs(fields, "namespaces", kMatchesNothing)) match.namespaces = *globs;
  if (auto globs = readGlobs(fields, "excludeNamespaces")) match.excludeNamespaces = *globs;
  if (auto globs = readGlobs(fields, "images", kMatchesNothing)) match.images = *globs;
  if (auto globs = readGlobs(fields, "excludeImages")) match.excludeImages = *globs;
  match.objectSelector = readSelector(fields);
  return match;
}

// ---------------------------------------------------------------------------------------------
// Documents

Action readAction(const Fields& spec) {
  const auto action = spec.string("action");
  if (!action || action->text == "Enforce") return Action::kEnforce;
  if (action->text == "Audit") return Action::kAudit;
  if (action->text == "Warn") return Action::kWarn;
  spec.report(action->mark, spec.pathOf("action") + " must be one of Enforce, Audit, Warn, got \"" +
                                action->text + "\"");
  return Action::kEnforce;
}

OnFetchError readOnFetchError(const Fields& spec) {
  const auto value = spec.string("onFetchError");
  if (!value || value->text == "Deny") return OnFetchError::kDeny;
  if (value->text == "Allow") return OnFetchError::kAllow;
  spec.report(value->mark,
              spec.pathOf("onFetchError") + " must be Deny or Allow, got \"" + value->text + "\"");
  return OnFetchError::kDeny;
}

void checkConstant(const Fields& top, std::string_view key, std::string_view expected) {
  const auto value = top.string(key);
  if (!value) {
    top.report(top.mark(), std::string(key) + " is required (" + std::string(expected) + ")");
  } else if (value->text != expected) {
    top.report(value->mark, std::string(key) + " must be \"" + std::string(expected) +
                                "\", got \"" + value->text + "\"");
  }
}

std::optional<Scalar> readName(const Fields& top) {
  const Fields metadata = top.sub("metadata", Fields::Keys{"name", "labels", "annotations"});
  if (!metadata.ok()) return std::nullopt;
  // Labels and annotations are accepted for tooling and ignored, but must be well-formed.
  (void)metadata.stringMap("labels");
  (void)metadata.stringMap("annotations");
  const auto name = metadata.string("name");
  if (!name) {
    top.report(metadata.mark(), "metadata.name is required");
    return std::nullopt;
  }
  if (!isDnsName(name->text, kMaxPolicyNameLength, "-.")) {
    top.report(name->mark, "metadata.name \"" + name->text +
                               "\" must be 1-63 lowercase letters, digits, '-' or '.', starting "
                               "and ending with a letter or digit");
  }
  return name;
}

struct ParsedPolicy {
  Policy policy;
  YAML::Mark nameMark;
};

std::optional<ParsedPolicy> readPolicy(const YAML::Node& document, Diagnostics& diag) {
  const Fields top(document, "", Fields::Keys{"apiVersion", "kind", "metadata", "spec"}, diag);
  if (!top.ok()) return std::nullopt;
  checkConstant(top, "apiVersion", kApiVersion);
  checkConstant(top, "kind", kKind);
  const auto name = readName(top);
  ParsedPolicy parsed;
  parsed.policy.sourceFile = diag.file();
  const auto specNode = top.required("spec");
  if (specNode) {
    const Fields spec(*specNode, "spec", Fields::Keys{"action", "onFetchError", "match", "rules"},
                      diag);
    if (spec.ok()) {
      parsed.policy.action = readAction(spec);
      parsed.policy.onFetchError = readOnFetchError(spec);
      parsed.policy.match = readMatch(spec);
      parsed.policy.rules = readRules(spec);
    }
  }
  if (!name) return std::nullopt;
  parsed.policy.name = name->text;
  parsed.nameMark = name->mark;
  return parsed;
}

/// Sees only where each document starts. yaml-cpp 0.7's LoadAll never returns on some malformed
/// streams (a lone ',' for one): the parser reports the same empty document at the same place
/// again and again without consuming input, and LoadAll appends it forever, allocating
/// gigabytes a minute (jbeder/yaml-cpp#1040, fixed upstream after 0.8).
class DocumentStarts : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  YAML::Mark start;
};

/// YAML::LoadAll, after a first pass over the events that throws where the parser would stall.
std::vector<YAML::Node> loadAllDocuments(const std::string& yaml) {
  std::istringstream in(yaml);
  YAML::Parser parser(in);
  DocumentStarts starts;
  std::optional<int> previousStart;
  while (parser.HandleNextDocument(starts)) {
    if (previousStart == starts.start.pos) {
      throw YAML::ParserException(starts.start, "unexpected character where a document starts");
    }
    previousStart = starts.start.pos;
  }
  return YAML::LoadAll(yaml);
}

/// Accumulates policies and problems over every source, then fails with all problems at once.
class Loader {
 public:
  void loadText(std::string_view yaml, const std::string& source) {
    Diagnostics diag(source, problems_);
    std::vector<YAML::Node> documents;
    try {
      documents = loadAllDocuments(std::string(yaml));
    } catch (const YAML::Exception& e) {  // syntax errors, and nesting too deep to parse
      diag.report(e.mark, "YAML syntax error: " + e.msg);
      return;
    }
    for (const YAML::Node& document : documents) {
      if (document.IsNull()) continue;  // "---" separators and comment-only documents
      if (auto parsed = readPolicy(document, diag)) add(std::move(*parsed), diag);
    }
  }

  void loadFile(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      problem(file, std::string("cannot be opened: ") + std::strerror(errno));
      return;
    }
    std::ostringstream text;
    text << in.rdbuf();
    loadText(text.str(), file.string());
  }

  void loadDirectory(const fs::path& directory) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(directory, ec)) {
      const auto extension = entry.path().extension();
      if ((extension == ".yaml" || extension == ".yml") && !entry.is_directory()) {
        files.push_back(entry.path());
      }
    }
    if (ec) return problem(directory, "cannot be listed: " + ec.message());
    if (files.empty()) return problem(directory, "contains no *.yaml or *.yml policy files");
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) loadFile(file);
  }

  void problem(const fs::path& path, std::string message) {
    problems_.push_back(LoadProblem{path.string(), 0, 0, std::move(message)});
  }

  PolicySet finish() && {
    if (!problems_.empty()) throw PolicyLoadError(std::move(problems_));
    return std::move(set_);
  }

 private:
  void add(ParsedPolicy parsed, Diagnostics& diag) {
    const std::string location = diag.where(parsed.nameMark);
    const auto [it, inserted] = firstDefinition_.emplace(parsed.policy.name, location);
    if (!inserted) {
      diag.report(parsed.nameMark,
                  "policy name \"" + parsed.policy.name + "\" is already defined at " + it->second);
      return;
    }
    set_.policies.push_back(std::move(parsed.policy));
  }

  std::vector<LoadProblem> problems_;
  PolicySet set_;
  std::map<std::string, std::string> firstDefinition_;
};

std::string joinProblems(const std::vector<LoadProblem>& problems) {
  std::string text;
  for (const LoadProblem& problem : problems) {
    if (!text.empty()) text += "\n";
    text += problem.str();
  }
  return text;
}

}  // namespace

std::string LoadProblem::str() const {
  std::string text = file;
  if (line > 0) text += ":" + std::to_string(line);
  if (line > 0 && column > 0) text += ":" + std::to_string(column);
  return text + ": " + message;
}

PolicyLoadError::PolicyLoadError(std::vector<LoadProblem> problems)
    : Error(joinProblems(problems)), problems_(std::move(problems)) {}

PolicySet loadPolicies(const std::filesystem::path& path) {
  Loader loader;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) {
    loader.problem(path, "no such file or directory");
  } else if (fs::is_directory(status)) {
    loader.loadDirectory(path);
  } else {
    loader.loadFile(path);
  }
  return std::move(loader).finish();
}

PolicySet loadPoliciesFromString(std::string_view yaml, const std::string& sourceName) {
  Loader loader;
  loader.loadText(yaml, sourceName);
  return std::move(loader).finish();
}

}  // namespace imagegate::policy
