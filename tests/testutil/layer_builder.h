#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <zstd.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// Layer blobs for tests, made with the libraries a registry's pushers use: libarchive writes the
// tar (pax or GNU) and gzip (through zlib, an encoder independent of the ISA-L decoder under
// test), libzstd compresses zstd.
namespace imagegate::testutil {

class TarBuilder {
 public:
  enum class Format { kPax, kGnu, kUstar };

  explicit TarBuilder(Format format = Format::kPax) : format_(format) {}

  TarBuilder& file(std::string path, std::string content, unsigned mode = 0644,
                   std::int64_t uid = 0, std::int64_t gid = 0) {
    return add({std::move(path), AE_IFREG, mode, uid, gid, std::move(content), "", ""});
  }
  TarBuilder& dir(std::string path, unsigned mode = 0755, std::int64_t uid = 0) {
    return add({std::move(path), AE_IFDIR, mode, uid, 0, "", "", ""});
  }
  TarBuilder& symlink(std::string path, std::string target) {
    return add({std::move(path), AE_IFLNK, 0777, 0, 0, "", std::move(target), ""});
  }
  TarBuilder& hardlink(std::string path, std::string target) {
    return add({std::move(path), AE_IFREG, 0644, 0, 0, "", "", std::move(target)});
  }
  TarBuilder& charDevice(std::string path) {
    return add({std::move(path), AE_IFCHR, 0666, 0, 0, "", "", ""});
  }
  TarBuilder& blockDevice(std::string path) {
    return add({std::move(path), AE_IFBLK, 0660, 0, 0, "", "", ""});
  }
  TarBuilder& fifo(std::string path) {
    return add({std::move(path), AE_IFIFO, 0644, 0, 0, "", "", ""});
  }
  /// `.wh.NAME` in DIR, as an empty regular file (how Docker and umoci write them).
  TarBuilder& whiteout(const std::string& dir, const std::string& name) {
    return file(dir.empty() ? ".wh." + name : dir + "/.wh." + name, "");
  }
  TarBuilder& opaque(const std::string& dir) { return file(dir + "/.wh..wh..opq", ""); }

  std::string tar() const {
    std::string out;
    struct archive* a = archive_write_new();
    switch (format_) {
      case Format::kPax:
        archive_write_set_format_pax_restricted(a);
        break;
      case Format::kGnu:
        archive_write_set_format_gnutar(a);
        break;
      case Format::kUstar:
        archive_write_set_format_ustar(a);
        break;
    }
    archive_write_add_filter_none(a);
    archive_write_set_bytes_in_last_block(a, 1);
    check(a, archive_write_open(a, &out, nullptr, &appendCallback, nullptr));
    for (const Member& m : members_) {
      struct archive_entry* e = archive_entry_new();
      archive_entry_set_pathname(e, m.path.c_str());
      archive_entry_set_filetype(e, m.type);
      archive_entry_set_perm(e, m.mode);
      archive_entry_set_uid(e, m.uid);
      archive_entry_set_gid(e, m.gid);
      archive_entry_set_mtime(e, 1700000000, 0);
      if (!m.symlink.empty()) archive_entry_set_symlink(e, m.symlink.c_str());
      if (!m.hardlink.empty()) {
        archive_entry_set_hardlink(e, m.hardlink.c_str());
        archive_entry_set_size(e, 0);
      } else {
        archive_entry_set_size(e, static_cast<la_int64_t>(m.content.size()));
      }
      if (m.type == AE_IFCHR || m.type == AE_IFBLK) archive_entry_set_rdev(e, 0x0103);
      check(a, archive_write_header(a, e));
      if (!m.content.empty()) {
        archive_write_data(a, m.content.data(), m.content.size());
      }
      archive_entry_free(e);
    }
    check(a, archive_write_close(a));
    archive_write_free(a);
    return out;
  }

 private:
  struct Member {
    std::string path;
    unsigned type;
    unsigned mode;
    std::int64_t uid;
    std::int64_t gid;
    std::string content;
    std::string symlink;
    std::string hardlink;
  };
  TarBuilder& add(Member m) {
    members_.push_back(std::move(m));
    return *this;
  }
  static la_ssize_t appendCallback(struct archive*, void* out, const void* data, size_t n) {
    static_cast<std::string*>(out)->append(static_cast<const char*>(data), n);
    return static_cast<la_ssize_t>(n);
  }
  static void check(struct archive* a, int rc) {
    if (rc < ARCHIVE_WARN) {
      throw std::runtime_error(std::string("libarchive: ") + archive_error_string(a));
    }
  }

  Format format_;
  std::vector<Member> members_;
};

/// One gzip member holding `data` (zlib through libarchive's raw format).
inline std::string gzipCompress(std::string_view data, int level = 6) {
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_set_format_raw(a);
  archive_write_add_filter_gzip(a);
  archive_write_set_filter_option(a, "gzip", "compression-level", std::to_string(level).c_str());
  // No time in the gzip header: the same data compresses to the same bytes (and digest) whenever
  // a test builds it, also across a change of second.
  archive_write_set_filter_option(a, "gzip", "timestamp", nullptr);
  archive_write_set_bytes_per_block(a, 0);
  archive_write_open(
      a, &out, nullptr,
      [](struct archive*, void* o, const void* d, size_t n) -> la_ssize_t {
        static_cast<std::string*>(o)->append(static_cast<const char*>(d), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  struct archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, "data");
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
  archive_write_header(a, e);
  // libarchive's raw writer takes the data in bounded pieces.
  for (std::size_t off = 0; off < data.size(); off += 1 << 20) {
    const auto piece = data.substr(off, 1 << 20);
    archive_write_data(a, piece.data(), piece.size());
  }
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

/// One zstd frame holding `data`.
inline std::string zstdCompress(std::string_view data, int level = 3) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  const std::size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  if (ZSTD_isError(n)) throw std::runtime_error(ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

}  // namespace imagegate::testutil
