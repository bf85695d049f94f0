#include "layers/decompressor.h"

#include <isa-l/igzip_lib.h>
#include <zstd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/error.h"

namespace imagegate::layers {

namespace {

constexpr std::size_t kOutputBytes = 512 * 1024;

// No compression: the input is the output, handed out in place in bounded pieces.
class IdentityDecompressor final : public Decompressor {
 public:
  void setInput(std::string_view input) override { input_ = input; }
  std::string_view next() override {
    const std::string_view piece = input_.substr(0, kOutputBytes);
    input_.remove_prefix(piece.size());
    return piece;
  }
  void finish() override {}

 private:
  std::string_view input_;
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

  void setInput(std::string_view input) override {
    input_ = input;
    if (!input.empty()) sawInput_ = true;
    feedSlice();
  }

  std::string_view next() override {
    while (true) {
      if (state_->avail_in == 0 && !input_.empty()) feedSlice();
      if (state_->block_state == ISAL_BLOCK_FINISH) {
        if (state_->avail_in == 0) return {};
        // Another member follows; keep the unread input across the reset.
        std::uint8_t* nextIn = state_->next_in;
        const std::uint32_t availIn = state_->avail_in;
        isal_inflate_reset(state_.get());
        state_->crc_flag = ISAL_GZIP;
        state_->next_in = nextIn;
        state_->avail_in = availIn;
        ++members_;
      }
      const std::uint32_t availBefore = state_->avail_in;
      state_->next_out = out_.data();
      state_->avail_out = static_cast<std::uint32_t>(out_.size());
      const int rc = isal_inflate(state_.get());
      if (rc < 0) {
        throw Error("gzip data is corrupt (" + isalError(rc) +
                    (members_ > 0 ? " in member " + std::to_string(members_ + 1) : "") + ")");
      }
      const std::size_t produced = out_.size() - state_->avail_out;
      if (produced > 0) return {reinterpret_cast<const char*>(out_.data()), produced};
      if (state_->block_state == ISAL_BLOCK_FINISH) continue;
      // Nothing out: all input used up (ISA-L keeps partial headers and bits in its own state),
      // or input left that it cannot use, which only corrupt data does.
      if (state_->avail_in == 0 && input_.empty()) return {};
      if (state_->avail_in == availBefore) throw Error("gzip data is corrupt (no progress)");
    }
  }

  void finish() override {
    if (!sawInput_) throw Error("gzip stream is empty");
    if (state_->block_state != ISAL_BLOCK_FINISH) {
      throw Error("gzip stream is truncated (it ends inside a compressed member)");
    }
  }

 private:
  // avail_in is 32-bit: long inputs go in slices.
  void feedSlice() {
    constexpr std::size_t kSlice = std::size_t{1} << 30;
    const std::string_view slice = input_.substr(0, kSlice);
    input_.remove_prefix(slice.size());
    state_->next_in = reinterpret_cast<std::uint8_t*>(const_cast<char*>(slice.data()));
    state_->avail_in = static_cast<std::uint32_t>(slice.size());
  }

  std::unique_ptr<inflate_state> state_;  // ~ 50 KB: not on the stack
  std::vector<std::uint8_t> out_;
  std::string_view input_;  // what is not yet handed to ISA-L
  bool sawInput_ = false;
  std::size_t members_ = 0;
};

class ZstdDecompressor final : public Decompressor {
 public:
  explicit ZstdDecompressor(const DecompressorOptions& options)
      : ctx_(ZSTD_createDCtx()), out_(std::max<std::size_t>(ZSTD_DStreamOutSize(), kOutputBytes)) {
    if (ctx_ == nullptr) throw Error("cannot allocate a zstd decoder (out of memory)");
    ZSTD_DCtx_setParameter(ctx_, ZSTD_d_windowLogMax, options.maxZstdWindowLog);
  }
  ~ZstdDecompressor() override { ZSTD_freeDCtx(ctx_); }
  ZstdDecompressor(const ZstdDecompressor&) = delete;
  ZstdDecompressor& operator=(const ZstdDecompressor&) = delete;

  void setInput(std::string_view input) override {
    if (!input.empty()) sawInput_ = true;
    in_ = ZSTD_inBuffer{input.data(), input.size(), 0};
  }

  std::string_view next() override {
    while (true) {
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      const std::size_t posBefore = in_.pos;
      const std::size_t rc = ZSTD_decompressStream(ctx_, &out, &in_);
      if (ZSTD_isError(rc)) {
        throw Error(std::string("zstd data is corrupt or unsupported (") + ZSTD_getErrorName(rc) +
                    ")");
      }
      // A call without input after a frame's end returns the next frame's header size: only
      // calls that did something say where the stream stands.
      if (out.pos > 0 || in_.pos != posBefore) pending_ = rc;
      if (out.pos > 0) return {out_.data(), out.pos};
      if (in_.pos == in_.size) return {};
      if (in_.pos == posBefore) throw Error("zstd data is corrupt (no progress)");
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
  ZSTD_inBuffer in_{nullptr, 0, 0};
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
