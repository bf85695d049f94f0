#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "image/image_ref.h"

namespace imagegate::image {
namespace {

using ::testing::HasSubstr;

const std::string kSha256 = "sha256:" + std::string(64, 'a');

std::string problemOf(std::string_view reference) {
  try {
    parseImageRef(reference);
  } catch (const InvalidReference& e) {
    return e.what();
  }
  return "";
}

TEST(ParseImageRef, SingleComponentGetsDockerHubAndLibrary) {
  const ImageRef ref = parseImageRef("nginx");
  EXPECT_EQ(ref.registry, "docker.io");
  EXPECT_EQ(ref.repository, "library/nginx");
  EXPECT_EQ(ref.tag, "latest");
  EXPECT_TRUE(ref.tagImplied);
  EXPECT_EQ(ref.digest, "");
  EXPECT_EQ(ref.name(), "docker.io/library/nginx");
  EXPECT_EQ(ref.str(), "docker.io/library/nginx:latest");
}

TEST(ParseImageRef, ExplicitTagIsNotImplied) {
  const ImageRef ref = parseImageRef("nginx:1.27");
  EXPECT_EQ(ref.str(), "docker.io/library/nginx:1.27");
  EXPECT_FALSE(ref.tagImplied);
  const ImageRef latest = parseImageRef("nginx:latest");
  EXPECT_EQ(latest.tag, "latest");
  EXPECT_FALSE(latest.tagImplied);
}

TEST(ParseImageRef, TwoComponentsStayOnDockerHubWithoutLibrary) {
  const ImageRef ref = parseImageRef("acme/app:1");
  EXPECT_EQ(ref.registry, "docker.io");
  EXPECT_EQ(ref.repository, "acme/app");
  EXPECT_EQ(ref.str(), "docker.io/acme/app:1");
}

TEST(ParseImageRef, ExplicitDockerHubSingleComponentGetsLibrary) {
  EXPECT_EQ(parseImageRef("docker.io/nginx").str(), "docker.io/library/nginx:latest");
  EXPECT_EQ(parseImageRef("docker.io/library/nginx:1").str(), "docker.io/library/nginx:1");
}

TEST(ParseImageRef, LegacyIndexHostBecomesDockerIo) {
  EXPECT_EQ(parseImageRef("index.docker.io/x/y").str(), "docker.io/x/y:latest");
  EXPECT_EQ(parseImageRef("index.docker.io/busybox").str(), "docker.io/library/busybox:latest");
}

TEST(ParseImageRef, FirstComponentIsRegistryOnlyWithDotColonOrLocalhost) {
  EXPECT_EQ(parseImageRef("ghcr.io/acme/app").registry, "ghcr.io");
  EXPECT_EQ(parseImageRef("localhost/app").registry, "localhost");
  EXPECT_EQ(parseImageRef("localhost/app").repository, "app");
  EXPECT_EQ(parseImageRef("myhost:5000/app").registry, "myhost:5000");
  // No dot, colon or "localhost": a Docker Hub namespace, not a host.
  const ImageRef ref = parseImageRef("myhost/app");
  EXPECT_EQ(ref.registry, "docker.io");
  EXPECT_EQ(ref.repository, "myhost/app");
}

TEST(ParseImageRef, PortIsNotATag) {
  const ImageRef ref = parseImageRef("host:5000/x");
  EXPECT_EQ(ref.registry, "host:5000");
  EXPECT_EQ(ref.repository, "x");
  EXPECT_EQ(ref.tag, "latest");
  EXPECT_TRUE(ref.tagImplied);
  const ImageRef tagged = parseImageRef("host:5000/team/x:2.0");
  EXPECT_EQ(tagged.registry, "host:5000");
  EXPECT_EQ(tagged.repository, "team/x");
  EXPECT_EQ(tagged.tag, "2.0");
}

TEST(ParseImageRef, HostWithoutSlashIsARepositoryWithTag) {
  // As in Docker: "localhost:5000" alone is repository "localhost" with tag "5000".
  const ImageRef ref = parseImageRef("localhost:5000");
  EXPECT_EQ(ref.str(), "docker.io/library/localhost:5000");
}

TEST(ParseImageRef, Ipv6RegistryWithPort) {
  const ImageRef ref = parseImageRef("[::1]:5000/app:v1");
  EXPECT_EQ(ref.registry, "[::1]:5000");
  EXPECT_EQ(ref.repository, "app");
  EXPECT_EQ(ref.tag, "v1");
}

TEST(ParseImageRef, DigestOnlyHasNoTag) {
  const ImageRef ref = parseImageRef("ghcr.io/a/b@" + kSha256);
  EXPECT_EQ(ref.digest, kSha256);
  EXPECT_EQ(ref.tag, "");
  EXPECT_FALSE(ref.tagImplied);
  EXPECT_EQ(ref.str(), "ghcr.io/a/b@" + kSha256);
}

TEST(ParseImageRef, TagAndDigestAreBothKept) {
  const ImageRef ref = parseImageRef("a/b:1@" + kSha256);
  EXPECT_EQ(ref.tag, "1");
  EXPECT_EQ(ref.digest, kSha256);
  EXPECT_FALSE(ref.tagImplied);
  EXPECT_EQ(ref.str(), "docker.io/a/b:1@" + kSha256);
}

TEST(ParseImageRef, OnlyDigestAlgorithmsThatCanBePulledAreValid) {
  // The kubelet cannot pull these; an admission check that let them through would let a pod in
  // that can never start, or that a later tooling update resolves differently.
  for (const std::string& digest :
       {"md5:" + std::string(32, 'f'), "blake3:" + std::string(64, 'f'),
        "sha384:" + std::string(96, 'f'), "multihash+base58.v1:" + std::string(40, '0')}) {
    const std::string algorithm = digest.substr(0, digest.find(':'));
    EXPECT_EQ(problemOf("app@" + digest), "invalid image reference \"app@" + digest +
                                              "\": digest algorithm \"" + algorithm +
                                              "\" cannot be pulled (use sha256 or sha512)");
  }
  EXPECT_EQ(parseImageRef("app@sha512:" + std::string(128, 'f')).digest,
            "sha512:" + std::string(128, 'f'));
  EXPECT_THAT(problemOf("app@sha512:" + std::string(127, 'f')),
              HasSubstr("sha512 digest must be 128 lowercase hex"));
  EXPECT_THAT(problemOf("app@Blake3:" + std::string(32, 'f')),
              HasSubstr("digest algorithm \"Blake3\" is not valid"));
  EXPECT_THAT(problemOf("app@a..b:" + std::string(32, 'f')), HasSubstr("algorithm"));
}

TEST(ParseImageRef, Sha256DigestMustBe64LowercaseHex) {
  EXPECT_THAT(problemOf("app@sha256:" + std::string(63, 'a')),
              HasSubstr("sha256 digest must be 64 lowercase hex"));
  EXPECT_THAT(problemOf("app@sha256:" + std::string(64, 'A')), HasSubstr("lowercase hex"));
  EXPECT_THAT(problemOf("app@sha256:" + std::string(65, 'a')), HasSubstr("64"));
  EXPECT_THAT(problemOf("app@" + std::string(64, 'a')), HasSubstr("algorithm:hex"));
  EXPECT_THAT(problemOf("app@"), HasSubstr("algorithm:hex"));
}

TEST(ParseImageRef, TagGrammar) {
  EXPECT_EQ(parseImageRef("app:_x.Y-1").tag, "_x.Y-1");
  EXPECT_EQ(parseImageRef("app:" + std::string(128, 't')).tag, std::string(128, 't'));
  EXPECT_THAT(problemOf("app:" + std::string(129, 't')), HasSubstr("1 to 128"));
  EXPECT_THAT(problemOf("app:.hidden"), HasSubstr("tag \".hidden\""));
  EXPECT_THAT(problemOf("app:-x"), HasSubstr("tag \"-x\""));
  EXPECT_THAT(problemOf("app:a+b"), HasSubstr("tag \"a+b\""));
  EXPECT_THAT(problemOf("app:"), HasSubstr("tag \"\""));
}

TEST(ParseImageRef, UppercaseRepositoryIsRejected) {
  EXPECT_EQ(problemOf("Nginx"),
            "invalid image reference \"Nginx\": the repository name must be lowercase");
  EXPECT_THAT(problemOf("ghcr.io/Acme/app"), HasSubstr("must be lowercase"));
  // The registry host and the tag may use uppercase letters.
  EXPECT_EQ(parseImageRef("Registry.Example.com/app:V1").registry, "Registry.Example.com");
  EXPECT_EQ(parseImageRef("Registry.Example.com/app:V1").tag, "V1");
}

TEST(ParseImageRef, RepositoryComponentSeparators) {
  EXPECT_EQ(parseImageRef("a/b.c_d__e---f").repository, "a/b.c_d__e---f");
  EXPECT_THAT(problemOf("a/b..c"), HasSubstr("repository component \"b..c\""));
  EXPECT_THAT(problemOf("a/b___c"), HasSubstr("repository component"));
  EXPECT_THAT(problemOf("a/-b"), HasSubstr("repository component \"-b\""));
  EXPECT_THAT(problemOf("a/b_"), HasSubstr("repository component"));
  EXPECT_THAT(problemOf("a//b"), HasSubstr("repository component \"\""));
  EXPECT_THAT(problemOf("ghcr.io/"), HasSubstr("repository name is empty"));
}

TEST(ParseImageRef, RegistryGrammar) {
  EXPECT_THAT(problemOf("my_host.io/app"), HasSubstr("registry \"my_host.io\""));
  EXPECT_THAT(problemOf("host:port/app"), HasSubstr("registry \"host:port\""));
  EXPECT_THAT(problemOf("-host.io/app"), HasSubstr("registry"));
  EXPECT_THAT(problemOf("host.io:/app"), HasSubstr("registry"));
}

TEST(ParseImageRef, NameLongerThan255IsRejected) {
  // docker.io/library/ is 18 characters; the limit applies to the normalized name.
  EXPECT_NO_THROW(parseImageRef(std::string(255 - 18, 'a')));
  EXPECT_THAT(problemOf(std::string(256 - 18, 'a')), HasSubstr("longer than 255"));
}

TEST(ParseImageRef, EmptyWhitespaceAndImageIdsAreRejected) {
  EXPECT_EQ(problemOf(""), "invalid image reference \"\": it is empty");
  EXPECT_THAT(problemOf(" nginx"), HasSubstr("\" nginx\""));
  EXPECT_THAT(problemOf("nginx "), HasSubstr("repository component \"nginx \""));
  EXPECT_THAT(problemOf(std::string(64, 'a')), HasSubstr("image ID"));
  EXPECT_THAT(problemOf(":latest"), HasSubstr("repository"));
}

TEST(ParseImageRef, MessagesQuoteTheInput) {
  EXPECT_THAT(problemOf("ghcr.io/Acme/App:1"), HasSubstr("\"ghcr.io/Acme/App:1\""));
}

}  // namespace
}  // namespace imagegate::image
