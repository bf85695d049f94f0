#include "common/yaml_fields.h"

#include <algorithm>
#include <array>

namespace imagegate {

namespace {

/// "true" or "false" for the booleans of YAML 1.1 that Kubernetes (YAML 1.2 core) reads as strings,
/// nullptr for anything else: yaml-cpp's own conversion would accept them silently.
const char* yaml11Boolean(std::string_view text) {
  static constexpr std::array<std::string_view, 8> kTrue = {"y",   "Y",  "yes", "Yes",
                                                            "YES", "on", "On",  "ON"};
  static constexpr std::array<std::string_view, 8> kFalse = {"n",  "N",   "no",  "No",
                                                             "NO", "off", "Off", "OFF"};
  if (std::find(kTrue.begin(), kTrue.end(), text) != kTrue.end()) return "true";
  if (std::find(kFalse.begin(), kFalse.end(), text) != kFalse.end()) return "false";
  return nullptr;
}

}  // namespace

void Diagnostics::report(const YAML::Mark& mark, std::string message) {
  // yaml-cpp uses -1 for "no position"; LoadProblem uses 0.
  problems_->push_back(LoadProblem{file_, mark.line + 1, mark.column + 1, std::move(message)});
}

std::string Diagnostics::where(const YAML::Mark& mark) const {
  return file_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

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

std::string joinWords(const std::vector<std::string_view>& words) {
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

Fields::Fields(const YAML::Node& node, std::string path, std::optional<Keys> allowed,
               Diagnostics& diag, YAML::Mark fallbackMark)
    : path_(std::move(path)), allowed_(std::move(allowed)), diag_(&diag), mark_(fallbackMark) {
  if (node.IsNull()) return;
  mark_ = node.Mark();
  if (!node.IsMap()) {
    report(mark_, (path_.empty() ? diag_->document() : path_) + " must be a mapping, got " +
                      describeType(node));
    ok_ = false;
    return;
  }
  for (auto it = node.begin(); it != node.end(); ++it) addEntry(it->first, it->second);
}

Fields Fields::sub(std::string_view key, std::optional<Keys> allowed) const {
  const YAML::Mark at = has(key) ? keyMark(key) : mark_;
  return Fields(value(key).value_or(YAML::Node()), pathOf(key), std::move(allowed), *diag_, at);
}

std::string Fields::pathOf(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

std::optional<YAML::Node> Fields::value(std::string_view key) const {
  const auto it = entries_.find(key);
  if (it == entries_.end() || it->second.value.IsNull()) return std::nullopt;
  return it->second.value;
}

std::optional<YAML::Node> Fields::required(std::string_view key) const {
  auto node = value(key);
  if (!node) report(has(key) ? keyMark(key) : mark_, pathOf(key) + " is required");
  return node;
}

std::optional<Scalar> Fields::string(std::string_view key) const {
  auto node = value(key);
  if (!node) return std::nullopt;
  return toString(*node, pathOf(key));
}

std::optional<bool> Fields::boolean(std::string_view key) const {
  auto node = value(key);
  if (!node) return std::nullopt;
  // Only plain scalars: a quoted "true" is a string, as in Kubernetes' strict decoding.
  if (node->IsScalar() && node->Tag() == "?") {
    const std::string& text = node->Scalar();
    if (text == "true" || text == "True" || text == "TRUE") return true;
    if (text == "false" || text == "False" || text == "FALSE") return false;
    if (const char* word = yaml11Boolean(text)) {
      report(node->Mark(), pathOf(key) + " must be a boolean (true or false), got \"" + text +
                               "\": YAML 1.1 words such as yes, no, on and off are not booleans "
                               "in Kubernetes' YAML; write " +
                               word);
      return std::nullopt;
    }
  }
  report(node->Mark(),
         pathOf(key) + " must be a boolean (true or false), got " + describeType(*node));
  return std::nullopt;
}

std::optional<std::vector<Scalar>> Fields::strings(std::string_view key) const {
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

std::vector<std::pair<Scalar, Scalar>> Fields::stringMap(std::string_view key) const {
  std::vector<std::pair<Scalar, Scalar>> items;
  const Fields map = sub(key, std::nullopt);
  for (const auto& [name, entry] : map.entries_) {
    if (auto text = map.toString(entry.value, map.pathOf(name))) {
      items.emplace_back(Scalar{name, entry.key.Mark()}, std::move(*text));
    }
  }
  return items;
}

void Fields::addEntry(const YAML::Node& key, const YAML::Node& value) {
  if (!key.IsScalar()) {
    report(key.Mark(),
           (path_.empty() ? diag_->document() : path_) + ": field names must be strings");
    return;
  }
  const std::string& name = key.Scalar();
  if (allowed_ && std::find(allowed_->begin(), allowed_->end(), name) == allowed_->end()) {
    report(key.Mark(), pathOf(name) + ": unknown field \"" + name + "\" (" +
                           (allowed_->empty() ? std::string("this takes no options; write {}")
                                              : "allowed here: " + joinWords(*allowed_)) +
                           ")");
    return;
  }
  const auto [it, inserted] = entries_.emplace(name, Entry{key, value});
  if (!inserted) {
    report(key.Mark(), pathOf(name) + " is given more than once (first at " +
                           diag_->where(it->second.key.Mark()) + ")");
  }
}

std::optional<Scalar> Fields::toString(const YAML::Node& node, const std::string& path) const {
  if (node.IsScalar()) return Scalar{node.Scalar(), node.Mark()};
  report(node.Mark(), path + " must be a string, got " + describeType(node));
  return std::nullopt;
}

}  // namespace imagegate
