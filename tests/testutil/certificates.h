#pragma once

#include <filesystem>
#include <string>

#include "shell.h"

// TLS material for tests that start a real `imagegate serve`, made with the openssl CLI.
namespace imagegate::testutil {

/// A development CA and a serving certificate for localhost/127.0.0.1 signed by it. EC keys
/// keep generation fast; nothing is checked in.
inline void generateCertificates(const std::filesystem::path& dir) {
  const std::string d = shellQuote(dir.string());
  writeFile(dir / "serving.ext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
            "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n");
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  runOrThrow("cd " + d + " && openssl req -x509" + ec +
             " -days 2 -subj /CN=imagegate-test-ca -keyout ca.key -out ca.crt 2>&1");
  runOrThrow("cd " + d + " && openssl req" + ec +
             " -subj /CN=localhost -keyout serving.key -out serving.csr 2>&1");
  runOrThrow("cd " + d +
             " && openssl x509 -req -in serving.csr -CA ca.crt -CAkey ca.key -CAcreateserial"
             " -days 2 -extfile serving.ext -out serving.crt 2>&1");
}

}  // namespace imagegate::testutil
