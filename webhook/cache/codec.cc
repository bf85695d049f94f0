#include "cache/codec.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "image/image_ref.h"
#include "registry/digest.h"

namespace imagegate::cache {
namespace {

using nlohmann::json;

constexpr std::string_view kMagic = "IGCE";
constexpr std::uint8_t kEnvelopeVersion = 1;
constexpr std::uint32_t kFactsVersion = 1;
// image::LayerIndex::serialize() checks its own "IGLI" version too; this one names it in keys.
constexpr std::uint32_t kLayerIndexVersion = 1;
constexpr std::size_t kSha256Bytes = 32;
constexpr std::size_t kMaxKeyBytes = 4096;

void putBigEndian(std::string& out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

/// Reads fields off the front of an envelope, refusing to read past its end.
class Cursor {
 public:
  explicit Cursor(std::string_view data) : data_(data) {}

  std::uint64_t number(int bytes) {
    const std::string_view raw = take(static_cast<std::size_t>(bytes));
    std::uint64_t value = 0;
    for (const char c : raw) value = (value << 8) | static_cast<unsigned char>(c);
    return value;
  }
  std::string_view take(std::size_t bytes) {
    if (bytes > data_.size()) throw Error("truncated");
    const std::string_view part = data_.substr(0, bytes);
    data_.remove_prefix(bytes);
    return part;
  }
  std::string_view rest() const { return data_; }

 private:
  std::string_view data_;
};

/// The raw 32 bytes of sha256(data).
std::string sha256Raw(std::string_view data) {
  const std::string hex = registry::sha256Digest(data).substr(7);
  std::string raw;
  raw.reserve(kSha256Bytes);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    raw.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return raw;
}

json descriptorJson(const image::Descriptor& d) {
  return json::array({d.mediaType, d.digest, d.size});
}

image::Descriptor descriptorFrom(const json& j) {
  if (!j.is_array() || j.size() != 3) throw Error("descriptor is not [mediaType, digest, size]");
  return {j.at(0).get<std::string>(), j.at(1).get<std::string>(), j.at(2).get<std::uint64_t>()};
}

}  // namespace

std::string_view entryKindName(EntryKind kind) {
  switch (kind) {
    case EntryKind::kImageFacts:
      return "facts";
    case EntryKind::kLayerIndex:
      return "layer";
  }
  return "unknown";
}

std::uint32_t payloadVersion(EntryKind kind) {
  return kind == EntryKind::kImageFacts ? kFactsVersion : kLayerIndexVersion;
}

std::string encodeFacts(const image::ImageFacts& facts) {
  const image::ImageConfig& c = facts.imageConfig;
  json layers = json::array();
  for (const image::Descriptor& layer : facts.layers) layers.push_back(descriptorJson(layer));
  // Short keys: this is stored once per image in every replica's cache and in Redis.
  const json document = {
      {"v", kFactsVersion},
      {"ref", facts.ref.str()},
      {"md", facts.manifestDigest},
      {"mt", facts.manifestMediaType},
      {"pf", json::array({facts.platform.os, facts.platform.architecture, facts.platform.variant})},
      {"cfg", descriptorJson(facts.config)},
      {"ly", std::move(layers)},
      {"user", c.user},
      {"env", c.env},
      {"ep", c.entrypoint},
      {"cmd", c.cmd},
      {"wd", c.workingDir},
      {"ports", c.exposedPorts},
      {"labels", c.labels},
      {"diff", c.diffIds},
      {"hist", c.historyEntries},
      {"lh", c.layerHistory},
      {"os", c.os},
      {"arch", c.architecture},
  };
  const std::vector<std::uint8_t> cbor = json::to_cbor(document);
  return {cbor.begin(), cbor.end()};
}

image::ImageFacts decodeFacts(std::string_view data) {
  const json document = json::from_cbor(data, true, false);
  if (document.is_discarded() || !document.is_object()) {
    throw Error("image facts are not a CBOR object");
  }
  try {
    if (document.at("v").get<std::uint32_t>() != kFactsVersion) {
      throw Error("image facts format version " + document.at("v").dump() + " is not " +
                  std::to_string(kFactsVersion));
    }
    image::ImageFacts facts;
    facts.ref = image::parseImageRef(document.at("ref").get<std::string>());
    facts.manifestDigest = document.at("md").get<std::string>();
    facts.manifestMediaType = document.at("mt").get<std::string>();
    const json& platform = document.at("pf");
    if (!platform.is_array() || platform.size() != 3)
      throw Error("platform is not [os, arch, variant]");
    facts.platform = {platform.at(0).get<std::string>(), platform.at(1).get<std::string>(),
                      platform.at(2).get<std::string>()};
    facts.config = descriptorFrom(document.at("cfg"));
    for (const json& layer : document.at("ly")) facts.layers.push_back(descriptorFrom(layer));
    image::ImageConfig& c = facts.imageConfig;
    c.user = document.at("user").get<std::string>();
    c.env = document.at("env").get<std::vector<std::string>>();
    c.entrypoint = document.at("ep").get<std::vector<std::string>>();
    c.cmd = document.at("cmd").get<std::vector<std::string>>();
    c.workingDir = document.at("wd").get<std::string>();
    c.exposedPorts = document.at("ports").get<std::vector<std::string>>();
    c.labels = document.at("labels").get<std::map<std::string, std::string>>();
    c.diffIds = document.at("diff").get<std::vector<std::string>>();
    c.historyEntries = document.at("hist").get<std::size_t>();
    c.layerHistory = document.at("lh").get<std::vector<std::string>>();
    c.os = document.at("os").get<std::string>();
    c.architecture = document.at("arch").get<std::string>();
    if (!registry::parseDigest(facts.manifestDigest) ||
        !registry::parseDigest(facts.config.digest)) {
      throw Error("image facts carry a malformed digest");
    }
    return facts;
  } catch (const json::exception& e) {
    throw Error(std::string("image facts are malformed: ") + e.what());
  }
}

std::string wrapEntry(EntryKind kind, std::string_view key, std::string_view payload) {
  std::string out;
  out.reserve(kMagic.size() + 16 + key.size() + kSha256Bytes + payload.size());
  out.append(kMagic);
  out.push_back(static_cast<char>(kEnvelopeVersion));
  out.push_back(static_cast<char>(kind));
  putBigEndian(out, payloadVersion(kind), 4);
  putBigEndian(out, key.size(), 2);
  out.append(key);
  putBigEndian(out, payload.size(), 8);
  out.append(sha256Raw(payload));
  out.append(payload);
  return out;
}

std::string unwrapEntry(std::string_view envelope, EntryKind kind, std::string_view key) {
  Cursor in(envelope);
  try {
    if (in.take(kMagic.size()) != kMagic) throw Error("not an imagegate cache entry");
    if (const auto version = in.number(1); version != kEnvelopeVersion) {
      throw Error("entry envelope version " + std::to_string(version) + " is not " +
                  std::to_string(kEnvelopeVersion));
    }
    if (const auto stored = in.number(1); stored != static_cast<std::uint8_t>(kind)) {
      throw Error("entry holds kind " + std::to_string(stored) + ", not " +
                  std::string(entryKindName(kind)));
    }
    if (const auto version = in.number(4); version != payloadVersion(kind)) {
      throw Error("entry format version " + std::to_string(version) + " is not " +
                  std::to_string(payloadVersion(kind)));
    }
    const auto keySize = in.number(2);
    if (keySize > kMaxKeyBytes || in.take(keySize) != key) {
      throw Error("entry is stored for another key");
    }
    const auto payloadSize = in.number(8);
    const std::string_view checksum = in.take(kSha256Bytes);
    if (in.rest().size() != payloadSize) {
      throw Error(in.rest().size() < payloadSize ? "truncated" : "trailing bytes");
    }
    if (sha256Raw(in.rest()) != checksum) throw Error("payload does not match its sha256");
    return std::string(in.rest());
  } catch (const Error& e) {
    throw Error(std::string("cache entry refused: ") + e.what());
  }
}

}  // namespace imagegate::cache
