#include "admission/skippable_input.h"

#include <cstdint>
#include <optional>
#include <utility>

namespace imagegate::admission {
namespace {

// What the parser reads in place of a skipped value: the key's separator, then null, or an empty
// string where only a string was to be skipped (the decoder checks that the value is one).
constexpr std::string_view kNullReplacement = ":null";
constexpr std::string_view kStringReplacement = ":\"\"";
// Longer numbers could overflow a double, which nlohmann reports as an error: leave them to it.
constexpr std::size_t kMaxNumberLength = 32;

bool isWhitespace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

bool isDigit(char c) { return c >= '0' && c <= '9'; }

/// Printable ASCII other than '"' and '\\' stands for itself inside a JSON string.
bool isPlainStringByte(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte >= 0x20 && byte < 0x80 && c != '"' && c != '\\';
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Moves a forward scan over one JSON token at a time; every method returns false (and may leave
/// the position anywhere) when the text is not what it accepts.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  const char* position() const { return p_; }
  bool atEnd() const { return p_ == end_; }
  char peek() const { return *p_; }
  void advance() { ++p_; }

  void skipWhitespace() {
    while (p_ != end_ && isWhitespace(*p_)) ++p_;
  }

  bool consume(char expected) {
    if (p_ == end_ || *p_ != expected) return false;
    ++p_;
    return true;
  }

  bool literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - p_) < word.size()) return false;
    if (std::string_view(p_, word.size()) != word) return false;
    p_ += word.size();
    return true;
  }

  /// A string of printable ASCII and the escapes nlohmann accepts without further checks (a \u
  /// escape of a surrogate must pair up: left to nlohmann).
  bool string() {
    if (!consume('"')) return false;
    while (true) {
      plainBytes();
      if (consume('"')) return true;
      if (p_ == end_ || *p_ != '\\' || !escape()) return false;
    }
  }

  /// A string of printable ASCII without escapes, whose text is therefore its value.
  std::optional<std::string_view> plainString() {
    if (!consume('"')) return std::nullopt;
    const char* text = p_;
    plainBytes();
    const auto length = static_cast<std::size_t>(p_ - text);
    if (!consume('"')) return std::nullopt;
    return std::string_view(text, length);
  }

  /// A number without an exponent: -?(0|[1-9][0-9]*)(.[0-9]+)?
  bool number() {
    const char* start = p_;
    consume('-');
    if (p_ == end_ || !isDigit(*p_)) return false;
    if (*p_ == '0') {
      ++p_;
    } else {
      digits();
    }
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      if (p_ == end_ || !isDigit(*p_)) return false;
      digits();
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) return false;
    return static_cast<std::size_t>(p_ - start) <= kMaxNumberLength;
  }

 private:
  void digits() {
    while (p_ != end_ && isDigit(*p_)) ++p_;
  }

  void plainBytes() {
    while (p_ != end_ && isPlainStringByte(*p_)) ++p_;
  }

  bool escape() {
    if (end_ - p_ < 2) return false;
    switch (p_[1]) {
      case '"':
      case '\\':
      case '/':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        p_ += 2;
        return true;
      case 'u':
        return unicodeEscape();
      default:
        return false;
    }
  }

  bool unicodeEscape() {
    if (end_ - p_ < 6) return false;
    std::uint32_t code = 0;
    for (int i = 2; i < 6; ++i) {
      const int digit = hexValue(p_[i]);
      if (digit < 0) return false;
      code = code * 16 + static_cast<std::uint32_t>(digit);
    }
    if (code >= 0xD800 && code <= 0xDFFF) return false;
    p_ += 6;
    return true;
  }

  const char* p_;
  const char* end_;
};

}  // namespace

std::optional<ScannedValue> scanJsonValue(std::string_view text, std::size_t maxDepth,
                                          std::size_t maxValues) {
  Scanner scan(text);
  std::string open;  // The containers around the position, innermost last: '{' or '['.
  std::size_t values = 0;
  const bool isString = !text.empty() && text.front() == '"';
  enum class Expect { kValue, kKey, kAfterValue } expect = Expect::kValue;
  for (;;) {
    switch (expect) {
      case Expect::kValue: {
        if (++values > maxValues || scan.atEnd()) return std::nullopt;
        const char c = scan.peek();
        if (c == '{' || c == '[') {
          if (open.size() >= maxDepth) return std::nullopt;
          open.push_back(c);
          scan.advance();
          scan.skipWhitespace();
          if (scan.consume(c == '{' ? '}' : ']')) {
            open.pop_back();
            expect = Expect::kAfterValue;
          } else {
            expect = c == '{' ? Expect::kKey : Expect::kValue;
          }
          continue;
        }
        const bool scanned = c == '"'   ? scan.string()
                             : c == 't' ? scan.literal("true")
                             : c == 'f' ? scan.literal("false")
                             : c == 'n' ? scan.literal("null")
                                        : scan.number();
        if (!scanned) return std::nullopt;
        expect = Expect::kAfterValue;
        continue;
      }
      case Expect::kKey:
        if (!scan.string()) return std::nullopt;
        scan.skipWhitespace();
        if (!scan.consume(':')) return std::nullopt;
        scan.skipWhitespace();
        expect = Expect::kValue;
        continue;
      case Expect::kAfterValue:
        if (open.empty()) {
          return ScannedValue{static_cast<std::size_t>(scan.position() - text.data()), values,
                              isString};
        }
        scan.skipWhitespace();
        if (scan.consume(',')) {
          scan.skipWhitespace();
          expect = open.back() == '{' ? Expect::kKey : Expect::kValue;
        } else if (scan.consume(open.back() == '{' ? '}' : ']')) {
          open.pop_back();
        } else {
          return std::nullopt;
        }
        continue;
    }
  }
}

SkippableInput::SkippableInput(std::string_view text)
    : position_(text.data()), end_(text.data() + text.size()), textEnd_(end_) {}

void SkippableInput::skipNextValue(const SkipBudget& budget, bool onlyString) {
  if (resume_ != nullptr) return;  // Only ever asked after a key, which is never replaced.
  pending_ = onlyString ? Pending::kSkipString : Pending::kSkip;
  budget_ = budget;
}

void SkippableInput::captureNextString() {
  if (resume_ != nullptr) return;
  pending_ = Pending::kCapture;
}

const char* SkippableInput::valueStart() const {
  Scanner scan(std::string_view(position_, static_cast<std::size_t>(end_ - position_)));
  scan.skipWhitespace();
  if (!scan.consume(':')) return nullptr;
  scan.skipWhitespace();
  return scan.position();
}

void SkippableInput::resolveSkip() {
  const Pending pending = std::exchange(pending_, Pending::kNothing);
  const char* start = valueStart();
  if (start == nullptr) return;
  if (pending == Pending::kCapture) {
    resolveCapture(start);
    return;
  }
  const auto value = scanJsonValue(std::string_view(start, static_cast<std::size_t>(end_ - start)),
                                   budget_.depth, budget_.values);
  if (!value || (pending == Pending::kSkipString && !value->isString)) return;
  // The parser counts the null it reads in the value's place.
  *budget_.valueCount += value->values - 1;
  replaceUpTo(start + value->length,
              pending == Pending::kSkipString ? kStringReplacement : kNullReplacement);
}

void SkippableInput::resolveCapture(const char* value) {
  Scanner scan(std::string_view(value, static_cast<std::size_t>(end_ - value)));
  const auto text = scan.plainString();
  if (!text) return;
  captured_ = *text;
  replaceUpTo(scan.position(), kNullReplacement);
}

void SkippableInput::replaceUpTo(const char* resume, std::string_view replacement) {
  resume_ = resume;
  position_ = replacement.data();
  end_ = replacement.data() + replacement.size();
}

}  // namespace imagegate::admission
