#pragma once

#include <cstddef>
#include <filesystem>
#include <istream>
#include <string>
#include <vector>

#include "cli/audit.h"

// What `imagegate audit` reads: `kubectl get -o json` output, manifests (JSON, or YAML with
// several documents), and directories of them; `-` for stdin.
namespace imagegate::cli::audit {

/// The files an input names: itself, or for a directory every *.yaml, *.yml and *.json under
/// it (recursively, symbolic links followed), sorted by path so that reports are stable. Throws
/// Error when it does not exist or a directory has no such file.
std::vector<std::filesystem::path> manifestFiles(const std::string& input);

/// Reads every input into `auditor`. JSON (`.json`, or text starting with `{` or `[`) is parsed
/// as JSON, the rest as a YAML stream; each document's objects (a List's items) are added, and a
/// document that cannot be read is added as unreadable (naming its file and 1-based index)
/// while the others are audited. Throws Error for what stops the whole run: an input that
/// cannot be read, or more than `maxBytes` in one file or in all together.
void readInputs(const std::vector<std::string>& inputs, std::size_t maxBytes, Auditor& auditor,
                std::istream& standardInput);

}  // namespace imagegate::cli::audit
