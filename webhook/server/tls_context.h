#pragma once

#include <atomic>
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

namespace imagegate::server {

/// Builds the server-side TLS context: TLS 1.2 and 1.3 only, forward-secret AEAD ciphers for
/// TLS 1.2, no compression or renegotiation. Loads the PEM certificate chain and the PEM private
/// key and checks that they belong together. Throws imagegate::Error naming the file at fault.
std::shared_ptr<boost::asio::ssl::context> makeTlsContext(const std::string& certFile,
                                                          const std::string& keyFile);

/// The serving certificate, replaceable while the server runs. Every connection uses context(),
/// which holds no certificate of its own: a callback hands each new handshake the certificate,
/// chain and key loaded last, so a reload reaches new handshakes at once while connections
/// already established keep theirs.
class ServingTls {
 public:
  /// Throws imagegate::Error as makeTlsContext does.
  ServingTls(const std::string& certFile, const std::string& keyFile);
  ~ServingTls();
  ServingTls(const ServingTls&) = delete;
  ServingTls& operator=(const ServingTls&) = delete;

  /// The context every session is built on.
  const std::shared_ptr<boost::asio::ssl::context>& context() const { return context_; }

  /// Loads and checks the pair as the constructor does; new handshakes use it from now on. On
  /// failure throws imagegate::Error and the current certificate stays. Thread-safe.
  void reload(const std::string& certFile, const std::string& keyFile);

  /// The leaf certificate's notAfter, e.g. "2027-01-31T12:00:00Z".
  std::string notAfter() const;

 private:
  std::shared_ptr<boost::asio::ssl::context> context_;
  /// A context loaded from the files, used only as the holder of what handshakes get.
  std::atomic<std::shared_ptr<boost::asio::ssl::context>> loaded_;
};

}  // namespace imagegate::server
