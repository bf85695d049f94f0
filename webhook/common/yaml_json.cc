#include "common/yaml_json.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>

#include "common/error.h"

namespace imagegate {
namespace {

using nlohmann::json;

constexpr std::string_view kCoreTag = "tag:yaml.org,2002:";

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isOctalDigit(char c) { return c >= '0' && c <= '7'; }
bool isHexDigit(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

template <typename Predicate>
bool allOf(std::string_view text, Predicate predicate) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!predicate(c)) return false;
  }
  return true;
}

bool oneOf(std::string_view text, std::initializer_list<std::string_view> words) {
  for (std::string_view word : words) {
    if (text == word) return true;
  }
  return false;
}

/// [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?, the core schema's float.
bool isCoreFloat(std::string_view text) {
  std::size_t i = 0;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
  std::size_t intDigits = 0;
  while (i < text.size() && isDigit(text[i])) ++i, ++intDigits;
  std::size_t fractionDigits = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && isDigit(text[i])) ++i, ++fractionDigits;
    if (intDigits == 0 && fractionDigits == 0) return false;
  } else if (intDigits == 0) {
    return false;
  }
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
    if (!allOf(text.substr(i), isDigit)) return false;
    return true;
  }
  return i == text.size();
}

json unsignedInteger(std::string_view digits, int base, std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, error] =
      std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (error != std::errc() || end != digits.data() + digits.size()) {
    throw Error("integer " + std::string(text) + " does not fit in 64 bits");
  }
  if (value <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return static_cast<std::int64_t>(value);
  }
  return value;
}

json floatingPoint(std::string_view text) {
  const bool negative = !text.empty() && text[0] == '-';
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) text.remove_prefix(1);
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error == std::errc::result_out_of_range) {
    // 1e400 is a float too large for a double; 1e-400 one too small. Round as strtod does.
    const std::size_t e = text.find_first_of("eE");
    const bool tiny = e != std::string_view::npos && e + 1 < text.size() && text[e + 1] == '-';
    value = tiny ? 0.0 : std::numeric_limits<double>::infinity();
  } else if (error != std::errc() || end != text.data() + text.size()) {
    throw Error("cannot read the number " + std::string(text));
  }
  return negative ? -value : value;
}

json decimalInteger(std::string_view text) {
  std::int64_t value = 0;
  const std::string_view digits = text[0] == '+' ? text.substr(1) : text;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error == std::errc() && end == digits.data() + digits.size()) return value;
  if (digits[0] != '-') {
    std::uint64_t big = 0;
    const auto [bigEnd, bigError] =
        std::from_chars(digits.data(), digits.data() + digits.size(), big);
    if (bigError == std::errc() && bigEnd == digits.data() + digits.size()) return big;
  }
  return floatingPoint(text);  // beyond 64 bits: a float, as JSON parsers read it
}

/// "line L, column C: ", counting lines from `firstLine` (where the document starts).
std::string locate(const YAML::Mark& mark, std::size_t firstLine) {
  if (mark.is_null()) return "";
  return "line " + std::to_string(static_cast<std::size_t>(mark.line) + firstLine) + ", column " +
         std::to_string(mark.column + 1) + ": ";
}

class Converter {
 public:
  Converter(const YamlToJsonLimits& limits, std::size_t firstLine)
      : limits_(limits), firstLine_(firstLine) {}

  json convert(const YAML::Node& node, std::size_t depth) {
    if (++values_ > limits_.maxValues) {
      throw Error(where(node.Mark()) + "the document expands to more than " +
                  std::to_string(limits_.maxValues) + " values (aliases of large anchors?)");
    }
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return nullptr;
      case YAML::NodeType::Scalar:
        return scalar(node);
      case YAML::NodeType::Sequence: {
        checkDepth(node, depth);
        json array = json::array();
        for (const YAML::Node& item : node) array.push_back(convert(item, depth + 1));
        return array;
      }
      case YAML::NodeType::Map:
        checkDepth(node, depth);
        return mapping(node, depth);
    }
    return nullptr;
  }

 private:
  void checkDepth(const YAML::Node& node, std::size_t depth) const {
    if (depth >= limits_.maxDepth) {
      throw Error(where(node.Mark()) + "mappings and lists nest deeper than " +
                  std::to_string(limits_.maxDepth) + " levels");
    }
  }

  json scalar(const YAML::Node& node) const {
    const std::string& tag = node.Tag();
    const std::string& text = node.Scalar();
    if (tag == "!") return text;  // quoted or block scalar: always a string
    try {
      if (tag == "?" || tag.empty()) return resolvePlainScalar(text);
      if (!tag.starts_with(kCoreTag)) return text;  // an application tag: keep the text
      const std::string_view type = std::string_view(tag).substr(kCoreTag.size());
      if (type == "str" || type == "binary" || type == "timestamp") return text;
      json resolved = resolvePlainScalar(text);
      const bool matches = (type == "null" && resolved.is_null()) ||
                           (type == "bool" && resolved.is_boolean()) ||
                           (type == "int" && resolved.is_number_integer()) ||
                           (type == "float" && resolved.is_number());
      if (!matches) throw Error("\"" + text + "\" is not a valid !!" + std::string(type));
      if (type == "float") return resolved.get<double>();
      return resolved;
    } catch (const Error& e) {
      throw Error(where(node.Mark()) + e.what());
    }
  }

  std::string keyOf(const YAML::Node& key) const {
    if (key.IsScalar()) return key.Scalar();
    if (key.IsNull()) return "null";
    throw Error(where(key.Mark()) + "a mapping key must be a string, not " +
                (key.IsMap() ? "a mapping" : "a list"));
  }

  json mapping(const YAML::Node& node, std::size_t depth) {
    json object = json::object();
    std::set<std::string> written;
    std::vector<YAML::Node> mergeValues;
    for (const auto& entry : node) {
      // Copies: yaml-cpp's iterator values are proxies, their members die with them.
      const YAML::Node key = entry.first;
      const YAML::Node value = entry.second;
      if (key.IsScalar() && key.Tag() == "?" && key.Scalar() == "<<") {
        mergeValues.push_back(value);
        continue;
      }
      std::string name = keyOf(key);
      if (!written.insert(name).second) {
        throw Error(where(key.Mark()) + "duplicate key \"" + name + "\"");
      }
      object[name] = convert(value, depth + 1);
    }
    // Merge keys (`<<: *defaults`): the mapping's own keys win, then earlier merged mappings.
    for (const YAML::Node& merge : mergeValues) {
      std::vector<YAML::Node> sources;
      if (merge.IsMap()) sources.push_back(merge);
      if (merge.IsSequence()) {
        for (const YAML::Node& item : merge) sources.push_back(item);
      }
      if (sources.empty() && !merge.IsSequence()) {
        throw Error(where(merge.Mark()) + "<< must merge a mapping or a list of mappings");
      }
      for (const YAML::Node& source : sources) {
        if (!source.IsMap()) {
          throw Error(where(source.Mark()) + "<< must merge a mapping or a list of mappings");
        }
        json merged = mapping(source, depth);
        for (auto& [name, value] : merged.items()) {
          if (written.insert(name).second) object[name] = std::move(value);
        }
      }
    }
    return object;
  }

  std::string where(const YAML::Mark& mark) const { return locate(mark, firstLine_); }

  const YamlToJsonLimits& limits_;
  std::size_t firstLine_;
  std::size_t values_ = 0;
};

bool isDocumentStart(std::string_view line) {
  return line.starts_with("---") &&
         (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
}

bool isDocumentEnd(std::string_view line) {
  return line.starts_with("...") &&
         (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
}

/// True when `text` has something besides blanks and comments.
bool hasContent(std::string_view text) {
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    const std::size_t first = line.find_first_not_of(" \t\r");
    if (first != std::string_view::npos && line[first] != '#') return true;
    start = end + 1;
  }
  return false;
}

struct Chunk {
  std::string text;
  std::size_t line = 1;        ///< 1-based line of its first line in the stream.
  bool explicitStart = false;  ///< Began with `---`: a document even when empty.
};

/// The stream cut at `---` and `...` lines: those are markers wherever they appear at column 0
/// (YAML forbids them inside a document), so a broken document cannot swallow its neighbours.
/// Directives (`%YAML`) go with the document that follows them.
std::vector<Chunk> splitDocuments(std::string_view stream) {
  std::vector<Chunk> chunks(1);
  std::string directives;
  std::size_t lineNumber = 0;
  std::size_t start = 0;
  while (start < stream.size()) {
    std::size_t end = stream.find('\n', start);
    const bool lastLine = end == std::string_view::npos;
    if (lastLine) end = stream.size();
    const std::string_view line = stream.substr(start, end - start);
    ++lineNumber;
    if (isDocumentStart(line)) {
      chunks.push_back({directives + std::string(line) + "\n", lineNumber, true});
      // The directives' lines were moved: count from the marker, they are reported rarely.
      directives.clear();
    } else if (isDocumentEnd(line)) {
      chunks.push_back({"", lineNumber + 1, false});
    } else if (line.starts_with("%")) {
      directives += std::string(line) + "\n";
    } else {
      chunks.back().text.append(line).append("\n");
    }
    start = end + 1;
  }
  if (!directives.empty()) chunks.back().text += directives;  // no document follows: let it fail
  return chunks;
}

}  // namespace

json resolvePlainScalar(std::string_view text) {
  if (oneOf(text, {"", "~", "null", "Null", "NULL"})) return nullptr;
  if (oneOf(text, {"true", "True", "TRUE"})) return true;
  if (oneOf(text, {"false", "False", "FALSE"})) return false;
  if (text.starts_with("0o") && allOf(text.substr(2), isOctalDigit)) {
    return unsignedInteger(text.substr(2), 8, text);
  }
  if (text.starts_with("0x") && allOf(text.substr(2), isHexDigit)) {
    return unsignedInteger(text.substr(2), 16, text);
  }
  const std::string_view unsignedPart =
      !text.empty() && (text[0] == '-' || text[0] == '+') ? text.substr(1) : text;
  if (allOf(unsignedPart, isDigit)) return decimalInteger(text);
  if (oneOf(unsignedPart, {".inf", ".Inf", ".INF"})) {
    return text[0] == '-' ? -std::numeric_limits<double>::infinity()
                          : std::numeric_limits<double>::infinity();
  }
  if (oneOf(text, {".nan", ".NaN", ".NAN"})) return std::numeric_limits<double>::quiet_NaN();
  if (isCoreFloat(text)) return floatingPoint(text);
  return std::string(text);
}

json yamlToJson(const YAML::Node& node, const YamlToJsonLimits& limits) {
  return Converter(limits, 1).convert(node, 0);
}

std::vector<YamlDocument> yamlStreamToJson(std::string_view stream,
                                           const YamlToJsonLimits& limits) {
  std::vector<YamlDocument> documents;
  std::size_t index = 0;
  for (const Chunk& chunk : splitDocuments(stream)) {
    if (!chunk.explicitStart && !hasContent(chunk.text)) continue;
    ++index;
    YamlDocument document;
    document.index = index;
    document.line = chunk.line;
    try {
      const YAML::Node node = YAML::Load(chunk.text);
      if (node.IsNull() && node.Tag() != "tag:yaml.org,2002:null") continue;  // empty document
      document.value = Converter(limits, chunk.line).convert(node, 0);
    } catch (const YAML::Exception& e) {
      document.problem = locate(e.mark, chunk.line) + e.msg;
    } catch (const Error& e) {
      document.problem = e.what();
    }
    documents.push_back(std::move(document));
  }
  return documents;
}

}  // namespace imagegate
