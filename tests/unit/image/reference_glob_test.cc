#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "image/reference_glob.h"

namespace imagegate::image {
namespace {

TEST(ImageGlobMatch, StarMatchesEverything) {
  EXPECT_TRUE(imageGlobMatch("*", "docker.io/library/nginx:latest"));
  EXPECT_TRUE(imageGlobMatch("*", "localhost:5000/x@sha256:abc"));
}

TEST(ImageGlobMatch, HostAndPathMatchedSeparately) {
  EXPECT_TRUE(imageGlobMatch("registry.example.com/*", "registry.example.com/team/app:1"));
  EXPECT_TRUE(imageGlobMatch("ghcr.io/acme/*", "ghcr.io/acme/app:2"));
  EXPECT_FALSE(imageGlobMatch("ghcr.io/acme/*", "ghcr.io/acme-evil/app:2"));
  EXPECT_TRUE(imageGlobMatch("docker.io/library/nginx:*", "docker.io/library/nginx:1.27"));
  EXPECT_FALSE(imageGlobMatch("docker.io/library/nginx:*", "docker.io/library/nginx-evil:1"));
}

TEST(ImageGlobMatch, RegistryGlobNeverMatchesALongerHostName) {
  EXPECT_FALSE(imageGlobMatch("registry.example.com/*", "registry.example.com.evil.io/x:1"));
  EXPECT_FALSE(imageGlobMatch("registry.example.com", "registry.example.com.evil.io/x:1"));
  EXPECT_FALSE(imageGlobMatch("registry.example.com/*", "registry.example.com:5000/x:1"));
  // A host wildcard stays inside the host: it cannot swallow the '/' into the path.
  EXPECT_FALSE(imageGlobMatch("*.example.com/*", "evil.io/x.example.com/y:1"));
  EXPECT_TRUE(imageGlobMatch("*.example.com/*", "eu.registry.example.com/y:1"));
}

TEST(ImageGlobMatch, PatternWithoutSlashNamesHostsOnly) {
  EXPECT_TRUE(imageGlobMatch("docker.io", "docker.io/library/nginx:latest"));
  EXPECT_TRUE(imageGlobMatch("*.gcr.io", "k8s.gcr.io/pause:3.9"));
  EXPECT_FALSE(imageGlobMatch("nginx", "docker.io/library/nginx:latest"));
  EXPECT_FALSE(imageGlobMatch("docker.io", "ghcr.io/docker.io/x:1"));
}

TEST(ImageGlobMatch, HostComparisonIgnoresCase) {
  // DNS is case-insensitive and runtimes pull "K8S.GCR.IO/x" from k8s.gcr.io.
  EXPECT_TRUE(imageGlobMatch("k8s.gcr.io/*", "K8S.GCR.IO/pause:3.9"));
  EXPECT_TRUE(imageGlobMatch("k8s.gcr.io", "K8s.Gcr.Io/pause:3.9"));
  // The path is case-sensitive, like repositories and tags.
  EXPECT_FALSE(imageGlobMatch("ghcr.io/acme/app:v1", "ghcr.io/acme/app:V1"));
}

}  // namespace
}  // namespace imagegate::image
