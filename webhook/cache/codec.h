#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "image/image_facts.h"

// How cached values leave the process (a cache directory, Redis) and come back: a versioned,
// compact encoding of ImageFacts, and an envelope around every stored value that says what it is
// (kind, key, payload format version) and carries the sha256 of its payload. What comes back is
// verified before it is trusted: a value that is truncated, corrupt, of another kind or key, or
// of another format version is refused with a reason, never half-read.
namespace imagegate::cache {

enum class EntryKind : std::uint8_t {
  kImageFacts = 1,  ///< encodeFacts(), keyed by "<reference with digest>|<platform>"
  kLayerIndex = 2,  ///< image::LayerIndex::serialize(), keyed by the layer digest
};

std::string_view entryKindName(EntryKind kind);

/// The format version of `kind`'s payload; part of every envelope and of Redis keys, so that a
/// replica of another version neither reads nor overwrites what it cannot understand.
std::uint32_t payloadVersion(EntryKind kind);

/// ImageFacts as CBOR (compact, typed) with a format version inside.
std::string encodeFacts(const image::ImageFacts& facts);
/// Reads encodeFacts()'s form; throws Error saying what is wrong with anything else.
image::ImageFacts decodeFacts(std::string_view data);

/// `payload` in an envelope: "IGCE", envelope version, kind, payload version, key, payload size,
/// sha256 of the payload, payload.
std::string wrapEntry(EntryKind kind, std::string_view key, std::string_view payload);
/// The payload of an envelope that is exactly (kind, key, current payload version) and whose
/// payload hashes to the sha256 it carries. Throws Error saying why not otherwise.
std::string unwrapEntry(std::string_view envelope, EntryKind kind, std::string_view key);

}  // namespace imagegate::cache
