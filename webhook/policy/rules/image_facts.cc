// Rules on what the registry says about the image: facts fetched before evaluation.

#include <cstdint>
#include <cstdio>
#include <iterator>

#include "common/quantity.h"
#include "policy/rules/rule_support.h"

namespace imagegate::policy {
namespace {

std::string humanBytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(units)) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return text;
}

class MaxImageSize final : public RuleCheck {
 public:
  MaxImageSize(std::uint64_t compressedBytes, std::string compressedText)
      : compressedBytes_(compressedBytes), compressedText_(std::move(compressedText)) {}

  static std::shared_ptr<const RuleCheck> read(const Fields& rule, std::string_view key) {
    const Fields body = rule.sub(key, Fields::Keys{"compressed"});
    const auto compressed = body.string("compressed");
    if (!compressed) {
      body.report(body.mark(), body.pathOf("compressed") + " is required, e.g. compressed: 200Mi");
      return std::make_shared<const MaxImageSize>(0, "");
    }
    const auto bytes = parseByteQuantity(compressed->text);
    if (!bytes || *bytes == 0) {
      body.report(compressed->mark, body.pathOf("compressed") +
                                        " must be a positive quantity such as "
                                        "500Mi or 1Gi (suffixes Ki Mi Gi Ti, k M G T), got \"" +
                                        compressed->text + "\"");
      return std::make_shared<const MaxImageSize>(0, "");
    }
    return std::make_shared<const MaxImageSize>(*bytes, compressed->text);
  }

  FactNeeds needs(const Target&) const override { return {.layerSizes = true}; }

  bool readsOnlyImage() const override { return true; }

  Finding check(const Target& target) const override {
    return withFacts(target, [&](const image::ImageFacts& facts) {
      const std::uint64_t size = facts.compressedSize();
      if (size <= compressedBytes_) return pass();
      return fail("image " + describeImage(*target.subject) + " is " + humanBytes(size) +
                      " compressed (" + std::to_string(facts.layers.size()) +
                      " layers), over the limit of " + compressedText_,
                  "shrink the image: build a multi-stage image whose final stage holds only what "
                  "runs (e.g. a distroless or scratch base), or raise maxImageSize");
    });
  }

 private:
  std::uint64_t compressedBytes_;  ///< Limit on the sum of the manifest's layer sizes.
  std::string compressedText_;     ///< As written, for messages.
};

}  // namespace

std::vector<RuleType> imageFactsRuleTypes() {
  return {
      {"maxImageSize", RuleLevel::kImage,
       "the sum of the image's compressed layer sizes is within the limit", MaxImageSize::read},
  };
}

}  // namespace imagegate::policy
