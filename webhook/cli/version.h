#pragma once

// What imagegate says it is: `imagegate --version`, imagegate_build_info, the tool of SARIF
// reports.
namespace imagegate::cli {

inline constexpr const char* kVersion = "0.1.0";
/// Where people read about imagegate (the domain of its policy API group, imagegate.dev).
inline constexpr const char* kInformationUri = "https://imagegate.dev/";

}  // namespace imagegate::cli
