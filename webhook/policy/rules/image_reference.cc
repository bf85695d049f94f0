// Rules on the image reference alone: where the image comes from and how it is pinned.

#include "common/glob.h"
#include "image/reference_glob.h"
#include "policy/rules/rule_support.h"

namespace imagegate::policy {
namespace {

using image::ImageRef;

std::vector<std::string> readRegistryPatterns(const Fields& rule, std::string_view key,
                                              std::string_view emptyMeans) {
  if (!rule.value(key)) {
    rule.report(rule.keyMark(key), rule.pathOf(key) + " must be a list of registry patterns");
    return {};
  }
  return readGlobs(rule, key, emptyMeans).value_or(std::vector<std::string>{});
}

class AllowedRegistries final : public RuleCheck {
 public:
  explicit AllowedRegistries(std::vector<std::string> patterns) : patterns_(std::move(patterns)) {}

  static std::shared_ptr<const RuleCheck> read(const Fields& rule, std::string_view key) {
    return std::make_shared<const AllowedRegistries>(
        readRegistryPatterns(rule, key, "would deny every image; list the registries to allow"));
  }

  bool readsOnlyImage() const override { return true; }

  Finding check(const Target& target) const override {
    return withImage(target, [&](const ImageRef& image) {
      if (anyMatches(patterns_, image.str(), image::imageGlobMatch)) return pass();
      return fail("image " + describeImage(*target.subject) +
                      " is not from an allowed registry (allowed: " + joinPatterns(patterns_) + ")",
                  "change image to a reference matching one of: " + joinPatterns(patterns_));
    });
  }

 private:
  std::vector<std::string> patterns_;
};

class DisallowedRegistries final : public RuleCheck {
 public:
  explicit DisallowedRegistries(std::vector<std::string> patterns)
      : patterns_(std::move(patterns)) {}

  static std::shared_ptr<const RuleCheck> read(const Fields& rule, std::string_view key) {
    return std::make_shared<const DisallowedRegistries>(readRegistryPatterns(rule, key, ""));
  }

  bool readsOnlyImage() const override { return true; }

  Finding check(const Target& target) const override {
    return withImage(target, [&](const ImageRef& image) {
      const std::string reference = image.str();
      const auto hit = std::find_if(patterns_.begin(), patterns_.end(), [&](const std::string& p) {
        return image::imageGlobMatch(p, reference);
      });
      if (hit == patterns_.end()) return pass();
      return fail("image " + describeImage(*target.subject) +
                      " is from a disallowed registry (matches \"" + *hit + "\")",
                  "change image to a reference that matches none of: " + joinPatterns(patterns_));
    });
  }

 private:
  std::vector<std::string> patterns_;
};

/// One violated requirement of an imageReference rule.
struct ReferenceProblem {
  std::string problem;
  std::string remediation;
};

class ImageReference final : public RuleCheck {
 public:
  static std::shared_ptr<const RuleCheck> read(const Fields& rule, std::string_view key) {
    const Fields body = rule.sub(key, Fields::Keys{"disallowTags", "requireDigest", "requireTag"});
    auto check = std::make_shared<ImageReference>();
    check->disallowTags_ = readGlobs(body, "disallowTags").value_or(std::vector<std::string>{});
    check->requireDigest_ = body.boolean("requireDigest").value_or(false);
    check->requireTag_ = body.boolean("requireTag").value_or(false);
    return check;
  }

  bool readsOnlyImage() const override { return true; }

  Finding check(const Target& target) const override {
    return withImage(target, [&](const ImageRef& image) {
      const auto problems = problemsOf(image);
      if (problems.empty()) return pass();
      std::string message = "image " + describeImage(*target.subject);
      std::string remediation;
      for (std::size_t i = 0; i < problems.size(); ++i) {
        message += (i == 0 ? " " : " and ") + problems[i].problem;
        remediation += (i == 0 ? "" : "; ") + problems[i].remediation;
      }
      return fail(message, remediation);
    });
  }

 private:
  std::vector<ReferenceProblem> problemsOf(const ImageRef& image) const {
    std::vector<ReferenceProblem> problems;
    // With a digest the tag is ignored when pulling, so it cannot make the image mutable.
    const bool tagDecides = image.digest.empty() && !image.tag.empty();
    if (tagDecides && anyMatches(disallowTags_, image.tag, globMatch)) {
      problems.push_back(
          {"uses disallowed tag \"" + image.tag + "\"" +
               (image.tagImplied ? " (implied: the reference has no tag or digest)" : ""),
           "set image to a specific version tag or a digest, e.g. " + image.name() + ":<version>"});
    }
    if (requireTag_ && (image.tag.empty() || image.tagImplied)) {
      problems.push_back({"does not spell out a tag",
                          "add an explicit tag to image, e.g. " + image.name() + ":<version>"});
    }
    if (requireDigest_ && image.digest.empty()) {
      problems.push_back({"is not pinned by a digest",
                          "pin image by digest, e.g. " + image.name() + "@sha256:<digest>"});
    }
    return problems;
  }

  std::vector<std::string> disallowTags_;  ///< Globs on the tag; an implied tag is "latest".
  bool requireDigest_ = false;
  bool requireTag_ = false;  ///< The reference must spell out a tag.
};

}  // namespace

std::vector<RuleType> imageReferenceRuleTypes() {
  return {
      {"allowedRegistries", RuleLevel::kImage,
       "the image matches one of the listed registry patterns", AllowedRegistries::read},
      {"disallowedRegistries", RuleLevel::kImage,
       "the image matches none of the listed registry patterns", DisallowedRegistries::read},
      {"imageReference", RuleLevel::kImage,
       "the reference has no disallowed tag, and a tag or digest where required",
       ImageReference::read},
  };
}

}  // namespace imagegate::policy
