#include "registry/url.h"

#include <gtest/gtest.h>

namespace imagegate::registry {
namespace {

TEST(RegistryUrl, ParsesAbsoluteUrls) {
  const auto url = parseUrl("https://Auth.Example.com/token?service=x");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->scheme, "https");
  EXPECT_EQ(url->host, "auth.example.com");
  EXPECT_EQ(url->port, "443");
  EXPECT_EQ(url->target, "/token?service=x");
  EXPECT_EQ(url->authority(), "auth.example.com");
  EXPECT_EQ(url->origin(), "https://auth.example.com");

  const auto local = parseUrl("http://127.0.0.1:5001");
  ASSERT_TRUE(local);
  EXPECT_EQ(local->port, "5001");
  EXPECT_EQ(local->target, "/");
  EXPECT_EQ(local->authority(), "127.0.0.1:5001");

  const auto v6 = parseUrl("https://[::1]:8443/x#frag");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "[::1]");
  EXPECT_EQ(v6->bareHost(), "::1");
  EXPECT_EQ(v6->target, "/x");
}

TEST(RegistryUrl, RejectsWhatWeNeverFollow) {
  EXPECT_FALSE(parseUrl(""));
  EXPECT_FALSE(parseUrl("ftp://host/x"));
  EXPECT_FALSE(parseUrl("host/x"));
  EXPECT_FALSE(parseUrl("https://user:pass@host/x"));  // no credentials in URLs
  EXPECT_FALSE(parseUrl("https:///x"));
  EXPECT_FALSE(parseUrl("https://host:99999/x"));
  EXPECT_FALSE(parseUrl("https://host:abc/x"));
  EXPECT_FALSE(parseUrl("https://ho st/x"));
  EXPECT_FALSE(parseUrl("https://host/x\r\nInjected: 1"));
  EXPECT_FALSE(parseUrl("https://[::1/x"));
}

TEST(RegistryUrl, ResolvesLocations) {
  const Url base = *parseUrl("https://reg.example:5000/v2/a/blobs/sha256:1");
  EXPECT_EQ(resolveLocation(base, "https://s3.example/bucket/x?sig=1")->str(),
            "https://s3.example/bucket/x?sig=1");
  EXPECT_EQ(resolveLocation(base, "//cdn.example/y")->str(), "https://cdn.example/y");
  EXPECT_EQ(resolveLocation(base, "/v2/b/blobs/z")->str(), "https://reg.example:5000/v2/b/blobs/z");
  EXPECT_EQ(resolveLocation(base, "other")->str(), "https://reg.example:5000/v2/a/blobs/other");
  EXPECT_FALSE(resolveLocation(base, ""));
  EXPECT_FALSE(resolveLocation(base, "javascript://x"));
}

TEST(RegistryUrl, QueryEncoding) {
  Url url = *parseUrl("https://auth.example/token");
  addQueryParameter(url, "service", "registry.example");
  addQueryParameter(url, "scope", "repository:library/nginx:pull");
  EXPECT_EQ(url.target,
            "/token?service=registry.example&scope=repository%3Alibrary%2Fnginx%3Apull");
  Url withQuery = *parseUrl("https://auth.example/token?a=1");
  addQueryParameter(withQuery, "b", "x y&z");
  EXPECT_EQ(withQuery.target, "/token?a=1&b=x%20y%26z");
}

}  // namespace
}  // namespace imagegate::registry
