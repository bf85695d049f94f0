#include "policy/fields.h"

#include "common/glob.h"

namespace imagegate::policy {

std::optional<std::vector<std::string>> readGlobs(const Fields& fields, std::string_view key,
                                                  std::string_view emptyMeans) {
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

}  // namespace imagegate::policy
