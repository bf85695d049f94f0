#include "registry/distribution_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "registry/digest.h"

// The distribution client's protocol logic (auth, redirects, digests, retries, messages) against
// a scripted transport: no sockets, no sleeps.
namespace imagegate::registry {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using Kind = FetchError::Kind;

constexpr char kPassword[] = "s3cret-Passw0rd";

HttpResponse respond(unsigned status, std::string body = "",
                     std::vector<std::pair<std::string, std::string>> headers = {}) {
  return HttpResponse{status, std::move(headers), std::move(body)};
}

// Answers requests with a handler and records them; streams 2xx bodies to the sink like the real
// client.
class FakeTransport : public HttpTransport {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  explicit FakeTransport(Handler handler) : handler_(std::move(handler)) {}

  HttpResponse send(const HttpRequest& request, Deadline, const ReadOptions& options) override {
    requests.push_back(request);
    HttpResponse response = handler_(request);
    if (response.status >= 200 && response.status < 300) {
      if (response.body.size() > options.bodyLimit) {
        throw FetchError(Kind::kInvalidContent, "response body is over the limit");
      }
      if (options.sink) {
        options.sink(response.body);
        response.body.clear();
      }
    }
    return response;
  }

  std::string header(std::size_t index, const std::string& name) const {
    for (const auto& [key, value] : requests.at(index).headers) {
      if (key == name) {
        return value;
      }
    }
    return "";
  }

  std::vector<HttpRequest> requests;

 private:
  Handler handler_;
};

struct Image {
  std::string config;
  std::string manifest;
  std::string configDigest;
  std::string manifestDigest;
};

Image makeImage(const std::string& user, const std::string& arch = "amd64") {
  Image image;
  image.config = json{{"architecture", arch}, {"os", "linux"}, {"config", {{"User", user}}}}.dump();
  image.configDigest = sha256Digest(image.config);
  image.manifest = json{{"schemaVersion", 2},
                        {"config",
                         {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                          {"digest", image.configDigest},
                          {"size", image.config.size()}}},
                        {"layers",
                         {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
                           {"digest", "sha256:" + std::string(64, 'f')},
                           {"size", 1234}}}}}
                       .dump();
  image.manifestDigest = sha256Digest(image.manifest);
  return image;
}

// A registry serving one repository `test/app` with tag "1" = `image`.
HttpResponse serveImage(const HttpRequest& request, const Image& image) {
  if (request.url.target == "/v2/test/app/manifests/1" ||
      request.url.target == "/v2/test/app/manifests/" + image.manifestDigest) {
    return respond(200, image.manifest,
                   {{"content-type", "application/vnd.oci.image.manifest.v1+json"},
                    {"docker-content-digest", image.manifestDigest}});
  }
  if (request.url.target == "/v2/test/app/blobs/" + image.configDigest) {
    return respond(200, image.config, {{"content-type", "application/octet-stream"}});
  }
  return respond(404, R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})");
}

image::ImageRef ref(const std::string& registry, const std::string& repository,
                    const std::string& tag, const std::string& digest = "") {
  image::ImageRef result;
  result.registry = registry;
  result.repository = repository;
  result.tag = tag;
  result.digest = digest;
  return result;
}

struct Harness {
  std::shared_ptr<FakeTransport> transport;
  std::vector<std::chrono::milliseconds> sleeps;
  std::unique_ptr<DistributionRegistry> registry;

  Harness(FakeTransport::Handler handler, const std::string& dockerConfig = "{}",
          const std::string& registryYaml = "")
      : transport(std::make_shared<FakeTransport>(std::move(handler))) {
    DistributionRegistryOptions options;
    options.config = RegistryConfig::parse(registryYaml, "test.yaml");
    options.credentials = DockerConfig::parse(dockerConfig);
    options.transport = transport;
    options.sleep = [this](std::chrono::milliseconds wait) { sleeps.push_back(wait); };
    registry = std::make_unique<DistributionRegistry>(std::move(options));
  }

  image::ImageFacts fetch(const image::ImageRef& image, const std::string& platform = "linux/amd64",
                          SteadyClock::duration budget = std::chrono::seconds(30)) {
    return registry->fetchFacts(image, image::Platform::parse(platform), Deadline::after(budget));
  }

  FetchError fetchError(const image::ImageRef& image, const std::string& platform = "linux/amd64",
                        SteadyClock::duration budget = std::chrono::seconds(30)) {
    try {
      fetch(image, platform, budget);
    } catch (const FetchError& e) {
      return e;
    }
    ADD_FAILURE() << "fetch succeeded";
    return FetchError(Kind::kServerError, "");
  }
};

const std::string kBasicConfig = R"({"auths":{"reg.example":{"auth":")" +
                                 base64Encode(std::string("user:") + kPassword) + "\"}}}";

void expectNoSecrets(const std::string& message) {
  EXPECT_THAT(message, Not(HasSubstr(kPassword)));
  EXPECT_THAT(message, Not(HasSubstr(base64Encode(std::string("user:") + kPassword))));
}

TEST(RegistryDistribution, FetchesManifestAndConfig) {
  const Image image = makeImage("65532:65532");
  Harness h([&](const HttpRequest& r) { return serveImage(r, image); });
  const image::ImageFacts facts = h.fetch(ref("reg.example", "test/app", "1"));
  EXPECT_EQ(facts.manifestDigest, image.manifestDigest);
  EXPECT_EQ(facts.manifestMediaType, media::kOciManifest);
  EXPECT_EQ(facts.config.digest, image.configDigest);
  EXPECT_EQ(facts.imageConfig.user, "65532:65532");
  EXPECT_EQ(facts.platform.str(), "linux/amd64");
  EXPECT_EQ(facts.compressedSize(), 1234u);
  ASSERT_EQ(h.transport->requests.size(), 2u);
  EXPECT_EQ(h.transport->requests[0].url.str(), "https://reg.example/v2/test/app/manifests/1");
  EXPECT_EQ(h.transport->header(0, "Accept"), manifestAcceptHeader());
  EXPECT_EQ(h.transport->header(0, "Authorization"), "");
}

TEST(RegistryDistribution, StreamsBlobsAfterAuthenticating) {
  const std::string layer(300'000, 'x');
  const image::Descriptor blob{"application/vnd.oci.image.layer.v1.tar", sha256Digest(layer),
                               layer.size()};
  const std::string good = "Basic " + base64Encode(std::string("user:") + kPassword);
  Harness h(
      [&](const HttpRequest& r) {
        for (const auto& [name, value] : r.headers) {
          if (name == "Authorization" && value == good &&
              r.url.target == "/v2/test/app/blobs/" + blob.digest) {
            return respond(200, layer);
          }
        }
        return respond(401, "", {{"www-authenticate", R"(Basic realm="Registry Realm")"}});
      },
      kBasicConfig);
  std::string received;
  h.registry->fetchBlob(
      ref("reg.example", "test/app", "1"), blob,
      [&](std::string_view chunk) { received.append(chunk); },
      Deadline::after(std::chrono::seconds(10)));
  EXPECT_EQ(received, layer);
  EXPECT_EQ(h.transport->header(1, "Authorization"), good);
}

TEST(RegistryDistribution, BlobsAreBoundedByTheirDescriptor) {
  const std::string layer(1000, 'x');
  Harness h([&](const HttpRequest&) { return respond(200, layer); });
  const image::Descriptor shorter{"", sha256Digest(layer), 999};
  try {
    h.registry->fetchBlob(
        ref("reg.example", "test/app", "1"), shorter, [](std::string_view) {},
        Deadline::after(std::chrono::seconds(10)));
    ADD_FAILURE() << "a blob longer than its descriptor must fail";
  } catch (const FetchError& e) {
    EXPECT_EQ(e.kind(), Kind::kInvalidContent);
    EXPECT_THAT(e.what(), HasSubstr("cannot fetch reg.example/test/app:1 from reg.example"));
  }
  const image::Descriptor notADigest{"", "md5:abc", 1000};
  EXPECT_THROW(h.registry->fetchBlob(
                   ref("reg.example", "test/app", "1"), notADigest, [](std::string_view) {},
                   Deadline::after(std::chrono::seconds(10))),
               FetchError);
}

TEST(RegistryDistribution, InsecureRegistriesUsePlainHttp) {
  const Image image = makeImage("1000");
  Harness h([&](const HttpRequest& r) { return serveImage(r, image); }, "{}",
            "registries: [{host: '127.0.0.1:5000', insecure: true}]");
  h.fetch(ref("127.0.0.1:5000", "test/app", "1"));
  EXPECT_EQ(h.transport->requests[0].url.str(), "http://127.0.0.1:5000/v2/test/app/manifests/1");
}

TEST(RegistryDistribution, DockerHubUsesItsApiHost) {
  Harness h([&](const HttpRequest&) {
    return respond(404, R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})");
  });
  const FetchError error = h.fetchError(ref("docker.io", "library/nginx", "1.27"));
  EXPECT_EQ(error.kind(), Kind::kNotFound);
  EXPECT_STREQ(error.what(),
               "cannot fetch docker.io/library/nginx:1.27 from registry-1.docker.io: manifest "
               "unknown (HTTP 404)");
  EXPECT_EQ(h.transport->requests[0].url.host, "registry-1.docker.io");
}

TEST(RegistryDistribution, ResolvesIndexByPlatform) {
  const Image amd = makeImage("65532:65532", "amd64");
  const Image arm = makeImage("1000", "arm64");
  const std::string index = json{{"schemaVersion", 2},
                                 {"mediaType", media::kOciIndex},
                                 {"manifests",
                                  {{{"mediaType", media::kOciManifest},
                                    {"digest", amd.manifestDigest},
                                    {"size", amd.manifest.size()},
                                    {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}},
                                   {{"mediaType", media::kOciManifest},
                                    {"digest", arm.manifestDigest},
                                    {"size", arm.manifest.size()},
                                    {"platform", {{"os", "linux"}, {"architecture", "arm64"}}}}}}}
                                .dump();
  Harness h([&](const HttpRequest& r) {
    if (r.url.target == "/v2/test/app/manifests/1") {
      return respond(200, index, {{"content-type", std::string(media::kOciIndex)}});
    }
    const HttpResponse amdResponse = serveImage(r, amd);
    return amdResponse.status == 200 ? amdResponse : serveImage(r, arm);
  });
  const image::ImageFacts amdFacts = h.fetch(ref("reg.example", "test/app", "1"));
  EXPECT_EQ(amdFacts.manifestDigest, amd.manifestDigest);
  EXPECT_EQ(amdFacts.imageConfig.user, "65532:65532");
  const image::ImageFacts armFacts = h.fetch(ref("reg.example", "test/app", "1"), "linux/arm64");
  EXPECT_EQ(armFacts.manifestDigest, arm.manifestDigest);
  EXPECT_EQ(armFacts.imageConfig.user, "1000");
  EXPECT_EQ(armFacts.platform.str(), "linux/arm64");

  const FetchError missing = h.fetchError(ref("reg.example", "test/app", "1"), "linux/s390x");
  EXPECT_EQ(missing.kind(), Kind::kNoMatchingPlatform);
  EXPECT_THAT(missing.what(), HasSubstr("cannot fetch reg.example/test/app:1 from reg.example: "));
  EXPECT_THAT(missing.what(), HasSubstr("available: linux/amd64, linux/arm64"));
}

TEST(RegistryDistribution, VerifiesDigests) {
  const Image image = makeImage("0");
  // The registry claims another digest than the body has.
  Harness lying([&](const HttpRequest& r) {
    HttpResponse response = serveImage(r, image);
    for (auto& [name, value] : response.headers) {
      if (name == "docker-content-digest") {
        value = "sha256:" + std::string(64, '0');
      }
    }
    return response;
  });
  const FetchError claimed = lying.fetchError(ref("reg.example", "test/app", "1"));
  EXPECT_EQ(claimed.kind(), Kind::kInvalidContent);
  EXPECT_THAT(claimed.what(), HasSubstr("the manifest served for tag 1 hashes to sha256:"));
  EXPECT_THAT(claimed.what(), HasSubstr(", not sha256:" + std::string(64, '0')));

  // A pinned reference whose content does not hash to the pin.
  Harness h([&](const HttpRequest& r) {
    if (r.url.target.find("/manifests/") != std::string::npos) {
      return respond(200, image.manifest, {{"content-type", std::string(media::kOciManifest)}});
    }
    return serveImage(r, image);
  });
  const std::string wrong = "sha256:" + std::string(64, '1');
  const FetchError pinned = h.fetchError(ref("reg.example", "test/app", "", wrong));
  EXPECT_EQ(pinned.kind(), Kind::kInvalidContent);
  EXPECT_THAT(pinned.what(), HasSubstr("reg.example/test/app@" + wrong));
  // And the right pin works, even without Docker-Content-Digest.
  EXPECT_EQ(h.fetch(ref("reg.example", "test/app", "", image.manifestDigest)).manifestDigest,
            image.manifestDigest);
}

TEST(RegistryDistribution, VerifiesConfigBlob) {
  const Image image = makeImage("0");
  Harness tampered([&](const HttpRequest& r) {
    HttpResponse response = serveImage(r, image);
    if (r.url.target.find("/blobs/") != std::string::npos) {
      response.body[response.body.size() - 2] = 'X';  // same size, other content
    }
    return response;
  });
  const FetchError hash = tampered.fetchError(ref("reg.example", "test/app", "1"));
  EXPECT_EQ(hash.kind(), Kind::kInvalidContent);
  EXPECT_THAT(hash.what(), HasSubstr("hashes to"));

  Harness shorter([&](const HttpRequest& r) {
    HttpResponse response = serveImage(r, image);
    if (r.url.target.find("/blobs/") != std::string::npos) {
      response.body.pop_back();
    }
    return response;
  });
  EXPECT_THAT(shorter.fetchError(ref("reg.example", "test/app", "1")).what(),
              HasSubstr("but the manifest says"));
}

TEST(RegistryDistribution, MapsStatusesToKinds) {
  for (const auto& [status, kind] :
       std::vector<std::pair<unsigned, Kind>>{{403, Kind::kForbidden},
                                              {404, Kind::kNotFound},
                                              {429, Kind::kRateLimited},
                                              {500, Kind::kServerError},
                                              {502, Kind::kServerError},
                                              {503, Kind::kServerError},
                                              {400, Kind::kServerError}}) {
    Harness h([status = status](const HttpRequest&) { return respond(status, "oops"); });
    const FetchError error = h.fetchError(ref("reg.example", "test/app", "1"));
    EXPECT_EQ(error.kind(), kind) << status;
    EXPECT_THAT(error.what(), HasSubstr("(HTTP " + std::to_string(status) + ")"));
  }
}

TEST(RegistryDistribution, HonoursRetryAfterWithinTheDeadline) {
  const Image image = makeImage("0");
  int calls = 0;
  Harness h([&](const HttpRequest& r) {
    if (++calls == 1) {
      return respond(429, "", {{"retry-after", "2"}});
    }
    return serveImage(r, image);
  });
  EXPECT_EQ(h.fetch(ref("reg.example", "test/app", "1")).imageConfig.user, "0");
  ASSERT_EQ(h.sleeps.size(), 1u);
  EXPECT_EQ(h.sleeps[0], std::chrono::milliseconds(2000));

  Harness tooLong([](const HttpRequest&) { return respond(429, "", {{"retry-after", "3600"}}); });
  EXPECT_EQ(tooLong.fetchError(ref("reg.example", "test/app", "1")).kind(), Kind::kRateLimited);
  EXPECT_TRUE(tooLong.sleeps.empty());

  Harness busy([](const HttpRequest&) { return respond(503, "", {{"retry-after", "1"}}); });
  EXPECT_EQ(busy.fetchError(ref("reg.example", "test/app", "1")).kind(), Kind::kServerError);
  EXPECT_EQ(busy.sleeps.size(), 3u);  // bounded retries
}

TEST(RegistryDistribution, BearerTokenFlowAndCache) {
  const Image image = makeImage("0");
  int tokenRequests = 0;
  Harness h(
      [&](const HttpRequest& r) {
        if (r.url.host == "auth.example") {
          ++tokenRequests;
          return respond(200, R"({"token":"tok-123","expires_in":300})");
        }
        bool authorized = false;
        for (const auto& [name, value] : r.headers) {
          authorized = authorized || (name == "Authorization" && value == "Bearer tok-123");
        }
        if (!authorized) {
          return respond(
              401, "",
              {{"www-authenticate",
                R"(Bearer realm="https://auth.example/token",service="reg",scope="repository:test/app:pull")"}});
        }
        return serveImage(r, image);
      },
      kBasicConfig);
  h.fetch(ref("reg.example", "test/app", "1"));
  EXPECT_EQ(tokenRequests, 1);
  const auto& token = h.transport->requests[1];
  EXPECT_EQ(token.url.str(),
            "https://auth.example/token?service=reg&scope=repository%3Atest%2Fapp%3Apull");
  EXPECT_EQ(h.transport->header(1, "Authorization"),
            "Basic " + base64Encode(std::string("user:") + kPassword));
  EXPECT_EQ(h.transport->header(2, "Authorization"), "Bearer tok-123");

  // The second fetch authorises upfront with the cached token.
  const std::size_t before = h.transport->requests.size();
  h.fetch(ref("reg.example", "test/app", "1"));
  EXPECT_EQ(tokenRequests, 1);
  EXPECT_EQ(h.transport->requests.size(), before + 2);
}

TEST(RegistryDistribution, AnonymousTokenAndRejectedToken) {
  Harness h([&](const HttpRequest& r) {
    if (r.url.host == "auth.example") {
      return respond(200, R"({"access_token":"anon"})");
    }
    return respond(
        401, "",
        {{"www-authenticate", R"(Bearer realm="https://auth.example/token",service="reg")"}});
  });
  const FetchError error = h.fetchError(ref("reg.example", "test/app", "1"));
  EXPECT_EQ(error.kind(), Kind::kUnauthorized);
  EXPECT_EQ(h.transport->header(1, "Authorization"), "");  // anonymous token request
  EXPECT_LE(h.transport->requests.size(), 6u);             // bounded auth rounds
}

TEST(RegistryDistribution, TokenServiceRejectsCredentials) {
  Harness h(
      [&](const HttpRequest& r) {
        if (r.url.host == "auth.example") {
          return respond(401, std::string("bad password ") + kPassword);
        }
        return respond(
            401, "",
            {{"www-authenticate", R"(Bearer realm="https://auth.example/token",service="reg")"}});
      },
      kBasicConfig);
  const FetchError error = h.fetchError(ref("reg.example", "test/app", "1"));
  EXPECT_EQ(error.kind(), Kind::kUnauthorized);
  EXPECT_THAT(error.what(), HasSubstr("rejected the credentials"));
  expectNoSecrets(error.what());
}

TEST(RegistryDistribution, BasicAuth) {
  const Image image = makeImage("0");
  const std::string good = "Basic " + base64Encode(std::string("user:") + kPassword);
  Harness h(
      [&](const HttpRequest& r) {
        for (const auto& [name, value] : r.headers) {
          if (name == "Authorization" && value == good) {
            return serveImage(r, image);
          }
        }
        return respond(
            401, R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})",
            {{"www-authenticate", R"(Basic realm="Registry Realm")"}});
      },
      kBasicConfig);
  h.fetch(ref("reg.example", "test/app", "1"));
  EXPECT_EQ(h.transport->header(1, "Authorization"), good);
  // Once the scheme is known, later requests authorise upfront.
  EXPECT_EQ(h.transport->header(2, "Authorization"), good);

  Harness anonymous([&](const HttpRequest&) {
    return respond(401, "", {{"www-authenticate", R"(Basic realm="Registry Realm")"}});
  });
  const FetchError missing = anonymous.fetchError(ref("reg.example", "test/app", "1"));
  EXPECT_EQ(missing.kind(), Kind::kUnauthorized);
  EXPECT_THAT(missing.what(), HasSubstr("docker config has none"));
}

TEST(RegistryDistribution, WrongBasicPasswordNeverLeaks) {
  Harness h(
      [&](const HttpRequest& r) {
        // A hostile registry echoing what it got.
        return respond(
            401,
            json{{"errors", {{{"code", "UNAUTHORIZED"}, {"message", "bad " + r.body + kPassword}}}}}
                .dump(),
            {{"www-authenticate", R"(Basic realm="r")"}});
      },
      kBasicConfig);
  const FetchError error = h.fetchError(ref("reg.example", "test/app", "1"));
  EXPECT_EQ(error.kind(), Kind::kUnauthorized);
  EXPECT_THAT(error.what(), HasSubstr("rejected the credentials"));
  expectNoSecrets(error.what());
}

TEST(RegistryDistribution, IdentityTokenIsARefreshToken) {
  const Image image = makeImage("0");
  Harness h(
      [&](const HttpRequest& r) {
        if (r.url.host == "auth.example") {
          return r.method == "POST" ? respond(200, R"({"access_token":"fresh"})") : respond(405);
        }
        for (const auto& [name, value] : r.headers) {
          if (name == "Authorization" && value == "Bearer fresh") {
            return serveImage(r, image);
          }
        }
        return respond(
            401, "",
            {{"www-authenticate", R"(Bearer realm="https://auth.example/token",service="reg")"}});
      },
      R"({"auths":{"reg.example":{"identitytoken":"refresh-abc"}}})");
  h.fetch(ref("reg.example", "test/app", "1"));
  const HttpRequest& token = h.transport->requests[1];
  EXPECT_EQ(token.method, "POST");
  EXPECT_THAT(token.body, HasSubstr("grant_type=refresh_token"));
  EXPECT_THAT(token.body, HasSubstr("refresh_token=refresh-abc"));
  EXPECT_THAT(token.body, HasSubstr("scope=repository%3Atest%2Fapp%3Apull"));
  EXPECT_EQ(token.url.target, "/token");
}

TEST(RegistryDistribution, CredentialsNeverGoToPlainHttpRealms) {
  auto challenge = [](const HttpRequest& r) {
    if (r.url.host == "127.0.0.1") {
      return respond(200, R"({"token":"t"})");
    }
    return respond(
        401, "",
        {{"www-authenticate", R"(Bearer realm="http://127.0.0.1:5001/token",service="reg")"}});
  };
  Harness refused(challenge, kBasicConfig);
  const FetchError error = refused.fetchError(ref("reg.example", "test/app", "1"));
  EXPECT_EQ(error.kind(), Kind::kUnauthorized);
  EXPECT_THAT(error.what(), HasSubstr("plain http"));
  EXPECT_EQ(refused.transport->requests.size(), 1u);  // the token service was never contacted

  Harness allowed(challenge, kBasicConfig,
                  "registries: [{host: '127.0.0.1:5001', insecure: true}]");
  allowed.fetchError(ref("reg.example", "test/app", "1"));
  EXPECT_EQ(allowed.transport->requests[1].url.str(),
            "http://127.0.0.1:5001/token?service=reg&scope=repository%3Atest%2Fapp%3Apull");
}

TEST(RegistryDistribution, RedirectsDropAuthorizationAcrossOrigins) {
  const Image image = makeImage("0");
  const std::string good = "Basic " + base64Encode(std::string("user:") + kPassword);
  Harness h(
      [&](const HttpRequest& r) {
        bool authorized = false;
        for (const auto& [name, value] : r.headers) {
          authorized = authorized || (name == "Authorization" && value == good);
        }
        if (r.url.host == "blobs.example") {
          return respond(200, image.config);
        }
        if (!authorized) {
          return respond(401, "", {{"www-authenticate", R"(Basic realm="r")"}});
        }
        if (r.url.target.find("/blobs/") != std::string::npos) {
          return respond(307, "", {{"location", "https://blobs.example/data?sig=abc"}});
        }
        return serveImage(r, image);
      },
      kBasicConfig);
  EXPECT_EQ(h.fetch(ref("reg.example", "test/app", "1")).imageConfig.user, "0");
  const HttpRequest& last = h.transport->requests.back();
  EXPECT_EQ(last.url.str(), "https://blobs.example/data?sig=abc");
  EXPECT_EQ(h.transport->header(h.transport->requests.size() - 1, "Authorization"), "");
}

TEST(RegistryDistribution, RedirectLimitsAndDowngrades) {
  int hops = 0;
  Harness loop([&](const HttpRequest&) {
    return respond(302, "", {{"location", "/v2/test/app/manifests/" + std::to_string(++hops)}});
  });
  const FetchError tooMany = loop.fetchError(ref("reg.example", "test/app", "1"));
  EXPECT_EQ(tooMany.kind(), Kind::kServerError);
  EXPECT_THAT(tooMany.what(), HasSubstr("more than 5 redirects"));
  EXPECT_EQ(loop.transport->requests.size(), 6u);

  Harness downgrade([](const HttpRequest&) {
    return respond(301, "", {{"location", "http://reg.example/v2/test/app/manifests/1"}});
  });
  EXPECT_EQ(downgrade.fetchError(ref("reg.example", "test/app", "1")).kind(), Kind::kTlsFailure);

  Harness garbage([](const HttpRequest&) { return respond(302, "", {{"location", "ftp://x/y"}}); });
  EXPECT_EQ(garbage.fetchError(ref("reg.example", "test/app", "1")).kind(), Kind::kServerError);
}

TEST(RegistryDistribution, TransportErrorsNameImageAndHost) {
  Harness h([](const HttpRequest&) -> HttpResponse {
    throw FetchError(Kind::kTimeout, "timed out connecting to reg.example:5000");
  });
  const FetchError error = h.fetchError(ref("reg.example:5000", "team/app", "2"));
  EXPECT_EQ(error.kind(), Kind::kTimeout);
  EXPECT_STREQ(error.what(),
               "cannot fetch reg.example:5000/team/app:2 from reg.example:5000: timed out "
               "connecting to reg.example:5000");
}

TEST(RegistryDistribution, HostileChallengeIsUnauthorized) {
  Harness h([](const HttpRequest&) {
    return respond(401, "", {{"www-authenticate", "Bearer realm=\"unterminated"}});
  });
  const FetchError error = h.fetchError(ref("reg.example", "test/app", "1"));
  EXPECT_EQ(error.kind(), Kind::kUnauthorized);
  EXPECT_THAT(error.what(), HasSubstr("unusable challenge"));
}

// Retry-After is the registry's to ask and ours to refuse: a wait that does not fit in what is
// left of the deadline, or that is longer than imagegate ever sleeps, fails at once with a
// message saying so, instead of pinning a fetch thread.
TEST(RegistryDistribution, RetryAfterBeyondTheDeadlineFailsFastWithoutSleeping) {
  Harness h([](const HttpRequest&) { return respond(429, "", {{"retry-after", "86000"}}); });
  // A review whose client asked for a day (?timeout=24h): the wait still is not slept.
  const FetchError error =
      h.fetchError(ref("reg.example", "test/app", "1"), "linux/amd64", std::chrono::hours(24));
  EXPECT_EQ(error.kind(), Kind::kRateLimited);
  EXPECT_THAT(error.what(), HasSubstr("the registry asked to retry after 86000 s"));
  EXPECT_THAT(error.what(), HasSubstr("(HTTP 429)"));
  EXPECT_TRUE(h.sleeps.empty());
  EXPECT_EQ(h.transport->requests.size(), 1u);
}

TEST(RegistryDistribution, RetryAfterLongerThanImagegateWaitsFailsFast) {
  // 20 s fits in a 30 s deadline, but one fetch never sleeps that long.
  Harness h([](const HttpRequest&) { return respond(503, "", {{"retry-after", "20"}}); });
  const FetchError error = h.fetchError(ref("reg.example", "test/app", "1"));
  EXPECT_EQ(error.kind(), Kind::kServerError);
  EXPECT_THAT(error.what(), HasSubstr("the registry asked to retry after 20 s"));
  EXPECT_TRUE(h.sleeps.empty());
}

TEST(RegistryDistribution, RetryAfterLeavesTimeForTheRetriedRequest) {
  // 2 s is less than the 2.5 s left, but the retried request would have almost none.
  Harness h([](const HttpRequest&) { return respond(429, "", {{"retry-after", "2"}}); });
  const FetchError error = h.fetchError(ref("reg.example", "test/app", "1"), "linux/amd64",
                                        std::chrono::milliseconds(2500));
  EXPECT_EQ(error.kind(), Kind::kRateLimited);
  EXPECT_THAT(error.what(), HasSubstr("beyond the review's deadline"));
  EXPECT_TRUE(h.sleeps.empty());
}

// Every form a credential travels in, as a hostile registry (or token service) could echo it.
constexpr char kEchoUser[] = "attacker-user";
constexpr char kEchoPassword[] = "S3cr3tPa55-Xq9z";
constexpr char kEchoBearer[] = "brr-Vn5Xc3Hs7Jp1Wd6Ky";
constexpr char kEchoIdentity[] = "idt-Qw9Zr2Lm8Tk4Gb3Nf";

std::vector<std::string> echoSecrets() {
  return {kEchoPassword, base64Encode(std::string(kEchoUser) + ":" + kEchoPassword), kEchoBearer,
          kEchoIdentity};
}

/// No 4-character piece of any form of any credential is in `message`.
void expectNoSecretPieces(const std::string& message, std::size_t offset) {
  for (const std::string& secret : echoSecrets()) {
    for (std::size_t i = 0; i + 4 <= secret.size(); ++i) {
      EXPECT_THAT(message, Not(HasSubstr(secret.substr(i, 4))))
          << "echoed at offset " << offset << ", " << secret << " leaked";
    }
  }
}

/// A registry error body whose errors[0].message has `echoed` starting at `offset`.
std::string echoBody(std::size_t offset, const std::string& echoed) {
  const std::string message = std::string(offset, 'x') + echoed + " is not allowed here";
  return json{{"errors", {{{"code", "DENIED"}, {"message", message}}}}}.dump();
}

std::string authorizationOf(const HttpRequest& request) {
  for (const auto& [name, value] : request.headers) {
    if (name == "Authorization") return value;
  }
  return "";
}

// Registry messages are cut at 200 characters; whatever is cut, no piece of a credential that
// was echoed across the cut may survive.
TEST(RegistryDistribution, EchoedCredentialsAreRedactedAtEveryOffsetAroundTheCut) {
  const std::string basicConfig =
      json{{"auths", {{"reg.example", {{"username", kEchoUser}, {"password", kEchoPassword}}}}}}
          .dump();
  const std::string identityConfig =
      json{{"auths", {{"reg.example", {{"identitytoken", kEchoIdentity}}}}}}.dump();
  const auto basicChallenge = respond(401, "", {{"www-authenticate", R"(Basic realm="r")"}});
  const auto bearerChallenge =
      respond(401, "",
              {{"www-authenticate", R"(Bearer realm="https://auth.example/token",service="reg")"}});
  for (std::size_t offset = 150; offset <= 215; ++offset) {
    // The Authorization header as sent (Basic base64(user:password)), and the password alone.
    for (const bool decoded : {false, true}) {
      Harness h(
          [&](const HttpRequest& r) {
            const std::string sent = authorizationOf(r);
            if (sent.empty()) return basicChallenge;
            return respond(403, echoBody(offset, decoded ? kEchoPassword : sent));
          },
          basicConfig);
      const FetchError error = h.fetchError(ref("reg.example", "test/app", "1"));
      EXPECT_EQ(error.kind(), Kind::kForbidden);
      expectNoSecretPieces(error.what(), offset);
    }
    // A bearer token, fetched by this call and then cached for the next one.
    {
      Harness h(
          [&](const HttpRequest& r) {
            if (r.url.host == "auth.example") {
              return respond(200, json{{"token", kEchoBearer}}.dump());
            }
            const std::string sent = authorizationOf(r);
            if (sent.empty()) return bearerChallenge;
            return respond(403, echoBody(offset, sent));
          },
          basicConfig);
      for (int call = 0; call < 2; ++call) {
        const FetchError error = h.fetchError(ref("reg.example", "test/app", "1"));
        EXPECT_EQ(error.kind(), Kind::kForbidden);
        expectNoSecretPieces(error.what(), offset);
      }
    }
    // An identity token, echoed by the token service it was sent to.
    {
      Harness h(
          [&](const HttpRequest& r) {
            if (r.url.host == "auth.example") {
              return respond(400, echoBody(offset, kEchoIdentity));
            }
            return bearerChallenge;
          },
          identityConfig);
      expectNoSecretPieces(h.fetchError(ref("reg.example", "test/app", "1")).what(), offset);
    }
  }
}

// A registry that cuts what it echoes itself leaves no whole secret to find; what the cut at
// 200 characters keeps of it is still the start of a credential.
TEST(RegistryDistribution, TheStartOfACredentialAtTheCutIsRedacted) {
  const std::string config =
      json{{"auths", {{"reg.example", {{"username", kEchoUser}, {"password", kEchoPassword}}}}}}
          .dump();
  for (const std::string& secret : {std::string(kEchoPassword), echoSecrets()[1]}) {
    // `kept` characters of the secret end up before the cut.
    for (std::size_t kept = 1; kept + 1 < secret.size(); ++kept) {
      const std::size_t offset = 200 - kept;
      Harness h(
          [&](const HttpRequest& r) {
            if (authorizationOf(r).empty()) {
              return respond(401, "", {{"www-authenticate", R"(Basic realm="r")"}});
            }
            return respond(403, echoBody(offset, secret.substr(0, secret.size() - 1)));
          },
          config);
      expectNoSecretPieces(h.fetchError(ref("reg.example", "test/app", "1")).what(), offset);
    }
  }
}

// Scrubbing goes on after each "[redacted]" it writes: a password such as "acted" used to be found
// again inside it, forever.
TEST(RegistryDistribution, APasswordInsideTheRedactionMarkIsScrubbedOnce) {
  const std::string config =
      json{{"auths", {{"reg.example", {{"username", "u"}, {"password", "acted"}}}}}}.dump();
  Harness h(
      [&](const HttpRequest& r) {
        if (authorizationOf(r).empty()) {
          return respond(401, "", {{"www-authenticate", R"(Basic realm="r")"}});
        }
        return respond(403, json{{"errors", {{{"message", "you acted badly"}}}}}.dump());
      },
      config);
  EXPECT_THAT(h.fetchError(ref("reg.example", "test/app", "1")).what(),
              HasSubstr("you [redacted] badly (HTTP 403)"));
}

TEST(RegistryDistribution, RedactionKeepsTheRestOfTheMessage) {
  Harness h(
      [&](const HttpRequest& r) {
        const std::string sent = authorizationOf(r);
        if (sent.empty()) return respond(401, "", {{"www-authenticate", R"(Basic realm="r")"}});
        return respond(403, json{{"errors", {{{"message", "denied for " + sent}}}}}.dump());
      },
      kBasicConfig);
  EXPECT_THAT(h.fetchError(ref("reg.example", "test/app", "1")).what(),
              HasSubstr("reg.example: denied for Basic [redacted] (HTTP 403)"));
}

}  // namespace
}  // namespace imagegate::registry
