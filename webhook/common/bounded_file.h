#pragma once

#include <cstddef>
#include <string>
#include <string_view>

// Configuration files are read whole into memory, so each reader bounds what it accepts: a path
// pointing at a huge file or a device must fail with a message, not exhaust memory.
namespace imagegate {

/// The contents of `path`. Throws Error("cannot read <what> <path>: <reason>") when it cannot be
/// opened or read, and Error("<what> <path> is larger than <limit>") beyond `maxBytes`.
std::string readBoundedFile(const std::string& path, std::size_t maxBytes, std::string_view what);

}  // namespace imagegate
