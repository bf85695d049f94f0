#pragma once

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

// YAML to JSON, with the plain-scalar resolution of the YAML 1.2 core schema: the peer-case
// fixtures hold booleans, numbers and strings such as "::1" or "1.0" (quoted) that must stay
// strings. Shared by the peer-case drivers.
namespace imagegate::testutil {

using nlohmann::json;

inline std::optional<json> plainInteger(const std::string& text) {
  const char* begin = text.data() + (text.starts_with('+') ? 1 : 0);
  const char* end = text.data() + text.size();
  std::int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end || begin == end) return std::nullopt;
  return json(value);
}

inline std::optional<json> plainFloat(const std::string& text) {
  // from_chars would also take "inf" and "nan", which JSON cannot hold: keep those as strings.
  const bool numeric = !text.empty() &&
                       text.find_first_not_of("0123456789.eE+-") == std::string::npos &&
                       text.find_first_of("0123456789") != std::string::npos;
  if (!numeric) return std::nullopt;
  const char* begin = text.data() + (text.starts_with('+') ? 1 : 0);
  const char* end = text.data() + text.size();
  double value = 0;
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return json(value);
}

inline json plainScalar(const std::string& text) {
  static const std::set<std::string> kNulls{"", "~", "null", "Null", "NULL"};
  static const std::set<std::string> kTrues{"true", "True", "TRUE"};
  static const std::set<std::string> kFalses{"false", "False", "FALSE"};
  if (kNulls.contains(text)) return nullptr;
  if (kTrues.contains(text)) return true;
  if (kFalses.contains(text)) return false;
  if (auto integer = plainInteger(text)) return *integer;
  if (auto number = plainFloat(text)) return *number;
  return text;
}

inline json toJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      // Quoted scalars carry the tag "!" and explicitly tagged ones their tag: both stay
      // strings, so image: "1.0" or name: "true" keep their meaning.
      return node.Tag() == "?" ? plainScalar(node.Scalar()) : json(node.Scalar());
    case YAML::NodeType::Sequence: {
      json array = json::array();
      for (const auto& item : node) array.push_back(toJson(item));
      return array;
    }
    case YAML::NodeType::Map: {
      json object = json::object();
      for (const auto& item : node) object[item.first.Scalar()] = toJson(item.second);
      return object;
    }
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return nullptr;
}

}  // namespace imagegate::testutil
