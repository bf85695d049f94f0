// N AdmissionReviews sent at once over N TLS keep-alive connections: what a Deployment rollout
// of N replicas does to the webhook (the API server keeps its connections to a webhook open).
// One thread, one io_context: every connection is opened and handshaken first, then all N
// requests are written in one go, and each answer is timestamped when its last byte arrives.
// A client of Python threads spends tens of milliseconds of the same 2 cores on its own GIL
// hand-offs when 200 answers arrive together; this one spends a few.
//
//   burst_client --host 127.0.0.1 --port P --path '/validate?timeout=30s' --cafile CA
//                --body FILE [--count 200] [--timeout-seconds 60]
//
// Prints one JSON object: lastAnswerSeconds (release to last answer), p50Seconds, maxSeconds,
// allowed, denied, errors. Exits 1 when an answer is not an allowing or denying AdmissionReview.
#include <utility>  // first: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string host;
  unsigned short port = 0;
  std::string path;
  std::string caFile;
  std::string bodyFile;
  int count = 200;
  int timeoutSeconds = 60;
};

struct Outcome {
  std::string verdict;  // "allowed", "denied" or "error: ..."
  Clock::time_point answeredAt;
};

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

std::string verdictOf(const std::string& body) {
  const auto review = nlohmann::json::parse(body, nullptr, false);
  if (review.is_discarded()) return "error: the answer is not JSON";
  const auto allowed = review.value("/response/allowed"_json_pointer, nlohmann::json());
  if (!allowed.is_boolean()) return "error: the answer has no response.allowed";
  return allowed.get<bool>() ? "allowed" : "denied";
}

// One keep-alive connection (no SNI: the bench serves an IP address): handshaken before the burst,
// then one request and its answer.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context& io, asio::ssl::context& tls, Outcome& outcome)
      : stream_(io, tls), outcome_(outcome) {}

  beast::ssl_stream<beast::tcp_stream>& stream() { return stream_; }

  void send(const http::request<http::string_body>& request) {
    request_ = request;
    http::async_write(
        stream_, request_, [self = shared_from_this()](beast::error_code written, std::size_t) {
          if (written) return self->fail("write: " + written.message());
          http::async_read(self->stream_, self->buffer_, self->response_,
                           [self](beast::error_code read, std::size_t) { self->answered(read); });
        });
  }

 private:
  void answered(beast::error_code error) {
    outcome_.answeredAt = Clock::now();
    if (error) return fail("read: " + error.message());
    if (response_.result() != http::status::ok) {
      return fail("HTTP " + std::to_string(response_.result_int()));
    }
    outcome_.verdict = verdictOf(response_.body());
  }
  void fail(const std::string& why) {
    outcome_.answeredAt = Clock::now();
    outcome_.verdict = "error: " + why;
  }

  beast::ssl_stream<beast::tcp_stream> stream_;
  Outcome& outcome_;
  http::request<http::string_body> request_;
  beast::flat_buffer buffer_;
  http::response<http::string_body> response_;
};

Options parseOptions(int argc, char** argv) {
  namespace po = boost::program_options;
  Options options;
  po::options_description described("burst_client");
  described.add_options()("host", po::value(&options.host)->required())(
      "port", po::value(&options.port)->required())("path", po::value(&options.path)->required())(
      "cafile", po::value(&options.caFile)->required())(
      "body", po::value(&options.bodyFile)->required())("count", po::value(&options.count))(
      "timeout-seconds", po::value(&options.timeoutSeconds));
  po::variables_map values;
  po::store(po::parse_command_line(argc, argv, described), values);
  po::notify(values);
  if (options.count < 1) throw std::runtime_error("--count must be at least 1");
  return options;
}

std::vector<std::shared_ptr<Connection>> connectAll(asio::io_context& io, asio::ssl::context& tls,
                                                    const Options& options,
                                                    std::vector<Outcome>& outcomes) {
  const auto endpoints =
      asio::ip::tcp::resolver(io).resolve(options.host, std::to_string(options.port));
  std::vector<std::shared_ptr<Connection>> connections;
  for (auto& outcome : outcomes) {
    auto connection = std::make_shared<Connection>(io, tls, outcome);
    beast::get_lowest_layer(connection->stream()).connect(endpoints);
    beast::get_lowest_layer(connection->stream())
        .socket()
        .set_option(asio::ip::tcp::no_delay(true));
    connection->stream().handshake(asio::ssl::stream_base::client);
    connections.push_back(std::move(connection));
  }
  return connections;
}

double seconds(Clock::duration duration) { return std::chrono::duration<double>(duration).count(); }

double rounded(double value) { return std::round(value * 10000) / 10000; }

nlohmann::json summarize(const std::vector<Outcome>& outcomes, Clock::time_point released) {
  std::vector<double> latencies;
  std::set<std::string> errors;
  int allowed = 0, denied = 0;
  for (const auto& outcome : outcomes) {
    latencies.push_back(seconds(outcome.answeredAt - released));
    if (outcome.verdict == "allowed")
      ++allowed;
    else if (outcome.verdict == "denied")
      ++denied;
    else
      errors.insert(outcome.verdict);
  }
  std::sort(latencies.begin(), latencies.end());
  nlohmann::json summary = {{"count", outcomes.size()},
                            {"lastAnswerSeconds", rounded(latencies.back())},
                            {"p50Seconds", rounded(latencies[latencies.size() / 2])},
                            {"maxSeconds", rounded(latencies.back())},
                            {"allowed", allowed},
                            {"denied", denied},
                            {"errors", nlohmann::json::array()}};
  for (const auto& error : errors) {
    if (summary["errors"].size() < 3) summary["errors"].push_back(error);
  }
  return summary;
}

int run(const Options& options) {
  asio::io_context io(1);
  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.load_verify_file(options.caFile);
  tls.set_verify_mode(asio::ssl::verify_peer);
  tls.set_verify_callback(asio::ssl::host_name_verification(options.host));

  http::request<http::string_body> request{http::verb::post, options.path, 11};
  request.set(http::field::host, options.host);
  request.set(http::field::content_type, "application/json");
  request.keep_alive(true);
  request.body() = readFile(options.bodyFile);
  request.prepare_payload();

  std::vector<Outcome> outcomes(static_cast<std::size_t>(options.count));
  auto connections = connectAll(io, tls, options, outcomes);
  const auto released = Clock::now();
  for (auto& connection : connections) connection->send(request);
  connections.clear();  // the handlers own them now
  io.run_for(std::chrono::seconds(options.timeoutSeconds));
  for (auto& outcome : outcomes) {
    if (outcome.verdict.empty()) outcome = {"error: no answer in time", Clock::now()};
  }

  const auto summary = summarize(outcomes, released);
  std::cout << summary.dump() << "\n";
  return summary["allowed"].get<int>() + summary["denied"].get<int>() == options.count ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parseOptions(argc, argv));
  } catch (const std::exception& error) {
    std::cerr << "burst_client: " << error.what() << "\n";
    return 2;
  }
}
