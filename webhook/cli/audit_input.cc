#include "cli/audit_input.h"

#include <algorithm>
#include <system_error>

#include "common/bounded_file.h"
#include "common/error.h"
#include "common/yaml_json.h"

namespace imagegate::cli::audit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::size_t kMaxDepth = 64;

bool isManifest(const fs::path& path) {
  const std::string extension = path.extension().string();
  return extension == ".yaml" || extension == ".yml" || extension == ".json";
}

/// stdin, bounded like a file: a pipe has no size to check up front.
std::string readBounded(std::istream& in, std::size_t maxBytes) {
  std::string text;
  char buffer[65536];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (text.size() > maxBytes) {
      throw Error("stdin is larger than --max-input-bytes (" + std::to_string(maxBytes) +
                  " bytes); raise it or audit one namespace at a time");
    }
  }
  return text;
}

bool looksLikeJson(const std::string& source, std::string_view text) {
  if (source.ends_with(".json")) return true;
  if (source.ends_with(".yaml") || source.ends_with(".yml")) return false;
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && (text[first] == '{' || text[first] == '[');
}

/// metadata.managedFields: most of what the API server returns and no rule reads it.
void dropManagedFields(json& object) {
  const auto metadata = object.find("metadata");
  if (metadata != object.end() && metadata->is_object()) metadata->erase("managedFields");
}

void addDocument(json document, const std::string& source, std::size_t index, Auditor& auditor) {
  std::vector<json> objects;
  try {
    objects = objectsOf(std::move(document), source);
  } catch (const Error& e) {
    // objectsOf names the source; the report names it again, with the document.
    std::string problem = e.what();
    if (problem.starts_with(source + ": ")) problem = problem.substr(source.size() + 2);
    auditor.addUnreadable(source, index, problem);
    return;
  }
  for (json& object : objects) {
    dropManagedFields(object);
    auditor.add(object, source, index);
  }
}

void addText(const std::string& text, const std::string& source, Auditor& auditor) {
  if (looksLikeJson(source, text)) {
    json document;
    try {
      document = parseInput(text, source, kMaxDepth);
    } catch (const Error& e) {
      std::string problem = e.what();
      if (problem.starts_with(source + ": ")) problem = problem.substr(source.size() + 2);
      if (problem.starts_with(source + " ")) problem = problem.substr(source.size() + 1);
      auditor.addUnreadable(source, 0, problem);
      return;
    }
    addDocument(std::move(document), source, 0, auditor);
    return;
  }
  YamlToJsonLimits limits;
  limits.maxDepth = kMaxDepth;
  // Without aliases a value takes a byte or more; more values than that come from aliases.
  limits.maxValues = text.size() + 1024;
  for (YamlDocument& document : yamlStreamToJson(text, limits)) {
    if (!document.value) {
      auditor.addUnreadable(source, document.index, "not YAML: " + document.problem);
      continue;
    }
    addDocument(std::move(*document.value), source, document.index, auditor);
  }
}

}  // namespace

std::vector<fs::path> manifestFiles(const std::string& input) {
  std::error_code error;
  const fs::file_status status = fs::status(input, error);
  if (error || !fs::exists(status)) {
    throw Error("cannot read input " + input + ": " +
                (error ? error.message() : std::string("No such file or directory")));
  }
  if (!fs::is_directory(status)) return {fs::path(input)};
  std::vector<fs::path> files;
  const auto options = fs::directory_options::follow_directory_symlink;
  for (fs::recursive_directory_iterator it(input, options, error), end; !error && it != end;
       it.increment(error)) {
    if (it->is_regular_file() && isManifest(it->path())) files.push_back(it->path());
  }
  if (error) throw Error("cannot list input directory " + input + ": " + error.message());
  if (files.empty()) {
    throw Error("input directory " + input + " has no *.yaml, *.yml or *.json file");
  }
  std::sort(files.begin(), files.end());
  return files;
}

void readInputs(const std::vector<std::string>& inputs, std::size_t maxBytes, Auditor& auditor,
                std::istream& standardInput) {
  std::size_t remaining = maxBytes;
  for (const std::string& input : inputs) {
    if (input == "-") {
      const std::string text = readBounded(standardInput, remaining);
      remaining -= text.size();
      addText(text, "stdin", auditor);
      continue;
    }
    for (const fs::path& file : manifestFiles(input)) {
      const std::string text = readBoundedFile(file.string(), remaining, "input");
      remaining -= text.size();
      addText(text, file.string(), auditor);
    }
  }
}

}  // namespace imagegate::cli::audit
