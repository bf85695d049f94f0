#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <exception>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <vector>

#include "cli/commands.h"
#include "common/error.h"
#include "image/file_index.h"
#include "layers/layer_scanner.h"
#include "layers/media_type.h"

// `imagegate layer scan FILE`: one layer blob from disk through the same scanner the webhook
// uses on registry blobs, for humans and for bench/layer_bench.sh.
namespace imagegate::cli {
namespace {

namespace po = boost::program_options;

constexpr const char* kScanUsage =
    "usage: imagegate layer scan FILE [--media-type TYPE] [--digest sha256:HEX] [--list]\n"
    "                            [--find GLOB]...\n"
    "\n"
    "Scans a layer blob (tar, tar+gzip or tar+zstd) as the webhook scans registry layers and\n"
    "prints a summary: entries, uncompressed bytes, secrets, setuid/setgid files, index bytes\n"
    "per entry and throughput. The media type defaults from the file's magic bytes; --digest\n"
    "verifies the blob. --list prints every entry. --find prints the files a name matching GLOB\n"
    "reaches, through symlinks and hardlinks (e.g. --find '**/bin/sh'). Exit code 0, or 2 when\n"
    "the layer is refused.\n";

constexpr std::size_t kReadBytes = 1 << 20;
constexpr std::size_t kListedFindings = 20;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

std::string megabytes(double bytes) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << bytes / 1e6 << " MB";
  return out.str();
}

std::string octal(std::uint32_t mode) {
  std::ostringstream out;
  out << std::oct << std::setw(4) << std::setfill('0') << mode;
  return out.str();
}

/// A scanned layer file and what the scan took.
struct ScannedFile {
  image::LayerIndex index;
  layers::LayerMediaType mediaType;
  std::uint64_t compressedBytes = 0;
  std::string digest;
  double seconds = 0;
};

/// Streams `path` through a LayerScanner as the registry client would, in kReadBytes chunks.
/// An empty `mediaTypeFlag` means: from the file's magic bytes; an empty `digest`: computed.
ScannedFile scanFile(const std::string& path, const std::string& mediaTypeFlag,
                     const std::string& digest) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) throw Error("cannot open " + path);
  std::vector<char> buffer(kReadBytes);
  std::size_t got = std::fread(buffer.data(), 1, buffer.size(), file.get());
  const layers::LayerMediaType mediaType =
      !mediaTypeFlag.empty() ? layers::classifyLayerMediaType(mediaTypeFlag)
                             : layers::ociLayerMediaType(
                                   layers::sniffCompression(std::string_view(buffer.data(), got)));
  const auto start = std::chrono::steady_clock::now();
  layers::LayerScanner scanner(mediaType, digest, layers::LayerScanner::kUnknownSize);
  while (got > 0) {
    scanner.feed(std::string_view(buffer.data(), got));
    got = std::fread(buffer.data(), 1, buffer.size(), file.get());
  }
  if (std::ferror(file.get())) throw Error("cannot read " + path);
  image::LayerIndex index = scanner.finish();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {std::move(index), mediaType, scanner.compressedBytes(), scanner.digest(), seconds};
}

void printEntry(const image::FileEntry& e) {
  std::cout << std::left << std::setw(13) << image::entryTypeName(e.type) << " " << octal(e.mode)
            << " " << e.uid << ":" << e.gid << " " << e.size << " /" << e.path;
  if (!e.linkTarget.empty()) std::cout << " -> " << e.linkTarget;
  std::cout << "\n";
}

void printSummary(const std::string& path, const ScannedFile& scanned, bool digestGiven,
                  bool listEntries) {
  using image::EntryType;
  const image::LayerIndex& index = scanned.index;
  std::size_t counts[9] = {};
  std::vector<image::FileEntry> secrets;
  std::vector<image::FileEntry> setid;
  for (std::size_t i = 0; i < index.size(); ++i) {
    const image::FileEntry e = index.entry(i);
    ++counts[static_cast<int>(e.type)];
    if (e.secret != image::SecretKind::kNone) secrets.push_back(e);
    if (e.type == EntryType::kRegular && (e.isSetuid() || e.isSetgid())) setid.push_back(e);
    if (listEntries) printEntry(e);
  }
  auto count = [&](EntryType t) { return counts[static_cast<int>(t)]; };
  std::cout << "layer:        " << path << " ("
            << layers::compressionName(scanned.mediaType.compression) << ", "
            << megabytes(static_cast<double>(scanned.compressedBytes)) << " compressed)\n"
            << "digest:       " << scanned.digest << (digestGiven ? " (verified)" : " (computed)")
            << "\n"
            << "entries:      " << index.size() << " (" << count(EntryType::kRegular) << " files, "
            << count(EntryType::kDirectory) << " directories, " << count(EntryType::kSymlink)
            << " symlinks, " << count(EntryType::kHardlink) << " hardlinks, "
            << count(EntryType::kCharDevice) + count(EntryType::kBlockDevice) +
                   count(EntryType::kFifo)
            << " devices and fifos, " << count(EntryType::kWhiteout) + count(EntryType::kOpaque)
            << " whiteouts)\n"
            << "uncompressed: " << megabytes(static_cast<double>(index.uncompressedBytes())) << "\n"
            << "secrets:      " << secrets.size() << "\n";
  for (std::size_t i = 0; i < secrets.size() && i < kListedFindings; ++i) {
    std::cout << "  /" << secrets[i].path << ": " << image::secretKindName(secrets[i].secret)
              << "\n";
  }
  std::cout << "setuid/setgid files: " << setid.size() << "\n";
  for (std::size_t i = 0; i < setid.size() && i < kListedFindings; ++i) {
    std::cout << "  /" << setid[i].path << " (" << octal(setid[i].mode) << ")\n";
  }
  const double perEntry =
      index.size() ? static_cast<double>(index.memoryBytes()) / static_cast<double>(index.size())
                   : 0.0;
  std::cout << "index:        " << index.memoryBytes() << " bytes, " << std::fixed
            << std::setprecision(1) << perEntry << " bytes/entry, " << index.serialize().size()
            << " bytes serialized\n"
            << "time:         " << std::setprecision(3) << scanned.seconds << " s, "
            << std::setprecision(1)
            << static_cast<double>(index.uncompressedBytes()) / 1e6 / scanned.seconds
            << " MB/s uncompressed\n";
}

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// The files each pattern reaches through the merged view, with the time each lookup took.
void printFinds(const image::LayerIndex& index, const std::vector<std::string>& patterns) {
  const auto mergeStart = std::chrono::steady_clock::now();
  const image::MergedFilesystem fs({std::make_shared<const image::LayerIndex>(index)});
  std::cout << "merged view:  " << fs.memoryBytes() << " bytes, built in " << std::setprecision(3)
            << secondsSince(mergeStart) << " s\n";
  for (const auto& pattern : patterns) {
    const auto findStart = std::chrono::steady_clock::now();
    const auto matches = fs.findReachable(pattern);
    std::cout << "find " << pattern << ": " << matches.size() << " in " << std::setprecision(3)
              << secondsSince(findStart) << " s\n";
    for (const auto& m : matches) {
      std::cout << "  /" << m.name;
      if (m.name != m.file.entry.path) std::cout << " -> /" << m.file.entry.path;
      std::cout << "\n";
    }
  }
}

int scan(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")("file", po::value<std::string>(), "layer blob")(
      "media-type", po::value<std::string>()->default_value(""), "OCI/Docker layer media type")(
      "digest", po::value<std::string>()->default_value(""), "expected sha256:HEX")(
      "list", "print every entry")("find", po::value<std::vector<std::string>>(),
                                   "print files reached by names matching this glob");
  po::positional_options_description positional;
  positional.add("file", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "imagegate layer scan: " << e.what() << "\n\n" << kScanUsage;
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << kScanUsage;
    return kExitOk;
  }
  if (!vm.count("file")) {
    std::cerr << "imagegate layer scan: missing FILE\n\n" << kScanUsage;
    return kExitUsage;
  }
  const std::string path = vm["file"].as<std::string>();
  const std::string digest = vm["digest"].as<std::string>();
  try {
    const ScannedFile scanned = scanFile(path, vm["media-type"].as<std::string>(), digest);
    printSummary(path, scanned, !digest.empty(), vm.count("list") > 0);
    if (vm.count("find")) printFinds(scanned.index, vm["find"].as<std::vector<std::string>>());
    return kExitOk;
  } catch (const std::exception& e) {
    std::cerr << "imagegate layer scan: " << path << ": " << e.what() << "\n";
    return kExitUsage;
  }
}

}  // namespace

int layerCommand(const std::vector<std::string>& args) {
  if (args.empty() || args.front() == "--help" || args.front() == "-h") {
    std::cout << kScanUsage;
    return args.empty() ? kExitUsage : kExitOk;
  }
  if (args.front() == "scan") return scan(std::vector<std::string>(args.begin() + 1, args.end()));
  std::cerr << "imagegate layer: unknown subcommand '" << args.front() << "'\n\n" << kScanUsage;
  return kExitUsage;
}

}  // namespace imagegate::cli
