#pragma once

#include <stdexcept>
#include <string>

namespace imagegate {

/// An error caused by input or configuration outside our control (a malformed request, a bad
/// policy file, an unreachable registry). Its message is written for the person who must act on
/// it; it never contains credentials. Programming errors are asserts, not Errors.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace imagegate
