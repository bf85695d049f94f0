#pragma once

#include <map>
#include <string>
#include <vector>

#include "admission/review.h"

namespace imagegate::admission {

/// What to answer: filled in by the service from policy results.
struct Verdict {
  bool allowed = true;
  int code = 200;       ///< status.code when denied (403 for policy denials, 400 for bad requests).
  std::string reason;   ///< status.reason when denied, e.g. "Forbidden", "BadRequest".
  std::string message;  ///< status.message when denied.
  std::vector<std::string> warnings;
  std::map<std::string, std::string> auditAnnotations;
};

/// The API server truncates or rejects beyond these; encodeResponse enforces them.
inline constexpr std::size_t kMaxWarningLength = 119;
inline constexpr std::size_t kMaxWarningsTotal = 4096;

/// Encodes `{"apiVersion":..,"kind":..,"response":{"uid":..,"allowed":..,...}}`. Warnings longer
/// than kMaxWarningLength are shortened with "..." and dropped once the total would pass
/// kMaxWarningsTotal (a last warning then says how many were left out).
std::string encodeResponse(const ReviewEnvelope& envelope, const std::string& uid,
                           const Verdict& verdict);

}  // namespace imagegate::admission
