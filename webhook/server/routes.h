#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/deadline.h"
#include "common/http_reply.h"
#include "server/server.h"

// Which requests the server answers and how: a pure table, decided from the request head alone
// so that a doomed upload need not be read. No sockets here; the session asks and obeys.
namespace imagegate::server {

/// What the session needs to know about a request before its body.
struct RequestHead {
  std::string_view method;  ///< "GET", "POST", ...
  std::string_view target;  ///< "/validate?timeout=10s"
  unsigned version = 11;    ///< 10 or 11
  bool hasHost = false;
  std::optional<std::string_view> contentType;
  std::optional<std::string_view> transferEncoding;
};

/// An answer the session writes: the HTTP reply plus connection handling.
struct Reply {
  HttpReply http;
  std::string allow;   ///< The Allow header of a 405.
  bool close = false;  ///< The connection cannot carry another request after this one.
};

Reply textReply(unsigned status, std::string message, bool close = false);

struct Target {
  std::string_view path;
  std::string_view query;
};
Target splitTarget(std::string_view target);
std::optional<std::string_view> queryParam(std::string_view query, std::string_view key);

/// The review's budget: the API server appends `?timeout=10s` (the webhook's timeoutSeconds);
/// without a usable one `fallback` applies. Never more than `cap` (itself at most
/// kMaxReviewBudget, server.h), whatever the client asks, so a client cannot pin work for longer.
std::chrono::milliseconds reviewBudget(std::string_view query, std::chrono::milliseconds fallback,
                                       std::chrono::milliseconds cap);

class RouteTable {
 public:
  /// A route whose request body goes to the review handler (POST, application/json).
  void addReview(std::string path);
  /// A GET route answered by `answer` once the (empty) request is read.
  void addGet(std::string path, std::function<Reply()> answer);

  enum class Kind { kReview, kGet };
  struct Route {
    std::string path;
    Kind kind;
    std::function<Reply()> answer;  ///< kGet only.
  };

  /// The route for a request head, or the error reply that ends it (404, 405, 415, 400).
  struct Decision {
    const Route* route = nullptr;
    std::optional<Reply> refusal;
  };
  Decision decide(const RequestHead& head) const;

 private:
  std::string notFoundMessage() const;
  std::vector<Route> routes_;
};

}  // namespace imagegate::server
