#include "server/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>

#include "common/error.h"

namespace imagegate::server {
namespace {

namespace ssl = boost::asio::ssl;

// Mozilla "intermediate" TLS 1.2 suites: what the Go API server offers, all forward secret and
// AEAD. TLS 1.3 suites are OpenSSL's defaults, which are all fine.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// Drains OpenSSL's thread-local error queue into one readable string.
std::string opensslErrors() {
  std::string text;
  while (const unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? "unknown OpenSSL error" : text;
}

/// OpenSSL's own message for a missing file is cryptic ("system lib"); check readability first
/// so the operator sees errno's wording and the path.
void requireReadable(const std::string& path, const char* what) {
  if (path.empty()) {
    throw Error(std::string("no TLS ") + what + " file given");
  }
  std::ifstream file(path);
  if (!file) {
    throw Error(std::string("cannot read TLS ") + what + " file '" + path +
                "': " + std::strerror(errno));
  }
}

void restrictProtocols(ssl::context& context) {
  context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                      ssl::context::no_compression);
  SSL_CTX* native = context.native_handle();
  // The option bits above are deprecated in OpenSSL 3; the minimum version is what counts.
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    throw Error("cannot configure TLS: " + opensslErrors());
  }
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Without it every connection keeps ~34 KB of TLS read and write buffers while idle; with
  // thousands of keep-alive or stalled connections that is most of the server's memory.
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
}

void loadCertificateAndKey(ssl::context& context, const std::string& certFile,
                           const std::string& keyFile) {
  requireReadable(certFile, "certificate");
  requireReadable(keyFile, "private key");
  // An encrypted key would otherwise make OpenSSL prompt on the terminal; fail instead.
  context.set_password_callback(
      [](std::size_t, ssl::context::password_purpose) { return std::string(); });
  SSL_CTX* native = context.native_handle();
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(native, certFile.c_str()) != 1) {
    throw Error("TLS certificate file '" + certFile +
                "' is not a PEM certificate chain: " + opensslErrors());
  }
  if (SSL_CTX_use_PrivateKey_file(native, keyFile.c_str(), SSL_FILETYPE_PEM) != 1) {
    const unsigned long code = ERR_peek_last_error();
    if (ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      throw Error("TLS private key file '" + keyFile + "' does not match certificate '" + certFile +
                  "'");
    }
    throw Error("TLS private key file '" + keyFile +
                "' is not an unencrypted PEM private key: " + opensslErrors());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    throw Error("TLS private key file '" + keyFile + "' does not match certificate '" + certFile +
                "'");
  }
}

/// Gives the handshake of `ssl` the certificate, chain and key of the context loaded last.
int useLoadedCertificate(SSL* ssl, void* arg) {
  const auto loaded = static_cast<const std::atomic<std::shared_ptr<ssl::context>>*>(arg)->load();
  SSL_CTX* source = loaded->native_handle();
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(source, &chain);
  // override=1: replaces what the SSL has; the context it comes from holds none, so no other
  // certificate type can linger beside the new one.
  return SSL_use_cert_and_key(ssl, SSL_CTX_get0_certificate(source),
                              SSL_CTX_get0_privatekey(source), chain, 1);
}

/// ASN1_TIME as ISO 8601 UTC.
std::string isoTime(const ASN1_TIME* time) {
  std::tm parts{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1) return "";
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

}  // namespace

ServingTls::ServingTls(const std::string& certFile, const std::string& keyFile)
    : context_(std::make_shared<ssl::context>(ssl::context::tls_server)),
      loaded_(makeTlsContext(certFile, keyFile)) {
  restrictProtocols(*context_);
  SSL_CTX_set_cert_cb(context_->native_handle(), useLoadedCertificate, &loaded_);
}

ServingTls::~ServingTls() = default;

void ServingTls::reload(const std::string& certFile, const std::string& keyFile) {
  loaded_.store(makeTlsContext(certFile, keyFile));
}

std::string ServingTls::notAfter() const {
  const auto loaded = loaded_.load();
  return isoTime(X509_get0_notAfter(SSL_CTX_get0_certificate(loaded->native_handle())));
}

std::shared_ptr<ssl::context> makeTlsContext(const std::string& certFile,
                                             const std::string& keyFile) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  restrictProtocols(*context);
  loadCertificateAndKey(*context, certFile, keyFile);
  return context;
}

}  // namespace imagegate::server
