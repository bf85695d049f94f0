#include "policy/loader.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <optional>
#include <system_error>
#include <utility>

#include "common/bounded_file.h"
#include "common/text.h"
#include "policy/fields.h"
#include "policy/label_selector.h"
#include "policy/rule.h"

namespace imagegate::policy {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kApiVersion = "imagegate.dev/v1alpha1";
constexpr std::string_view kKind = "ImagePolicy";
// Policy names become audit-annotation keys, whose name part is limited to 63 characters.
constexpr std::size_t kMaxPolicyNameLength = 63;
constexpr std::size_t kMaxRuleNameLength = 63;
// A ConfigMap holds at most 1 MiB, and a policy file is mounted from one.
constexpr std::size_t kMaxPolicyFileBytes = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Value checks

/// Lowercase alphanumerics plus `extra`, starting and ending alphanumeric (DNS-1123 style).
bool isDnsName(std::string_view name, std::size_t maxLength, std::string_view extra) {
  return !name.empty() && name.size() <= maxLength && isLowerAlnum(name.front()) &&
         isLowerAlnum(name.back()) && std::all_of(name.begin(), name.end(), [&](char c) {
           return isLowerAlnum(c) || extra.find(c) != std::string_view::npos;
         });
}

// ---------------------------------------------------------------------------------------------
// Rules

std::vector<std::string_view> ruleKeys() {
  std::vector<std::string_view> keys;
  for (const RuleType& type : ruleTypes()) keys.push_back(type.key);
  return keys;
}

std::vector<const RuleType*> presentRuleTypes(const Fields& rule) {
  std::vector<const RuleType*> present;
  for (const RuleType& type : ruleTypes()) {
    if (rule.has(type.key)) present.push_back(&type);
  }
  return present;
}

void readRuleName(const Fields& rule, Rule& result) {
  const auto name = rule.string("name");
  if (!name) {
    rule.report(rule.mark(), rule.pathOf("name") + " is required");
    return;
  }
  result.name = name->text;
  if (!isDnsName(name->text, kMaxRuleNameLength, "-")) {
    rule.report(name->mark, rule.pathOf("name") + " \"" + name->text +
                                "\" must be 1-63 lowercase letters, digits or '-', starting "
                                "and ending with a letter or digit");
  }
}

/// The one rule type a rule must have, or nullptr after reporting none or several.
const RuleType* onlyRuleType(const Fields& rule, const std::string& path) {
  const auto types = presentRuleTypes(rule);
  if (types.size() == 1) return types.front();
  std::vector<std::string_view> keys;
  for (const RuleType* type : types) keys.push_back(type->key);
  const std::string what =
      types.empty() ? " has no rule type" : " has several rule types (" + joinWords(keys) + ")";
  rule.report(rule.mark(), path + what + "; a rule needs exactly one of: " + joinWords(ruleKeys()));
  return nullptr;
}

std::optional<Rule> readRule(const YAML::Node& node, const std::string& path, Diagnostics& diag) {
  if (node.IsNull()) {
    diag.report(node.Mark(), path + " must be a rule mapping, got null");
    return std::nullopt;
  }
  std::vector<std::string_view> allowed{"name"};
  const auto keys = ruleKeys();
  allowed.insert(allowed.end(), keys.begin(), keys.end());
  const Fields rule(node, path, allowed, diag);
  if (!rule.ok()) return std::nullopt;
  Rule result;
  readRuleName(rule, result);
  result.type = onlyRuleType(rule, path);
  if (result.type == nullptr) return std::nullopt;
  result.check = result.type->read(rule, result.type->key);
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
  if (!action) return Action::kEnforce;
  if (const auto known = parseAction(action->text)) return *known;
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
    Diagnostics diag(source, problems_, "a policy document");
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
    std::string text;
    try {
      text = readBoundedFile(file.string(), kMaxPolicyFileBytes, "policy file");
    } catch (const Error& e) {
      problem(file, e.what());
      return;
    }
    loadText(text, file.string());
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

}  // namespace

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
