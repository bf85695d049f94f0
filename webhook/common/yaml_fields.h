#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/load_problem.h"

// The strict YAML field reader of the policy loader and the registry config: every problem is
// collected with its file:line:column instead of stopping at the first, unknown fields are errors,
// and booleans are only true/false as in Kubernetes' YAML, so one file means the same to both.
namespace imagegate {

/// Collects problems for one source; marks are yaml-cpp's 0-based positions.
class Diagnostics {
 public:
  /// `document` names the whole file in messages about its top level ("a policy document must be
  /// a mapping").
  Diagnostics(std::string file, std::vector<LoadProblem>& problems,
              std::string document = "the document")
      : file_(std::move(file)), document_(std::move(document)), problems_(&problems) {}

  const std::string& file() const { return file_; }
  const std::string& document() const { return document_; }

  void report(const YAML::Mark& mark, std::string message);

  /// "file:line:column", for pointing at an earlier definition.
  std::string where(const YAML::Mark& mark) const;

 private:
  std::string file_;
  std::string document_;
  std::vector<LoadProblem>* problems_;
};

/// A string value with where it was written.
struct Scalar {
  std::string text;
  YAML::Mark mark;
};

/// "a mapping", "a list", "\"text\"" or "null": what was found where something else was expected.
std::string describeType(const YAML::Node& node);

/// "a, b, c"
std::string joinWords(const std::vector<std::string_view>& words);

/// "path[index]"
std::string indexed(const std::string& path, std::size_t index);

/// One mapping, its allowed keys, typed access with located errors.
class Fields {
 public:
  using Keys = std::vector<std::string_view>;

  /// `node` may be null (an empty mapping); anything else but a mapping is reported. `allowed`
  /// nullopt accepts any key (label maps); an empty list accepts none (`runAsNonRoot: {}`).
  Fields(const YAML::Node& node, std::string path, std::optional<Keys> allowed, Diagnostics& diag,
         YAML::Mark fallbackMark = YAML::Mark::null_mark());

  /// The mapping under `key`, located at the key when its value is null or absent.
  Fields sub(std::string_view key, std::optional<Keys> allowed) const;

  bool ok() const { return ok_; }
  const YAML::Mark& mark() const { return mark_; }
  Diagnostics& diag() const { return *diag_; }
  std::string pathOf(std::string_view key) const;

  /// True when `key` is written, even with a null value.
  bool has(std::string_view key) const { return entries_.find(key) != entries_.end(); }

  YAML::Mark keyMark(std::string_view key) const { return entries_.find(key)->second.key.Mark(); }

  /// The value of `key`; nullopt when absent or null, which Kubernetes treats alike.
  std::optional<YAML::Node> value(std::string_view key) const;

  /// Like value(), reporting "<key> is required" when the key is absent or null.
  std::optional<YAML::Node> required(std::string_view key) const;

  std::optional<Scalar> string(std::string_view key) const;

  /// Only plain `true`/`false` (any case Kubernetes accepts); a quoted "true" is a string, and
  /// YAML 1.1's yes/no/on/off are reported with the word to write instead.
  std::optional<bool> boolean(std::string_view key) const;

  /// A list of strings; nullopt when absent, null, or not a list (reported).
  std::optional<std::vector<Scalar>> strings(std::string_view key) const;

  /// Entries of a string-to-string mapping such as matchLabels, keys in sorted order.
  std::vector<std::pair<Scalar, Scalar>> stringMap(std::string_view key) const;

  void report(const YAML::Mark& mark, std::string message) const {
    diag_->report(mark, std::move(message));
  }

 private:
  struct Entry {
    YAML::Node key;
    YAML::Node value;
  };

  void addEntry(const YAML::Node& key, const YAML::Node& value);
  std::optional<Scalar> toString(const YAML::Node& node, const std::string& path) const;

  std::string path_;
  std::optional<Keys> allowed_;
  Diagnostics* diag_;
  YAML::Mark mark_;
  bool ok_ = true;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace imagegate
