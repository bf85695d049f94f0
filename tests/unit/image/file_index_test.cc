#include "image/file_index.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"

namespace imagegate::image {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// A small fluent way to write a layer in tests: entries in tar order.
class Layer {
 public:
  Layer& file(std::string_view path, std::uint32_t mode = 0644,
              SecretKind secret = SecretKind::kNone) {
    b_.add(path, EntryType::kRegular, mode, 0, 0, 10, {}, secret);
    return *this;
  }
  Layer& dir(std::string_view path) {
    b_.add(path, EntryType::kDirectory, 0755, 0, 0, 0);
    return *this;
  }
  Layer& symlink(std::string_view path, std::string_view target) {
    b_.add(path, EntryType::kSymlink, 0777, 0, 0, 0, target);
    return *this;
  }
  Layer& hardlink(std::string_view path, std::string_view target) {
    b_.add(path, EntryType::kHardlink, 0755, 0, 0, 0, target);
    return *this;
  }
  Layer& whiteout(std::string_view path) {
    b_.add(path, EntryType::kWhiteout, 0, 0, 0, 0);
    return *this;
  }
  Layer& opaque(std::string_view dir) {
    b_.add(dir, EntryType::kOpaque, 0, 0, 0, 0);
    return *this;
  }
  Layer& passwd(std::string content) {
    b_.add("etc/passwd", EntryType::kRegular, 0644, 0, 0, content.size());
    b_.setPasswd(std::move(content));
    return *this;
  }
  std::shared_ptr<const LayerIndex> build() {
    return std::make_shared<const LayerIndex>(std::move(b_).build());
  }

 private:
  LayerIndexBuilder b_;
};

std::vector<std::string> pathsOf(const std::vector<MergedEntry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) out.emplace_back(e.entry.path);
  return out;
}

std::vector<std::string> allPaths(const MergedFilesystem& fs) { return pathsOf(fs.entries()); }

// --- normalizeLayerPath

TEST(NormalizeLayerPath, StripsLeadingSlashAndDotSlash) {
  EXPECT_EQ(normalizeLayerPath("/usr/bin/sh"), "usr/bin/sh");
  EXPECT_EQ(normalizeLayerPath("./usr/bin/"), "usr/bin");
  EXPECT_EQ(normalizeLayerPath("usr//bin/./sh"), "usr/bin/sh");
  EXPECT_EQ(normalizeLayerPath("./"), "");
  EXPECT_EQ(normalizeLayerPath("/"), "");
}

TEST(NormalizeLayerPath, DotDotNeverClimbsAboveTheRoot) {
  EXPECT_EQ(normalizeLayerPath("../../etc/passwd"), "etc/passwd");
  EXPECT_EQ(normalizeLayerPath("usr/../../../etc/shadow"), "etc/shadow");
  EXPECT_EQ(normalizeLayerPath("usr/lib/../bin/x"), "usr/bin/x");
}

// --- LayerIndex

TEST(LayerIndex, EntriesAreSortedAndFoundByPath) {
  auto index = Layer().file("usr/bin/b").dir("usr").file("usr/bin/a", 04755).build();
  ASSERT_EQ(index->size(), 3u);
  EXPECT_EQ(index->entry(0).path, "usr");
  EXPECT_EQ(index->entry(1).path, "usr/bin/a");
  const auto a = index->find("usr/bin/a");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->isSetuid());
  EXPECT_FALSE(index->find("usr/bin"));
}

TEST(LayerIndex, LaterMemberForTheSamePathReplacesTheEarlierOne) {
  LayerIndexBuilder b;
  b.add("x", EntryType::kRegular, 0644, 1, 1, 5);
  b.add("x", EntryType::kSymlink, 0777, 2, 2, 0, "y");
  const LayerIndex index = std::move(b).build();
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index.entry(0).type, EntryType::kSymlink);
  EXPECT_EQ(index.entry(0).linkTarget, "y");
}

TEST(LayerIndex, TenThousandCopiesOfOnePathKeepOneEntryAndItsBytesOnly) {
  LayerIndexBuilder b;
  const std::string path(200, 'p');
  for (int i = 0; i < 10000; ++i) b.add(path, EntryType::kRegular, 0644, 0, 0, i);
  const LayerIndex index = std::move(b).build();
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index.entry(0).size, 9999u);
  EXPECT_LT(index.memoryBytes(), 2000u);
}

TEST(LayerIndex, WhiteoutAndOpaqueMarkerCoexistWithContentOfTheSamePath) {
  auto index = Layer().dir("d").opaque("d").whiteout("d").build();
  EXPECT_EQ(index->size(), 3u);
  EXPECT_EQ(index->find("d")->type, EntryType::kDirectory);
}

TEST(LayerIndex, ModeBitsGiveSetuidSetgidAndWorldWritable) {
  LayerIndexBuilder b;
  b.add("a", EntryType::kRegular, 02755, 0, 0, 1);
  b.add("b", EntryType::kRegular, 0666, 0, 0, 1);
  b.add("c", EntryType::kSymlink, 0777, 0, 0, 0, "a");
  const LayerIndex index = std::move(b).build();
  EXPECT_TRUE(index.find("a")->isSetgid());
  EXPECT_FALSE(index.find("a")->isSetuid());
  EXPECT_TRUE(index.find("b")->isWorldWritable());
  EXPECT_FALSE(index.find("c")->isWorldWritable());
}

TEST(LayerIndex, MemoryPerEntryIsRecordPlusPathBytes) {
  LayerIndexBuilder b;
  for (int i = 0; i < 1000; ++i) {
    b.add("usr/share/doc/package-" + std::to_string(i) + "/copyright", EntryType::kRegular, 0644, 0,
          0, 100);
  }
  const LayerIndex index = std::move(b).build();
  EXPECT_LT(index.memoryBytes() / index.size(), 40u + 40u + 8u);
}

TEST(LayerIndex, SerializeRoundTripsEveryField) {
  LayerIndexBuilder b;
  b.add("etc/passwd", EntryType::kRegular, 0644, 0, 0, 30);
  b.add("bin/sh", EntryType::kSymlink, 0777, 0, 0, 0, "busybox");
  b.add("bin/ln", EntryType::kHardlink, 0755, 1, 2, 0, "bin/busybox");
  b.add("root/.ssh/id_rsa", EntryType::kRegular, 0600, 1000, 1000, 1675, {},
        SecretKind::kPrivateKey);
  b.add("dev/null", EntryType::kCharDevice, 0666, 0, 0, 0);
  b.add("gone", EntryType::kWhiteout, 0, 0, 0, 0);
  b.add("var", EntryType::kOpaque, 0, 0, 0, 0);
  b.setPasswd("root:x:0:0:root:/root:/bin/sh\n");
  b.setUncompressedBytes(123456789012ull);
  const LayerIndex index = std::move(b).build();

  const LayerIndex copy = LayerIndex::deserialize(index.serialize());
  ASSERT_EQ(copy.size(), index.size());
  for (std::size_t i = 0; i < index.size(); ++i) {
    const FileEntry a = index.entry(i);
    const FileEntry c = copy.entry(i);
    EXPECT_EQ(a.path, c.path);
    EXPECT_EQ(a.linkTarget, c.linkTarget);
    EXPECT_EQ(a.size, c.size);
    EXPECT_EQ(a.mode, c.mode);
    EXPECT_EQ(a.uid, c.uid);
    EXPECT_EQ(a.gid, c.gid);
    EXPECT_EQ(a.type, c.type);
    EXPECT_EQ(a.secret, c.secret);
  }
  EXPECT_EQ(copy.passwd(), index.passwd());
  EXPECT_FALSE(copy.group());
  EXPECT_EQ(copy.uncompressedBytes(), 123456789012ull);
  EXPECT_EQ(copy.serialize(), index.serialize());
}

TEST(LayerIndex, DeserializeRejectsGarbageWithAnError) {
  EXPECT_THROW(LayerIndex::deserialize(""), Error);
  EXPECT_THROW(LayerIndex::deserialize("not an index at all"), Error);
  std::mt19937 random(7);
  for (int i = 0; i < 200; ++i) {
    std::string junk(random() % 300, '\0');
    for (auto& c : junk) c = static_cast<char>(random());
    if (i % 2 == 0 && junk.size() >= 8) junk.replace(0, 8, std::string("IGLI\x01\0\0\0", 8));
    EXPECT_THROW(LayerIndex::deserialize(junk), Error);
  }
}

TEST(LayerIndex, DeserializeRejectsEveryTruncationAndCorruptedRecords) {
  auto index = Layer().dir("a").file("a/b").symlink("c", "a/b").build();
  const std::string data = index->serialize();
  for (std::size_t n = 0; n < data.size(); ++n) {
    EXPECT_THROW(LayerIndex::deserialize(data.substr(0, n)), Error) << n;
  }
  EXPECT_THROW(LayerIndex::deserialize(data + "x"), Error);
  // Flip every byte in turn: either a clean error or a valid index, never a crash.
  for (std::size_t i = 0; i < data.size(); ++i) {
    std::string bad = data;
    bad[i] = static_cast<char>(bad[i] ^ 0xff);
    try {
      const LayerIndex copy = LayerIndex::deserialize(bad);
      for (std::size_t e = 0; e < copy.size(); ++e) (void)copy.entry(e).path.size();
    } catch (const Error&) {
    }
  }
}

// --- secrets

TEST(SecretKind, PemPrivateKeyInKeyFilesAndAtTheStartOfAnyFile) {
  const std::string key =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n";
  EXPECT_EQ(secretKindFromContent("root/.ssh/id_ed25519", key), SecretKind::kPrivateKey);
  EXPECT_EQ(secretKindFromContent("srv/tls.pem", "-----BEGIN CERTIFICATE-----\nx\n" + key),
            SecretKind::kPrivateKey);
  EXPECT_EQ(secretKindFromContent("opt/app/signing", "-----BEGIN RSA PRIVATE KEY-----\n"),
            SecretKind::kPrivateKey);
  EXPECT_EQ(secretKindFromContent("srv/tls.pem", "-----BEGIN CERTIFICATE-----\n"),
            SecretKind::kNone);
  EXPECT_EQ(secretKindFromContent("usr/share/doc/x", "see\n-----BEGIN PRIVATE KEY-----\n"),
            SecretKind::kNone);
}

TEST(SecretKind, CredentialFilesCountOnlyWhenTheyHoldCredentials) {
  EXPECT_EQ(secretKindFromContent("root/.npmrc", "//registry.npmjs.org/:_authToken=abc\n"),
            SecretKind::kNpmCredentials);
  EXPECT_EQ(secretKindFromContent("root/.npmrc", "registry=https://r.example\n"),
            SecretKind::kNone);
  EXPECT_EQ(secretKindFromContent("home/a/.pypirc", "[pypi]\npassword = x\n"),
            SecretKind::kPypiCredentials);
  EXPECT_EQ(secretKindFromContent("root/.netrc", "machine h login u password p\n"),
            SecretKind::kNetrcCredentials);
  EXPECT_EQ(secretKindFromContent("root/.docker/config.json", R"({"auths":{"r":{"auth":"dTpw"}}})"),
            SecretKind::kDockerCredentials);
  EXPECT_EQ(secretKindFromContent("root/.docker/config.json", R"({"auths":{}})"),
            SecretKind::kNone);
  EXPECT_EQ(secretKindFromContent("root/.aws/credentials",
                                  "[default]\naws_access_key_id=A\naws_secret_access_key=B\n"),
            SecretKind::kAwsCredentials);
  EXPECT_EQ(secretKindFromContent(
                "app/sa.json", "{\n  \"type\" : \"service_account\",\n  \"private_key\": \"x\"}"),
            SecretKind::kGcpServiceAccount);
  EXPECT_EQ(secretKindFromContent("app/package.json", R"({"type": "module"})"), SecretKind::kNone);
}

TEST(SecretKind, DotEnvAndGitDirectoriesByName) {
  EXPECT_EQ(secretKindFromName("app/.env", EntryType::kRegular), SecretKind::kDotEnv);
  EXPECT_EQ(secretKindFromName("app/.env.production", EntryType::kRegular), SecretKind::kDotEnv);
  EXPECT_EQ(secretKindFromName("app/.env.example", EntryType::kRegular), SecretKind::kNone);
  EXPECT_EQ(secretKindFromName("src/.git", EntryType::kDirectory), SecretKind::kGitDirectory);
  EXPECT_EQ(secretKindFromName("src/.git/config", EntryType::kRegular), SecretKind::kGitDirectory);
  EXPECT_EQ(secretKindFromName("src/.git", EntryType::kRegular), SecretKind::kNone);
  EXPECT_TRUE(isSecretCandidateName("root/.ssh/id_rsa"));
  EXPECT_TRUE(isSecretCandidateName("root/.aws/credentials"));
  EXPECT_FALSE(isSecretCandidateName("usr/bin/ls"));
}

// --- path globs

TEST(PathGlobMatch, StarStaysInOneComponentAndDoubleStarSpansAny) {
  EXPECT_TRUE(pathGlobMatch("/usr/bin/*", "usr/bin/curl"));
  EXPECT_FALSE(pathGlobMatch("/usr/bin/*", "usr/bin/x/curl"));
  EXPECT_TRUE(pathGlobMatch("**/*.map", "app/static/js/main.js.map"));
  EXPECT_TRUE(pathGlobMatch("**/*.map", "main.js.map"));
  EXPECT_TRUE(pathGlobMatch("/root/.ssh/**", "root/.ssh/id_rsa"));
  EXPECT_TRUE(pathGlobMatch("/root/.ssh/**", "root/.ssh/a/b"));
  EXPECT_FALSE(pathGlobMatch("/root/.ssh/**/x", "root/.sshx/x"));
  EXPECT_TRUE(pathGlobMatch("usr/bin/python3.?", "usr/bin/python3.9"));
  EXPECT_TRUE(pathGlobMatch("usr/bin/[gc]cc", "usr/bin/gcc"));
  EXPECT_TRUE(pathGlobMatch("usr/**/gcc", "usr/bin/gcc"));
  EXPECT_FALSE(pathGlobMatch("usr/bin", "usr/bin/gcc"));
}

// --- MergedFilesystem

TEST(MergedFilesystem, LaterLayerOverwritesAndRemembersTheLayer) {
  auto l0 = Layer().dir("etc").file("etc/os-release").file("etc/hosts").build();
  auto l1 = Layer().file("etc/hosts", 0600).build();
  const MergedFilesystem fs({l0, l1});
  EXPECT_EQ(fs.find("/etc/hosts")->layer, 1u);
  EXPECT_EQ(fs.find("/etc/hosts")->entry.mode, 0600u);
  EXPECT_EQ(fs.find("etc/os-release")->layer, 0u);
  EXPECT_THAT(pathsOf(fs.entriesFromLayer(1)), ElementsAre("etc/hosts"));
}

TEST(MergedFilesystem, WhiteoutDeletesTheFileOrTheWholeDirectoryBelow) {
  auto l0 = Layer()
                .dir("bin")
                .file("bin/sh")
                .dir("opt")
                .dir("opt/app")
                .file("opt/app/x")
                .file("opt/apple")
                .build();
  auto l1 = Layer().whiteout("bin/sh").whiteout("opt/app").build();
  const MergedFilesystem fs({l0, l1});
  EXPECT_THAT(allPaths(fs), ElementsAre("bin", "opt", "opt/apple"));
  // The earlier layer alone still has the shell.
  EXPECT_TRUE(MergedFilesystem({l0}).find("bin/sh"));
}

TEST(MergedFilesystem, OpaqueDirectoryHidesLowerChildrenButKeepsItsOwnLayers) {
  auto l0 = Layer().dir("var").dir("var/cache").file("var/cache/a").file("var/cache/b").build();
  auto l1 = Layer().dir("var/cache").opaque("var/cache").file("var/cache/c").build();
  const MergedFilesystem fs({l0, l1});
  EXPECT_THAT(allPaths(fs), ElementsAre("var", "var/cache", "var/cache/c"));
}

TEST(MergedFilesystem, FileReplacingADirectoryRemovesItsChildren) {
  auto l0 = Layer().dir("d").file("d/a").file("d.txt").build();
  auto l1 = Layer().symlink("d", "elsewhere").build();
  const MergedFilesystem fs({l0, l1});
  EXPECT_THAT(allPaths(fs), ElementsAre("d", "d.txt"));
}

TEST(MergedFilesystem, HiddenBySaysWhichLaterLayerHidesWhatAnEarlierOneWrote) {
  auto l0 = Layer()
                .dir("app")
                .file("app/id_rsa")
                .file("app/.env")
                .dir("app/src")
                .dir("app/src/.git")
                .file("app/kept")
                .dir("cache")
                .file("cache/token")
                .build();
  auto l1 = Layer().whiteout("app/id_rsa").dir("app/src/.git").opaque("cache").build();
  auto l2 = Layer().file("app/.env").symlink("app/src", "/elsewhere").build();
  const MergedFilesystem fs({l0, l1, l2});
  auto entry = [&](std::string_view path) { return *fs.layerIndex(0).find(path); };
  EXPECT_EQ(fs.hiddenBy(0, entry("app/id_rsa")), 1u);   // whiteout of the file
  EXPECT_EQ(fs.hiddenBy(0, entry("cache/token")), 1u);  // opaque directory above it
  EXPECT_EQ(fs.hiddenBy(0, entry("app/.env")), 2u);     // replaced by a newer file
  // A directory merges with a later directory; a symlink replacing its parent hides it.
  EXPECT_EQ(fs.hiddenBy(0, entry("app/src/.git")), 2u);
  EXPECT_EQ(fs.hiddenBy(0, entry("app/kept")), std::nullopt);
  EXPECT_EQ(fs.hiddenBy(0, entry("cache")), std::nullopt);  // opaque keeps the directory
  EXPECT_EQ(fs.hiddenBy(2, *fs.layerIndex(2).find("app/.env")), std::nullopt);
}

TEST(MergedFilesystem, ResolvesAbsoluteRelativeAndMidPathSymlinks) {
  auto l0 = Layer()
                .dir("usr")
                .dir("usr/bin")
                .file("usr/bin/bash", 0755)
                .symlink("bin", "usr/bin")
                .symlink("usr/bin/sh", "bash")
                .symlink("usr/bin/rbash", "/bin/bash")
                .symlink("usr/bin/up", "../bin/bash")
                .build();
  const MergedFilesystem fs({l0});
  EXPECT_EQ(fs.resolve("/bin/sh").path, "usr/bin/bash");
  EXPECT_EQ(fs.resolve("/usr/bin/rbash").path, "usr/bin/bash");
  EXPECT_EQ(fs.resolve("/usr/bin/up").path, "usr/bin/bash");
  EXPECT_EQ(fs.resolve("/bin/../bin/bash").path, "usr/bin/bash");
  EXPECT_EQ(fs.resolve("/bin/sh", false).path, "usr/bin/sh");
  EXPECT_EQ(fs.resolve("/bin/sh").status, MergedFilesystem::Resolution::Status::kFound);
  EXPECT_EQ(fs.resolve("/bin/zsh").status, MergedFilesystem::Resolution::Status::kNotFound);
  EXPECT_EQ(fs.resolve("/bin/bash/x").status, MergedFilesystem::Resolution::Status::kNotFound);
}

TEST(MergedFilesystem, SymlinkLoopStopsAtFortyLinks) {
  auto l0 = Layer().symlink("a", "b").symlink("b", "/a").symlink("self", "self/x").build();
  const MergedFilesystem fs({l0});
  const auto r = fs.resolve("a");
  EXPECT_EQ(r.status, MergedFilesystem::Resolution::Status::kTooManyLinks);
  EXPECT_TRUE(r.loop);
  EXPECT_EQ(fs.resolve("self").status, MergedFilesystem::Resolution::Status::kTooManyLinks);
  EXPECT_TRUE(fs.aliases("a").empty());
}

TEST(MergedFilesystem, ChainOfFortyOneLinksIsTooDeepWithoutALoop) {
  Layer layer;
  layer.file("target");
  for (int i = 0; i <= 40; ++i) {
    layer.symlink("l" + std::to_string(i), i == 0 ? "target" : "l" + std::to_string(i - 1));
  }
  const MergedFilesystem fs({layer.build()});
  EXPECT_EQ(fs.resolve("l39").status, MergedFilesystem::Resolution::Status::kFound);
  const auto r = fs.resolve("l40");
  EXPECT_EQ(r.status, MergedFilesystem::Resolution::Status::kTooManyLinks);
  EXPECT_FALSE(r.loop);
}

TEST(MergedFilesystem, BusyboxAppletSymlinksAreAliasesOfBusybox) {
  auto l0 = Layer()
                .dir("bin")
                .file("bin/busybox", 0755)
                .symlink("bin/sh", "busybox")
                .symlink("bin/ls", "/bin/busybox")
                .hardlink("bin/ash", "bin/busybox")
                .build();
  const MergedFilesystem fs({l0});
  EXPECT_THAT(fs.aliases("/bin/sh"), ElementsAre("bin/ash", "bin/busybox", "bin/ls", "bin/sh"));
  const auto shells = fs.findReachable("**/bin/sh");
  ASSERT_EQ(shells.size(), 1u);
  EXPECT_EQ(shells[0].name, "bin/sh");
  EXPECT_EQ(shells[0].file.entry.path, "bin/busybox");
}

TEST(MergedFilesystem, MergedUsrFindsUsrBinBashAsBinBash) {
  auto l0 = Layer()
                .symlink("bin", "usr/bin")
                .symlink("sbin", "usr/sbin")
                .dir("usr")
                .dir("usr/bin")
                .dir("usr/sbin")
                .file("usr/bin/bash", 0755)
                .symlink("usr/bin/sh", "bash")
                .build();
  const MergedFilesystem fs({l0});
  EXPECT_THAT(fs.aliases("usr/bin/bash"),
              ElementsAre("bin/bash", "bin/sh", "usr/bin/bash", "usr/bin/sh"));
  const auto found = fs.findReachable("/bin/bash");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].file.entry.path, "usr/bin/bash");
  EXPECT_EQ(fs.findReachable("/bin/sh").size(), 1u);
}

TEST(MergedFilesystem, DirectorySymlinkCycleDoesNotMultiplyNamesForever) {
  auto l0 = Layer().dir("usr").dir("usr/lib").file("usr/lib/f").symlink("usr/lib/up", "..").build();
  const MergedFilesystem fs({l0});
  const auto names = fs.aliases("usr/lib/f");
  EXPECT_LE(names.size(), 3u);
  EXPECT_THAT(names, ::testing::Contains("usr/lib/f"));
}

TEST(MergedFilesystem, HardlinkToAnEarlierLayerIsAccepted) {
  auto l0 = Layer().file("usr/bin/perl").build();
  auto l1 = Layer().hardlink("usr/bin/perl5", "usr/bin/perl").build();
  const MergedFilesystem fs({l0, l1});
  EXPECT_THAT(fs.aliases("usr/bin/perl5"), UnorderedElementsAre("usr/bin/perl", "usr/bin/perl5"));
}

TEST(MergedFilesystem, HardlinkToAMissingPathIsAnErrorNamingLayerAndPaths) {
  auto l0 = Layer().file("a").build();
  auto l1 = Layer().whiteout("a").hardlink("b", "a").build();
  try {
    MergedFilesystem fs({l0, l1});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("layer 2/2: hardlink /b points to /a"));
  }
  EXPECT_THROW(MergedFilesystem({Layer().hardlink("x", "nowhere").build()}), Error);
}

TEST(MergedFilesystem, GlobAndFinalLayerView) {
  auto l0 = Layer().dir("app").file("app/main.js").file("app/main.js.map").build();
  auto l1 = Layer().file("app/extra.js.map").file("usr/bin/gcc", 0755).build();
  const MergedFilesystem fs({l0, l1});
  EXPECT_THAT(pathsOf(fs.glob("**/*.map")), ElementsAre("app/extra.js.map", "app/main.js.map"));
  EXPECT_THAT(pathsOf(fs.entriesFromLayer(fs.layerCount() - 1)),
              ElementsAre("app/extra.js.map", "usr/bin/gcc"));
}

TEST(MergedFilesystem, PasswdComesFromTheLayerThatLastWroteIt) {
  auto l0 = Layer().dir("etc").passwd("root:x:0:0::/root:/bin/sh\n").build();
  auto l1 =
      Layer().passwd("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/sbin/nologin\n").build();
  EXPECT_THAT(*MergedFilesystem({l0, l1}).passwd(), HasSubstr("app:x:1000"));
  EXPECT_THAT(*MergedFilesystem({l0}).passwd(), ::testing::Not(HasSubstr("app")));
  auto l2 = Layer().whiteout("etc/passwd").build();
  EXPECT_FALSE(MergedFilesystem({l0, l1, l2}).passwd());
  EXPECT_FALSE(MergedFilesystem({l0}).group());
}

}  // namespace
}  // namespace imagegate::image
