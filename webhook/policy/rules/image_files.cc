// Rules on what is inside the image: its merged filesystem (or the final layer's part of it),
// read from the layers before evaluation. A multi-stage build should leave shells, compilers,
// package managers and secrets behind in its builder stage; these rules prove that it did.

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <set>

#include "policy/rules/rule_support.h"

namespace imagegate::policy {
namespace {

constexpr std::size_t kPathsShown = 3;

constexpr std::string_view kMultiStage =
    "build in a separate stage and COPY only the artifacts into a scratch, distroless or -slim "
    "final stage";

// Presets are data: each is a list of program names (found in any bin/ or sbin/ directory) and
// extra globs. policies/README.md lists them; keep the two in step.
struct Preset {
  std::string_view name;
  std::vector<std::string_view> programs;
  std::vector<std::string_view> globs;
};

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = {
      {"shells",
       {"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox"},
       {}},
      {"compilers",
       {"gcc",
        "g++",
        "cc",
        "c++",
        "clang",
        "clang++",
        "ld",
        "as",
        "make",
        "cmake",
        "ninja",
        "go",
        "rustc",
        "cargo",
        "javac",
        "tsc",
        "node-gyp",
        "gcc-[0-9]*",
        "g++-[0-9]*",
        "*-linux-gnu-gcc",
        "*-linux-gnu-gcc-[0-9]*"},
       {"**/include/stdio.h", "**/include/python*/Python.h", "usr/lib/gcc/**/cc1",
        "usr/libexec/gcc/**/cc1"}},
      {"packageManagers",
       {"apt", "apt-get", "dpkg", "apk", "yum", "dnf", "rpm", "microdnf", "pip", "pip3", "npm",
        "npx", "yarn", "pnpm", "gem", "composer"},
       {}},
      {"networkTools", {"curl", "wget", "nc", "ncat", "socat", "telnet"}, {}},
  };
  return all;
}

std::vector<std::string> presetGlobs(const Preset& preset) {
  std::vector<std::string> globs;
  for (std::string_view program : preset.programs) {
    globs.push_back("**/bin/" + std::string(program));
    globs.push_back("**/sbin/" + std::string(program));
  }
  for (std::string_view glob : preset.globs) globs.emplace_back(glob);
  return globs;
}

std::string presetNames() {
  std::string names;
  for (const Preset& preset : presets())
    names += (names.empty() ? "" : ", ") + std::string(preset.name);
  return names;
}

/// A layer's history line as a Dockerfile would say it: "RUN apk add bash", "COPY file:... in /".
std::string historyLine(const image::ImageFacts& facts, std::size_t layer) {
  const auto& history = facts.imageConfig.layerHistory;
  if (layer >= history.size()) return "";
  std::string line = history[layer];
  constexpr std::string_view kNop = "/bin/sh -c #(nop) ";
  constexpr std::string_view kShell = "/bin/sh -c ";
  constexpr std::string_view kBuildkit = " # buildkit";
  if (line.starts_with(kNop)) {
    line = line.substr(kNop.size());
  } else if (line.starts_with(kShell)) {
    line = "RUN " + line.substr(kShell.size());
  }
  if (line.ends_with(kBuildkit)) line.resize(line.size() - kBuildkit.size());
  while (!line.empty() && line.front() == ' ') line.erase(0, 1);
  constexpr std::size_t kMaxLine = 80;
  if (line.size() > kMaxLine) line = line.substr(0, kMaxLine - 3) + "...";
  return line;
}

/// "layer 4/5, RUN apk add bash"
std::string layerText(const image::ImageFacts& facts, const image::MergedFilesystem& files,
                      std::size_t layer) {
  const std::string line = historyLine(facts, layer);
  return "layer " + std::to_string(layer + 1) + "/" + std::to_string(files.layerCount()) +
         (line.empty() ? "" : ", " + line);
}

/// One file a rule objects to: where it is and, for messages, what it is.
struct FileHit {
  std::string path;  ///< As the container sees it, e.g. "/bin/sh".
  std::size_t layer = 0;
  std::string what;  ///< e.g. "setuid", "PEM private key"; may be empty.
  /// The later layer that deletes or replaces it (the file is still in `layer`'s blob).
  std::optional<std::size_t> hiddenBy;
};

/// A hit for every file of the merged view that `what` describes (nullopt: not a hit).
template <typename Describe>
std::vector<FileHit> hitsWhere(const image::MergedFilesystem& files, Describe what) {
  std::vector<FileHit> hits;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const image::MergedEntry merged = files.at(i);
    if (std::optional<std::string> detail = what(merged.entry)) {
      hits.push_back(
          {"/" + std::string(merged.entry.path), merged.layer, std::move(*detail), std::nullopt});
    }
  }
  return hits;
}

/// "; deleted by layer 3/3, still in layer 1's blob" for a hit a later layer hides.
std::string hiddenText(const FileHit& hit, const image::MergedFilesystem& files) {
  if (!hit.hiddenBy) return "";
  return "; deleted by layer " + std::to_string(*hit.hiddenBy + 1) + "/" +
         std::to_string(files.layerCount()) + ", still in layer " + std::to_string(hit.layer + 1) +
         "'s blob";
}

/// "/bin/sh (layer 4/5, RUN apk add bash), /bin/ash (...), /bin/busybox (...) and 27 more"
std::string listHits(const std::vector<FileHit>& hits, const image::ImageFacts& facts,
                     const image::MergedFilesystem& files) {
  std::string text;
  for (std::size_t i = 0; i < hits.size() && i < kPathsShown; ++i) {
    const FileHit& hit = hits[i];
    text += (i == 0 ? "" : ", ") + hit.path + " (" + (hit.what.empty() ? "" : hit.what + ", ") +
            layerText(facts, files, hit.layer) + hiddenText(hit, files) + ")";
  }
  if (hits.size() > kPathsShown)
    text += " and " + std::to_string(hits.size() - kPathsShown) + " more";
  return text;
}

/// Every hit, for reports that list files (`imagegate check --output json`); bounded.
std::vector<FileFinding> fileFindings(const std::vector<FileHit>& hits,
                                      const image::ImageFacts& facts) {
  constexpr std::size_t kFilesReported = 100;
  std::vector<FileFinding> findings;
  for (std::size_t i = 0; i < hits.size() && i < kFilesReported; ++i) {
    const FileHit& hit = hits[i];
    std::string detail = hit.what;
    if (hit.hiddenBy) {
      detail += (detail.empty() ? "" : "; ") + std::string("deleted by layer ") +
                std::to_string(*hit.hiddenBy + 1) + ", still in this layer's blob";
    }
    findings.push_back({hit.path, hit.layer,
                        hit.layer < facts.layers.size() ? facts.layers[hit.layer].digest : "",
                        historyLine(facts, hit.layer), std::move(detail)});
  }
  return findings;
}

/// A failure listing `hits`.
Finding failWith(std::string message, std::string remediation, const std::vector<FileHit>& hits,
                 const image::ImageFacts& facts) {
  Finding finding = fail(std::move(message), std::move(remediation));
  finding.files = fileFindings(hits, facts);
  return finding;
}

/// "final image \"app:1\" contains /bin/sh (...)" or "... contains 30 <noun>: ..."
std::string containsText(const Subject& subject, const std::vector<FileHit>& hits,
                         std::string_view noun, const image::ImageFacts& facts,
                         const image::MergedFilesystem& files) {
  return "final image " + describeImage(subject) + " contains " +
         (hits.size() == 1 ? "" : std::to_string(hits.size()) + " " + std::string(noun) + ": ") +
         listHits(hits, facts, files);
}

/// Runs `rule` on the image's merged filesystem, or applies onFetchError when it could not be
/// read.
Finding withFiles(
    const Target& target,
    const std::function<Finding(const image::ImageFacts&, const image::MergedFilesystem&)>& rule) {
  return withFacts(target, [&](const image::ImageFacts& facts) {
    const ImageLookup& lookup = *target.subject->lookup;
    if (!lookup.files) {
      return unresolved(target, lookup.filesError.empty()
                                    ? "the files of " + facts.ref.str() + " were not read"
                                    : lookup.filesError);
    }
    return rule(facts, *lookup.files);
  });
}

FactNeeds fileNeeds() {
  FactNeeds needs;
  needs.config = true;  // the history lines of the layers, for messages
  needs.files = true;
  return needs;
}

enum class Scope { kImage, kFinalLayer };

class ForbiddenFiles final : public RuleCheck {
 public:
  struct Group {
    std::string name;  ///< A preset's name, or "paths".
    std::vector<std::string> globs;
  };
  ForbiddenFiles(std::vector<Group> groups, Scope scope)
      : groups_(std::move(groups)), scope_(scope) {
    // Every group's globs in one list, for one walk of the image (findReachableAny).
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      for (const std::string& glob : groups_[g].globs) {
        globs_.push_back(glob);
        groupOfGlob_.push_back(g);
      }
    }
  }

  static std::shared_ptr<const RuleCheck> read(const Fields& rule, std::string_view key) {
    const Fields body = rule.sub(key, Fields::Keys{"presets", "paths", "scope"});
    std::vector<Group> groups;
    if (const auto names = body.strings("presets")) {
      for (const Scalar& name : *names) {
        const auto preset = std::find_if(presets().begin(), presets().end(),
                                         [&](const Preset& p) { return p.name == name.text; });
        if (preset == presets().end()) {
          body.report(name.mark, body.pathOf("presets") + ": unknown preset \"" + name.text +
                                     "\"; the presets are " + presetNames());
          continue;
        }
        groups.push_back({std::string(preset->name), presetGlobs(*preset)});
      }
    }
    if (const auto paths = body.strings("paths")) {
      Group custom{"paths", {}};
      for (const Scalar& path : *paths) {
        if (path.text.empty() || path.text == "/") {
          body.report(path.mark, body.pathOf("paths") +
                                     ": a path must name a file or a glob, e.g. /usr/bin/curl or "
                                     "**/*.map");
          continue;
        }
        custom.globs.push_back(path.text);
      }
      if (!custom.globs.empty()) groups.push_back(std::move(custom));
    }
    if (!body.has("presets") && !body.has("paths")) {
      body.report(body.mark(), body.pathOf("presets") + " or " + body.pathOf("paths") +
                                   " is required, e.g. presets: [shells] or paths: "
                                   "[\"/usr/bin/curl\"]");
    }
    Scope scope = Scope::kImage;
    if (const auto written = body.string("scope")) {
      if (written->text == "finalLayer") {
        scope = Scope::kFinalLayer;
      } else if (written->text != "image") {
        body.report(written->mark, body.pathOf("scope") + " must be image or finalLayer, got \"" +
                                       written->text + "\"");
      }
    }
    return std::make_shared<const ForbiddenFiles>(std::move(groups), scope);
  }

  FactNeeds needs(const Target&) const override { return fileNeeds(); }

  bool readsOnlyImage() const override { return true; }

  Finding check(const Target& target) const override {
    return withFiles(target, [&](const image::ImageFacts& facts,
                                 const image::MergedFilesystem& files) {
      const std::size_t last = files.layerCount() == 0 ? 0 : files.layerCount() - 1;
      std::map<std::string, std::size_t> found;  // path -> layer, sorted, one per name
      std::set<std::string> groupsHit;
      for (const image::ReachableMatch& match : files.findReachableAny(globs_)) {
        if (scope_ == Scope::kFinalLayer && !addedByLayer(files, match, last)) continue;
        found.emplace("/" + match.name, match.file.layer);
        for (const std::uint32_t glob : match.patterns) {
          groupsHit.insert(groups_[groupOfGlob_[glob]].name);
        }
      }
      if (found.empty()) return pass();
      std::vector<FileHit> hits;
      for (const auto& [path, layer] : found) hits.push_back({path, layer, "", std::nullopt});
      std::string kinds;
      for (const std::string& name : groupsHit) kinds += (kinds.empty() ? "" : ", ") + name;
      std::string message = containsText(*target.subject, hits, "forbidden files", facts, files);
      if (hits.size() > 1 || groupsHit.size() > 1) message += " (" + kinds + ")";
      if (scope_ == Scope::kFinalLayer) message += ", added by its final layer";
      return failWith(message, std::string(kMultiStage), hits, facts);
    });
  }

 private:
  /// True when the final layer wrote the file or the name that reaches it.
  static bool addedByLayer(const image::MergedFilesystem& files, const image::ReachableMatch& match,
                           std::size_t layer) {
    if (match.file.layer == layer) return true;
    const auto name = files.find(match.name);
    return name && name->layer == layer;
  }

  std::vector<Group> groups_;
  Scope scope_;
  std::vector<std::string> globs_;        ///< Every group's globs, in group order.
  std::vector<std::size_t> groupOfGlob_;  ///< The group of each of globs_.
};

bool isGlob(std::string_view path) { return path.find_first_of("*?[") != std::string_view::npos; }

class RequiredFiles final : public RuleCheck {
 public:
  explicit RequiredFiles(std::vector<std::string> paths) : paths_(std::move(paths)) {}

  static std::shared_ptr<const RuleCheck> read(const Fields& rule, std::string_view key) {
    const Fields body = rule.sub(key, Fields::Keys{"paths"});
    std::vector<std::string> paths;
    if (const auto written = body.strings("paths")) {
      for (const Scalar& path : *written) paths.push_back(path.text);
    }
    if (paths.empty()) {
      body.report(body.mark(), body.pathOf("paths") +
                                   " is required, e.g. paths: "
                                   "[\"/etc/ssl/certs/ca-certificates.crt\"]");
    }
    return std::make_shared<const RequiredFiles>(std::move(paths));
  }

  FactNeeds needs(const Target&) const override { return fileNeeds(); }

  bool readsOnlyImage() const override { return true; }

  Finding check(const Target& target) const override {
    return withFiles(target, [&](const image::ImageFacts&, const image::MergedFilesystem& files) {
      std::vector<std::string> missing;
      for (const std::string& path : paths_) {
        const bool present = isGlob(path) ? !files.findReachable(path).empty()
                                          : files.resolve(path).status ==
                                                image::MergedFilesystem::Resolution::Status::kFound;
        if (!present) missing.push_back(path);
      }
      if (missing.empty()) return pass();
      return fail(
          "final image " + describeImage(*target.subject) + " lacks " + joinPatterns(missing),
          "COPY " + std::string(missing.size() == 1 ? "it" : "them") +
              " into the final stage (e.g. COPY --from=build " + missing.front() +
              " ...) or start the final stage from a base image that has " +
              (missing.size() == 1 ? "it" : "them"));
    });
  }

 private:
  std::vector<std::string> paths_;
};

class NoSetuidFiles final : public RuleCheck {
 public:
  FactNeeds needs(const Target&) const override { return fileNeeds(); }

  bool readsOnlyImage() const override { return true; }

  Finding check(const Target& target) const override {
    return withFiles(target, [&](const image::ImageFacts& facts,
                                 const image::MergedFilesystem& files) {
      const std::vector<FileHit> hits =
          hitsWhere(files, [](const image::FileEntry& entry) -> std::optional<std::string> {
            if (entry.type == image::EntryType::kDirectory ||
                entry.type == image::EntryType::kSymlink || entry.isWhiteoutMarker() ||
                (!entry.isSetuid() && !entry.isSetgid())) {
              return std::nullopt;
            }
            return entry.isSetuid() && entry.isSetgid() ? "setuid and setgid"
                   : entry.isSetuid()                   ? "setuid"
                                                        : "setgid";
          });
      if (hits.empty()) return pass();
      return failWith(
          containsText(*target.subject, hits, "setuid or setgid files", facts, files),
          "remove the setuid/setgid bits in the build stage (chmod u-s,g-s) or leave these files "
          "out: " +
              std::string(kMultiStage),
          hits, facts);
    });
  }
};

class NoSecrets final : public RuleCheck {
 public:
  FactNeeds needs(const Target&) const override { return fileNeeds(); }

  bool readsOnlyImage() const override { return true; }

  Finding check(const Target& target) const override {
    return withFiles(target, [&](const image::ImageFacts& facts,
                                 const image::MergedFilesystem& files) {
      const std::vector<FileHit> hits = secretsInEveryLayer(files);
      if (hits.empty()) return pass();
      const auto hidden = static_cast<std::size_t>(std::count_if(
          hits.begin(), hits.end(), [](const FileHit& hit) { return hit.hiddenBy.has_value(); }));
      std::string message;
      if (hidden == 0) {
        message = containsText(*target.subject, hits, "files with secrets", facts, files);
      } else {
        // "final image contains" would be wrong: the merged view lacks them, the blobs do not.
        message = "the layers of image " + describeImage(*target.subject) + " hold " +
                  std::to_string(hits.size()) + (hits.size() == 1 ? " file" : " files") +
                  " with secrets (" + std::to_string(hidden) +
                  " deleted by a later layer, still extractable by anyone who pulls the image): " +
                  listHits(hits, facts, files);
      }
      return failWith(std::move(message),
                      "rotate these credentials and keep them out of every layer (deleting them "
                      "in a later layer leaves them in the earlier one): use RUN "
                      "--mount=type=secret at build time and a Kubernetes Secret at run time",
                      hits, facts);
    });
  }

 private:
  /// Every layer's secrets, not only the merged view's: a layer is a blob anyone who pulls the
  /// image can unpack, whatever the layers above it delete. Sorted by path, then layer.
  static std::vector<FileHit> secretsInEveryLayer(const image::MergedFilesystem& files) {
    std::vector<FileHit> hits;
    for (std::size_t layer = 0; layer < files.layerCount(); ++layer) {
      const image::LayerIndex& index = files.layerIndex(layer);
      for (std::size_t i = 0; i < index.size(); ++i) {
        const image::FileEntry entry = index.entry(i);
        if (entry.secret == image::SecretKind::kNone || entry.isWhiteoutMarker()) continue;
        hits.push_back({"/" + std::string(entry.path), layer,
                        std::string(image::secretKindName(entry.secret)),
                        files.hiddenBy(layer, entry)});
      }
    }
    std::stable_sort(hits.begin(), hits.end(), [](const FileHit& a, const FileHit& b) {
      return a.path < b.path;  // stable: layers stay in order for one path
    });
    return hits;
  }
};

}  // namespace

std::vector<RuleType> imageFilesRuleTypes() {
  return {
      {"forbiddenFiles", RuleLevel::kImage,
       "the final image holds no file of the listed presets (shells, compilers, ...) or paths",
       ForbiddenFiles::read},
      {"requiredFiles", RuleLevel::kImage, "the final image holds every listed path",
       RequiredFiles::read},
      {"noSetuidFiles", RuleLevel::kImage, "the final image holds no setuid or setgid file",
       readEmptyBody<NoSetuidFiles>},
      {"noSecrets", RuleLevel::kImage,
       "no layer of the image holds a private key, .env, .git or credentials file (deleted ones "
       "included: the earlier layer keeps them)",
       readEmptyBody<NoSecrets>},
  };
}

}  // namespace imagegate::policy
