#include "server/routes.h"

#include <algorithm>
#include <cctype>

#include "common/duration.h"

namespace imagegate::server {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

/// "application/json", optionally with parameters such as "; charset=utf-8".
bool isJsonContentType(std::string_view value) {
  return iequals(trim(value.substr(0, value.find(';'))), "application/json");
}

/// Framing problems end the connection whatever the path: after them we cannot tell where the
/// next request would start.
std::optional<Reply> framingRefusal(const RequestHead& head) {
  if (head.transferEncoding) {
    // The API server always sends Content-Length. Chunked bodies would let a client make us
    // buffer chunk headers and trailers, and codings such as "xchunked" or "chunked, identity"
    // leave the body length undefined: refuse them all.
    return textReply(400,
                     "bad request: Transfer-Encoding is not accepted; send the body with "
                     "Content-Length",
                     true);
  }
  if (head.version >= 11 && !head.hasHost) {
    return textReply(400, "bad request: HTTP/1.1 requests need a Host header", true);
  }
  return std::nullopt;
}

}  // namespace

Reply textReply(unsigned status, std::string message, bool close) {
  return Reply{HttpReply{status, "text/plain; charset=utf-8", std::move(message) + "\n"}, "",
               close};
}

Target splitTarget(std::string_view target) {
  const std::size_t mark = target.find('?');
  if (mark == std::string_view::npos) return Target{target, {}};
  return Target{target.substr(0, mark), target.substr(mark + 1)};
}

std::optional<std::string_view> queryParam(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::chrono::milliseconds reviewBudget(std::string_view query, std::chrono::milliseconds fallback,
                                       std::chrono::milliseconds cap) {
  std::chrono::milliseconds budget = fallback;
  if (const auto text = queryParam(query, "timeout")) {
    if (const auto parsed = parseGoDuration(*text); parsed && parsed->count() > 0) {
      budget = *parsed;
    }
  }
  return std::min({budget, cap, kMaxReviewBudget});
}

void RouteTable::addReview(std::string path) {
  routes_.push_back(Route{std::move(path), Kind::kReview, nullptr});
}

void RouteTable::addGet(std::string path, std::function<Reply()> answer) {
  routes_.push_back(Route{std::move(path), Kind::kGet, std::move(answer)});
}

std::string RouteTable::notFoundMessage() const {
  std::string message = "not found: imagegate serves";
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    message += (i == 0 ? " " : ", ");
    message += (routes_[i].kind == Kind::kReview ? "POST " : "GET ") + routes_[i].path;
  }
  return message;
}

RouteTable::Decision RouteTable::decide(const RequestHead& head) const {
  if (auto refusal = framingRefusal(head)) return Decision{nullptr, std::move(refusal)};
  const std::string_view path = splitTarget(head.target).path;
  const auto route = std::find_if(routes_.begin(), routes_.end(),
                                  [&](const Route& candidate) { return candidate.path == path; });
  if (route == routes_.end()) return Decision{nullptr, textReply(404, notFoundMessage())};
  if (route->kind == Kind::kGet) {
    if (head.method != "GET") {
      return Decision{nullptr, Reply{textReply(405, "method not allowed: use GET").http, "GET"}};
    }
    return Decision{&*route, std::nullopt};
  }
  if (head.method != "POST") {
    return Decision{
        nullptr,
        Reply{textReply(405, "method not allowed: " + route->path + " accepts POST").http, "POST"}};
  }
  if (!head.contentType || !isJsonContentType(*head.contentType)) {
    return Decision{nullptr, textReply(415, "unsupported media type: " + route->path +
                                                " needs Content-Type: application/json")};
  }
  return Decision{&*route, std::nullopt};
}

}  // namespace imagegate::server
