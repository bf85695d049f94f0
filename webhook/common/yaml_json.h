#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// YAML manifests as JSON, for the code that reads Kubernetes objects as JSON. Plain scalars are
// resolved by the YAML 1.2 core schema (the one the policy loader's booleans follow), so `yes`
// and `1_000` stay strings while `true`, `0755` (decimal) and `0o755` do not; quoted and block
// scalars are always strings. Aliases are expanded, and the expansion is bounded, so a small
// file cannot grow a huge tree.
namespace imagegate {

struct YamlToJsonLimits {
  std::size_t maxDepth = 64;  ///< Mappings and sequences nested deeper are an error.
  /// Values (scalars, mappings, sequences) one document may expand to; aliases count each time
  /// they are used.
  std::size_t maxValues = std::size_t{1} << 22;
};

/// A plain (unquoted, untagged) scalar resolved by the YAML 1.2 core schema: null (`~`, `null`,
/// empty), booleans (`true`/`True`/`TRUE`, `false`/...), integers (decimal, `0o17`, `0x1F`),
/// floats (`1.5`, `1e3`, `.inf`, `-.Inf`, `.nan`), else the text as a string. Integers beyond
/// 64 bits: decimal ones become floats (as in JSON), octal and hex ones are an Error.
nlohmann::json resolvePlainScalar(std::string_view text);

/// One YAML node as JSON. Mapping keys must be scalars and unique; merge keys (`<<: *anchor`)
/// are applied. Throws Error("line L, column C: ...") on anything that has no JSON form or is
/// beyond `limits`.
nlohmann::json yamlToJson(const YAML::Node& node, const YamlToJsonLimits& limits = {});

/// One document of a YAML stream.
struct YamlDocument {
  std::size_t index = 0;                ///< 1-based position among the stream's documents.
  std::size_t line = 0;                 ///< 1-based line where it starts.
  std::optional<nlohmann::json> value;  ///< Unset when the document could not be read.
  std::string problem;                  ///< Why, with the line and column in the stream.
};

/// Every non-empty document of `stream` (documents are split at `---` lines, so one malformed
/// document does not hide the others), converted with yamlToJson(). Empty documents (only
/// comments, or a bare `---`) are left out but keep their index.
std::vector<YamlDocument> yamlStreamToJson(std::string_view stream,
                                           const YamlToJsonLimits& limits = {});

}  // namespace imagegate
