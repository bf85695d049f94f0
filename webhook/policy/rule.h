#pragma once

#include <memory>
#include <string_view>
#include <vector>

// What every rule type is, for the loader, the evaluator and `imagegate check`. Each type is
// defined once, in a family file under rules/, and listed in ruleTypes().
namespace imagegate {
class Fields;  // common/yaml_fields.h
}  // namespace imagegate

namespace imagegate::policy {

using imagegate::Fields;
struct Finding;
struct Target;

/// Where a rule looks: how often it runs and whether `imagegate check` runs it.
enum class RuleLevel {
  kPod,        ///< Once per pod that has a selected container; no container in the result.
  kContainer,  ///< Once per selected container.
  kImage,      ///< Once per selected container, and by `imagegate check` on a bare image.
};

/// The image facts a rule will consult for one container, so they are fetched beforehand.
struct FactNeeds {
  bool config = false;      ///< The image config (USER, ...).
  bool layerSizes = false;  ///< The manifest's layer descriptors.
  bool files = false;       ///< The merged filesystem: every layer fetched and indexed.
  /// The merged filesystem only when the image config's USER is a name (resolved through the
  /// image's /etc/passwd): known only once the config is fetched, and most USERs are numeric.
  bool filesIfNamedUser = false;

  bool any() const { return config || layerSizes || files || filesIfNamedUser; }
  FactNeeds& operator|=(const FactNeeds& other) {
    config = config || other.config;
    layerSizes = layerSizes || other.layerSizes;
    files = files || other.files;
    filesIfNamedUser = filesIfNamedUser || other.filesIfNamedUser;
    return *this;
  }
};

/// True when USER ("app", "app:grp", "1000", "root") names its user by a name other than root,
/// which only the image's /etc/passwd turns into a UID.
bool isNamedUser(std::string_view user);

/// One rule as written in a policy, read and ready to check. Immutable: one instance is shared by
/// every copy of the policy and every thread evaluating it.
class RuleCheck {
 public:
  virtual ~RuleCheck() = default;
  virtual FactNeeds needs(const Target&) const { return {}; }
  virtual Finding check(const Target& target) const = 0;
  /// True when check() reads only the image: its reference as written, the registry's facts and
  /// files for it, and the policy's onFetchError; never the pod or the container. Its findings are
  /// then the same for every container of that image, and evaluate() keeps them per image and
  /// policy revision (policy/findings_memo.h) instead of running the rule for each container.
  virtual bool readsOnlyImage() const { return false; }
};

/// Reads the body at `rule[key]`, reporting problems through `rule`. Always returns a check: a
/// body with problems fails the whole load, so the check is never run.
using RuleReader = std::shared_ptr<const RuleCheck> (*)(const Fields& rule, std::string_view key);

struct RuleType {
  std::string_view key;  ///< The YAML key, e.g. "runAsNonRoot".
  RuleLevel level;
  std::string_view summary;  ///< What it checks, one line, for help texts.
  RuleReader read;
};

/// Every rule type, in the order the loader's messages list them.
const std::vector<RuleType>& ruleTypes();

}  // namespace imagegate::policy
