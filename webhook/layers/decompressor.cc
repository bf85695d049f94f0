#include "layers/decompressor.h"

#include <isa-l/igzip_lib.h>
#include <zstd.h>

#include <string>
#include <vector>

#include "common/error.h"

namespace imagegate::layers {

namespace {

constexpr std::size_t kOutputBytes = 256 * 1024;

class IdentityDecompressor final : public Decompressor {
 public:
  void write(std::string_view input, const Sink& sink) override {
    if (!input.empty()) sink(input);
  }
  void finish() override {}
};

std::string isalError(int code) {
  switch (code) {
    case ISAL_INVALID_BLOCK:
      return "invalid deflate block";
    case ISAL_INVALID_SYMBOL:
      return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK:
      return "invalid deflate distance";
    case ISAL_INVALID_WRAPPER:
      return "not a gzip header";
    case ISAL_UNSUPPORTED_METHOD:
      return "unsupported gzip compression method";
    case ISAL_INCORRECT_CHECKSUM:
      return "gzip CRC mismatch";
    case ISAL_NEED_DICT:
      return "stream needs a preset dictionary";
    default:
      return "ISA-L error " + std::to_string(code);
  }
}

// gzip through ISA-L's streaming inflate with gzip framing (header parsed, CRC-32 and length
// checked). A blob may hold several gzip members back to back (pigz, `cat a.gz b.gz`): when one
// ends and input remains, the state is reset for the next member.
class GzipDecompressor final : public Decompressor {
 public:
  GzipDecompressor() : state_(std::make_unique<inflate_state>()), out_(kOutputBytes) {
    isal_inflate_init(state_.get());
    state_->crc_flag = ISAL_GZIP;
  }

  void write(std::string_view input, const Sink& sink) override {
    // avail_in is 32-bit.
    constexpr std::size_t kSlice = std::size_t{1} << 30;
    while (input.size() > kSlice) {
      writeSlice(input.substr(0, kSlice), sink);
      input.remove_prefix(kSlice);
    }
    writeSlice(input, sink);
  }

  void writeSlice(std::string_view input, const Sink& sink) {
    state_->next_in = reinterpret_cast<std::uint8_t*>(const_cast<char*>(input.data()));
    state_->avail_in = static_cast<std::uint32_t>(input.size());
    if (!input.empty()) sawInput_ = true;
    while (true) {
      if (state_->block_state == ISAL_BLOCK_FINISH) {
        if (state_->avail_in == 0) return;
        // Another member follows; keep the unread input across the reset.
        std::uint8_t* next = state_->next_in;
        const std::uint32_t avail = state_->avail_in;
        isal_inflate_reset(state_.get());
        state_->crc_flag = ISAL_GZIP;
        state_->next_in = next;
        state_->avail_in = avail;
        ++members_;
      }
      state_->next_out = out_.data();
      state_->avail_out = static_cast<std::uint32_t>(out_.size());
      const int rc = isal_inflate(state_.get());
      if (rc < 0) {
        throw Error("gzip data is corrupt (" + isalError(rc) +
                    (members_ > 0 ? " in member " + std::to_string(members_ + 1) : "") + ")");
      }
      const std::size_t produced = out_.size() - state_->avail_out;
      if (produced > 0)
        sink(std::string_view(reinterpret_cast<const char*>(out_.data()), produced));
      if (state_->block_state != ISAL_BLOCK_FINISH && state_->avail_in == 0 &&
          produced < out_.size()) {
        return;  // needs more input
      }
    }
  }

  void finish() override {
    if (!sawInput_) throw Error("gzip stream is empty");
    if (state_->block_state != ISAL_BLOCK_FINISH) {
      throw Error("gzip stream is truncated (it ends inside a compressed member)");
    }
  }

 private:
  std::unique_ptr<inflate_state> state_;  // ~ 50 KB: not on the stack
  std::vector<std::uint8_t> out_;
  bool sawInput_ = false;
  std::size_t members_ = 0;
};

class ZstdDecompressor final : public Decompressor {
 public:
  explicit ZstdDecompressor(const DecompressorOptions& options)
      : ctx_(ZSTD_createDCtx()), out_(ZSTD_DStreamOutSize()) {
    if (ctx_ == nullptr) throw Error("cannot allocate a zstd decoder (out of memory)");
    ZSTD_DCtx_setParameter(ctx_, ZSTD_d_windowLogMax, options.maxZstdWindowLog);
  }
  ~ZstdDecompressor() override { ZSTD_freeDCtx(ctx_); }
  ZstdDecompressor(const ZstdDecompressor&) = delete;
  ZstdDecompressor& operator=(const ZstdDecompressor&) = delete;

  void write(std::string_view input, const Sink& sink) override {
    if (!input.empty()) sawInput_ = true;
    ZSTD_inBuffer in{input.data(), input.size(), 0};
    while (true) {
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      const std::size_t rc = ZSTD_decompressStream(ctx_, &out, &in);
      if (ZSTD_isError(rc)) {
        throw Error(std::string("zstd data is corrupt or unsupported (") + ZSTD_getErrorName(rc) +
                    ")");
      }
      pending_ = rc;
      if (out.pos > 0) sink(std::string_view(out_.data(), out.pos));
      if (in.pos == in.size && out.pos < out.size) return;
    }
  }

  void finish() override {
    if (!sawInput_) throw Error("zstd stream is empty");
    // 0 = the last frame was decoded and flushed completely.
    if (pending_ != 0) throw Error("zstd stream is truncated (it ends inside a frame)");
  }

 private:
  ZSTD_DCtx* ctx_;
  std::vector<char> out_;
  std::size_t pending_ = 0;
  bool sawInput_ = false;
};

}  // namespace

std::unique_ptr<Decompressor> makeDecompressor(Compression compression,
                                               const DecompressorOptions& options) {
  switch (compression) {
    case Compression::kGzip:
      return std::make_unique<GzipDecompressor>();
    case Compression::kZstd:
      return std::make_unique<ZstdDecompressor>(options);
    case Compression::kNone:
      break;
  }
  return std::make_unique<IdentityDecompressor>();
}

}  // namespace imagegate::layers
