#include <algorithm>
#include <boost/program_options.hpp>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/sarif.h"
#include "cli/version.h"
#include "cli/wiring.h"
#include "common/error.h"
#include "policy/evaluator.h"
#include "policy/rule.h"

namespace imagegate::cli {
namespace {

namespace po = boost::program_options;
using policy::RuleResult;
using policy::RuleStatus;

/// The help text; the rules it lists are the image-level entries of the rule table.
std::string usage() {
  std::string text =
      "usage: imagegate check [--policy PATH] [--platform OS/ARCH[/VARIANT]]\n"
      "                       [--registry-config FILE] [--output table|json|sarif] IMAGE...\n"
      "\n"
      "Fetches each image's manifest and config from its registry (and its layers, when a rule\n"
      "judges the files inside) and evaluates the image-level rules of every policy whose images\n"
      "select it. IMAGE is a registry reference (also written docker://REF), or an image on\n"
      "disk named as skopeo names it, to check it before it is pushed:\n"
      "  oci:DIR[:TAG]               an OCI image layout; TAG is a ref.name in its index.json\n"
      "  docker-archive:FILE[:REF]   a `docker save` tarball; REF one of its RepoTags, or @N\n"
      "An image on disk is judged as the full reference its source names (ref.name,\n"
      "io.containerd.image.name, RepoTags), else as oci.invalid/DIR:TAG or\n"
      "docker-archive.invalid/FILE:TAG. The rules:\n";
  for (const policy::RuleType& type : policy::ruleTypes()) {
    if (type.level != policy::RuleLevel::kImage) continue;
    std::string key(type.key);
    key.resize(std::max<std::size_t>(key.size() + 2, 22), ' ');
    text += "  " + key + std::string(type.summary) + "\n";
  }
  return text +
         "Exit code 0 all pass, 1 an Enforce policy is violated, 2 usage or configuration error,\n"
         "3 an image could not be fetched.\n";
}

// The same budget a review gets when the API server sends no ?timeout=.
constexpr auto kCheckBudget = std::chrono::seconds(30);

struct ImageReport {
  std::string written;
  image::ImageRef ref;
  registry::LocalImagePtr local;  ///< Set for oci: and docker-archive: sources.
  policy::ReviewPlan plan;
  policy::ImageLookup lookup;
  std::vector<RuleResult> results;
};

const char* statusWord(const RuleResult& r) {
  if (r.status == RuleStatus::kPass) return "pass";
  if (r.status == RuleStatus::kWarning || r.action != policy::Action::kEnforce) return "warn";
  return r.status == RuleStatus::kFail ? "fail" : "error";
}

bool violates(const RuleResult& r) {
  return r.action == policy::Action::kEnforce &&
         (r.status == RuleStatus::kFail || r.status == RuleStatus::kError);
}

/// A docker-archive has no manifest: its report shows the image ID (the config's digest) only.
bool hasManifest(const ImageReport& report) {
  return !report.local ||
         report.local->source().transport != registry::LocalTransport::kDockerArchive;
}

void printTable(const std::vector<ImageReport>& reports) {
  for (const ImageReport& report : reports) {
    std::cout << report.ref.str() << "\n";
    if (report.local) std::cout << "  source " << report.written << "\n";
    if (report.lookup.facts) {
      const auto& facts = *report.lookup.facts;
      std::cout << (hasManifest(report) ? "  digest " + facts.manifestDigest
                                        : "  image ID " + facts.config.digest)
                << "  platform " << facts.platform.str() << "  user \"" << facts.imageConfig.user
                << "\"  compressed " << facts.compressedSize() << " bytes\n";
    } else {
      std::cout << "  fetch failed: " << report.lookup.error << "\n";
    }
    if (!report.lookup.filesError.empty()) {
      std::cout << "  files not read: " << report.lookup.filesError << "\n";
    }
    if (!report.lookup.filesNote.empty()) std::cout << "  " << report.lookup.filesNote << "\n";
    if (report.results.empty()) std::cout << "  no policy selects this image\n";
    for (const RuleResult& r : report.results) {
      std::cout << "  " << std::left << std::setw(6) << statusWord(r) << r.policy << "/" << r.rule;
      if (r.status != RuleStatus::kPass) std::cout << ": " << r.message;
      if (r.status != RuleStatus::kPass && !r.remediation.empty()) {
        std::cout << " (fix: " << r.remediation << ")";
      }
      std::cout << "\n";
    }
  }
}

/// The files a rule on image content found, with the layer each came from.
nlohmann::json filesJson(const std::vector<policy::FileFinding>& files) {
  nlohmann::json out = nlohmann::json::array();
  for (const policy::FileFinding& file : files) {
    nlohmann::json entry = {{"path", file.path},
                            {"layerIndex", file.layer},
                            {"layerDigest", file.layerDigest},
                            {"history", file.history}};
    if (!file.detail.empty()) entry["detail"] = file.detail;
    out.push_back(std::move(entry));
  }
  return out;
}

void printJson(const std::vector<ImageReport>& reports) {
  nlohmann::json out = nlohmann::json::array();
  for (const ImageReport& report : reports) {
    nlohmann::json image = {{"image", report.written}, {"reference", report.ref.str()}};
    if (report.local) {
      image["source"] = std::string(registry::transportName(report.local->source().transport));
    }
    if (report.lookup.facts) {
      const auto& facts = *report.lookup.facts;
      if (hasManifest(report)) image["digest"] = facts.manifestDigest;
      image["imageId"] = facts.config.digest;
      image["platform"] = facts.platform.str();
      image["user"] = facts.imageConfig.user;
      image["compressedSize"] = facts.compressedSize();
    } else {
      image["error"] = report.lookup.error;
    }
    image["results"] = nlohmann::json::array();
    for (const RuleResult& r : report.results) {
      nlohmann::json result = {{"policy", r.policy},
                               {"rule", r.rule},
                               {"status", statusWord(r)},
                               {"message", r.message},
                               {"remediation", r.remediation}};
      if (!r.files.empty()) result["files"] = filesJson(r.files);
      image["results"].push_back(std::move(result));
    }
    if (!report.lookup.filesError.empty()) image["filesError"] = report.lookup.filesError;
    if (!report.lookup.filesNote.empty()) image["filesNote"] = report.lookup.filesNote;
    out.push_back(std::move(image));
  }
  std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

void printSarif(const std::vector<ImageReport>& reports, const policy::PolicySet& policies) {
  std::vector<SarifSubject> subjects;
  for (const ImageReport& report : reports) {
    SarifSubject subject;
    subject.name = report.ref.str();
    subject.results = report.results;
    subject.error = report.lookup.error;
    if (report.local) {
      subject.sourcePath = report.local->source().path;
      subject.properties["source"] = report.written;
    }
    if (report.lookup.facts) {
      if (hasManifest(report)) subject.properties["digest"] = report.lookup.facts->manifestDigest;
      subject.properties["imageId"] = report.lookup.facts->config.digest;
    }
    if (!report.lookup.filesError.empty())
      subject.properties["filesError"] = report.lookup.filesError;
    subjects.push_back(std::move(subject));
  }
  const SarifTool tool{"imagegate", kVersion, kInformationUri};
  std::cout << sarifLog(tool, subjects, &policies)
                   .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
            << "\n";
}

/// Opens the sources on disk, so that their references are known before planning. A source that
/// cannot be read is reported like an image that could not be fetched (exit code 3). Two sources
/// judged as the same reference cannot be told apart by the policies: a usage error.
std::map<image::ImageRef, registry::LocalImagePtr> openSources(std::vector<ImageReport>& reports) {
  std::map<image::ImageRef, registry::LocalImagePtr> local;
  std::map<image::ImageRef, std::string> writtenAs;
  for (ImageReport& report : reports) {
    // docker://REF is skopeo's name for a registry reference: never a local source.
    const bool registryOnly = report.written.rfind("docker://", 0) == 0;
    const std::string written = registryOnly ? report.written.substr(9) : report.written;
    const auto source = registryOnly ? std::nullopt : registry::parseLocalSourceName(written);
    if (source) {
      try {
        report.local = registry::openLocalImage(*source);
      } catch (const registry::FetchError& e) {
        report.local = registry::unreadableLocalImage(*source, e);
      }
      report.ref = report.local->reference();
    } else {
      report.ref = image::parseImageRef(written);
    }
    const auto [seen, inserted] = writtenAs.emplace(report.ref, report.written);
    if (!inserted && seen->second != report.written && (report.local || local.count(report.ref))) {
      throw Error(seen->second + " and " + report.written + " are both judged as " +
                  report.ref.str() + "; check them in separate runs");
    }
    if (report.local) local.emplace(report.ref, report.local);
  }
  return local;
}

/// Fetches every image named, whether or not a rule needs its facts (the report shows them), in
/// parallel through the fetcher the webhook uses: a pipeline checking several images waits for
/// the slowest only.
policy::ImageFactsMap fetchAll(const std::vector<ImageReport>& reports,
                               service::FactsFetcher& fetcher) {
  policy::ReviewPlan wanted;
  for (const ImageReport& report : reports) {
    wanted.images[report.ref].config = true;
    for (const auto& [image, needs] : report.plan.images) wanted.images[image] |= needs;
  }
  policy::ImageFactsMap facts;
  const std::vector<image::ImageRef> toFetch = fetcher.lookUpKnown(wanted, facts);
  fetcher.fetch(wanted, toFetch, Deadline::after(kCheckBudget), facts);
  return facts;
}

struct CheckFlags {
  std::string policyPath;
  std::string platform;
  std::string registryConfig;
  std::string output;
  std::vector<std::string> images;
};

int check(const CheckFlags& flags) {
  if (flags.output != "table" && flags.output != "json" && flags.output != "sarif") {
    std::cerr << "imagegate check: --output must be table, json or sarif\n";
    return kExitUsage;
  }
  std::vector<ImageReport> reports;
  service::FetcherOptions fetcherOptions;
  try {
    for (const std::string& image : flags.images) reports.push_back({image, {}, {}, {}, {}, {}});
    auto localImages = openSources(reports);
    fetcherOptions = makeFetcherOptions(flags.registryConfig, flags.platform);
    routeLocalImages(fetcherOptions, std::move(localImages));
    // The images are this command's own: no other review to shield from a slow registry.
    fetcherOptions.perRegistry = fetcherOptions.threads;
  } catch (const Error& e) {
    std::cerr << "imagegate check: " << e.what() << "\n";
    return kExitUsage;
  }
  const auto policies = loadPoliciesOrReport(flags.policyPath);
  if (!policies) return kExitUsage;
  for (ImageReport& report : reports) report.plan = policy::planImage(*policies, report.ref);

  service::FactsFetcher fetcher(std::move(fetcherOptions));
  policy::ImageFactsMap facts = fetchAll(reports, fetcher);
  bool fetchFailed = false;
  bool violated = false;
  for (ImageReport& report : reports) {
    report.lookup = facts[report.ref];
    report.results = policy::evaluate(report.plan, facts);
    fetchFailed = fetchFailed || !report.lookup.facts;
    for (const RuleResult& r : report.results) violated = violated || violates(r);
  }
  if (flags.output == "sarif") {
    printSarif(reports, *policies);
  } else if (flags.output == "json") {
    printJson(reports);
  } else {
    printTable(reports);
  }
  if (fetchFailed) return kExitFetchFailed;
  return violated ? kExitViolations : kExitOk;
}

}  // namespace

int checkCommand(const std::vector<std::string>& args) {
  CheckFlags flags;
  po::options_description options("options");
  options.add_options()("help,h", "show this help")(
      "policy", po::value(&flags.policyPath)->default_value(defaultPolicyPath(), "policies"),
      "policy file or directory")("platform", po::value(&flags.platform)->default_value(""),
                                  "platform picked from image indexes (default: the registry "
                                  "config's, else linux/amd64)")(
      "registry-config", po::value(&flags.registryConfig)->default_value(""),
      "registry settings YAML (platform, credentials, CAs, timeouts)")(
      "output", po::value(&flags.output)->default_value("table"), "table, json or sarif")(
      "image", po::value(&flags.images), "image reference (positional, one or more)");
  po::positional_options_description positional;
  positional.add("image", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "imagegate check: " << e.what() << "\n\n" << usage() << options;
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << usage() << "\n" << options;
    return kExitOk;
  }
  if (flags.images.empty()) {
    std::cerr << "imagegate check: name at least one image\n\n" << usage();
    return kExitUsage;
  }
  if (flags.policyPath.empty()) {
    std::cerr << "imagegate check: --policy is required (no ./policies here)\n";
    return kExitUsage;
  }
  log::setLevel(log::Level::kError);
  return check(flags);
}

}  // namespace imagegate::cli
