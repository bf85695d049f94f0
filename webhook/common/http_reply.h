#pragma once

#include <string>

namespace imagegate {

/// An HTTP answer produced by a handler; the server module turns it into a Beast response.
/// Lives in common/ so that the server never depends on what produces replies.
struct HttpReply {
  unsigned status = 200;
  std::string contentType = "application/json";
  std::string body;
};

}  // namespace imagegate
