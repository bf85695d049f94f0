#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

namespace imagegate::server {

/// Builds the server-side TLS context: TLS 1.2 and 1.3 only, forward-secret AEAD ciphers for
/// TLS 1.2, no compression or renegotiation. Loads the PEM certificate chain and the PEM private
/// key and checks that they belong together. Throws imagegate::Error naming the file at fault.
std::shared_ptr<boost::asio::ssl::context> makeTlsContext(const std::string& certFile,
                                                          const std::string& keyFile);

}  // namespace imagegate::server
