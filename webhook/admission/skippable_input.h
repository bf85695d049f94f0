#pragma once

#include <cstddef>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

// The review body as nlohmann's SAX parser reads it, able to jump over a value no rule reads
// (managedFields, oldObject, status, env, the last-applied annotation, ...) instead of lexing it:
// nlohmann's lexer handles every byte one at a time and costs several nanoseconds a byte, most of
// a cached review's decoding. The decoder asks for a skip after a key; the parser then sees `null`
// as that key's value. A value is only skipped when the scan below proves it is JSON that the
// parser would have accepted within the same limits; anything else (non-ASCII text, exponents,
// surrogate escapes, a value too deep or too large, a syntax error) is left to nlohmann, so a
// skip never changes an answer. Skips change the positions nlohmann puts in its error messages:
// a body that fails to parse is read again without skipping (admission/review.cc).
namespace imagegate::admission {

/// What a skipped value may hold: the nesting and the number of JSON values the decoder still
/// allows, and the decoder's value count, which a skip advances as if the values had been read.
struct SkipBudget {
  std::size_t depth = 0;
  std::size_t values = 0;
  std::size_t* valueCount = nullptr;
};

/// A JSON value at the start of a text, as `scanJsonValue` found it.
struct ScannedValue {
  std::size_t length = 0;  ///< Bytes, from its first character to its last.
  std::size_t values = 0;  ///< JSON values in it, itself included.
  bool isString = false;
};

/// The JSON value at the very start of `text`, if it is one this scan fully validates and it fits
/// within `maxDepth` levels of nesting and `maxValues` values; nullopt otherwise (not that the
/// text is invalid, only that nlohmann must judge it).
std::optional<ScannedValue> scanJsonValue(std::string_view text, std::size_t maxDepth,
                                          std::size_t maxValues);

class SkippableInput {
 public:
  /// What nlohmann's iterator input adapter reads through: only ever compared with end().
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = char;
    using difference_type = std::ptrdiff_t;
    using pointer = const char*;
    using reference = const char&;

    Iterator() = default;
    explicit Iterator(SkippableInput* input) : input_(input) {}

    reference operator*() const { return *input_->position_; }
    Iterator& operator++() {
      ++input_->position_;
      return *this;
    }
    Iterator operator++(int) {
      Iterator before = *this;
      ++*this;
      return before;
    }
    friend bool operator==(const Iterator& a, const Iterator& b) { return a.atEnd() == b.atEnd(); }

   private:
    bool atEnd() const { return input_ == nullptr || input_->atEnd(); }

    SkippableInput* input_ = nullptr;
  };

  explicit SkippableInput(std::string_view text);
  SkippableInput(const SkippableInput&) = delete;
  SkippableInput& operator=(const SkippableInput&) = delete;

  Iterator begin() { return Iterator(this); }
  static Iterator end() { return Iterator(); }

  /// Called by the SAX handler right after the parser has read a key: the key's value is jumped
  /// over, and the parser reads `null` in its place, if it is a value the scan validates within
  /// `budget` (and a string, when `onlyString`).
  void skipNextValue(const SkipBudget& budget, bool onlyString = false);

  /// Called by the SAX handler right after the parser has read a key whose value it keeps: when
  /// that value is a string of printable ASCII without escapes (names, images, most values a rule
  /// reads), its text is taken as it stands and the parser reads `null` in its place; the handler
  /// then gets the text from takeCapturedString() at that `null`. Any other value is left to the
  /// parser, and takeCapturedString() has nothing.
  void captureNextString();

  /// The string captured for the `null` the parser has just read in its place, once.
  std::optional<std::string_view> takeCapturedString() {
    const auto captured = captured_;
    captured_.reset();
    return captured;
  }

 private:
  bool atEnd() {
    if (pending_ != Pending::kNothing) resolveSkip();
    if (position_ != end_) return false;
    if (resume_ == nullptr) return true;
    position_ = resume_;
    end_ = textEnd_;
    resume_ = nullptr;
    return position_ == end_;
  }
  void resolveSkip();
  /// After the key: the value's first character, past ':' and whitespace; nullptr if no ':'.
  const char* valueStart() const;
  void resolveCapture(const char* value);
  /// The parser reads `replacement`, then the text from `resume` on.
  void replaceUpTo(const char* resume, std::string_view replacement);

  const char* position_;
  const char* end_;               ///< Of the text, or of the replacement while the parser reads it.
  const char* textEnd_;           ///< Of the text.
  const char* resume_ = nullptr;  ///< Where the text goes on after a replacement.
  enum class Pending { kNothing, kSkip, kSkipString, kCapture };
  Pending pending_ = Pending::kNothing;
  SkipBudget budget_;
  std::optional<std::string_view> captured_;
};

}  // namespace imagegate::admission
