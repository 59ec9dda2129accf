#include "config/toml_guard.h"

#include <cstdio>

namespace weir::config::detail {
namespace {

bool isContinuation(unsigned char b) {
  return (b & 0xc0) == 0x80;
}

// Reads `text` byte by byte, keeping the line and column of the character at the cursor.
class Cursor {
public:
  explicit Cursor(std::string_view text) : text_(text) {}

  bool done() const { return at_ >= text_.size(); }
  unsigned char peek() const { return done() ? 0 : static_cast<unsigned char>(text_[at_]); }
  bool lookingAt(std::string_view s) const { return text_.substr(at_, s.size()) == s; }

  void skip(size_t bytes = 1) {
    for (; bytes > 0 && !done(); --bytes) {
      auto b = static_cast<unsigned char>(text_[at_++]);
      if (b == '\n') {
        ++line_;
        column_ = 1;
      } else if (!isContinuation(b)) {
        ++column_;
      }
    }
  }

  // The closing """ or ''' at the cursor and up to two more quotes (""""" ends a string with
  // two quotes in it).
  void skipClosing(char quote) {
    skip(3);
    for (int extra = 0; extra < 2 && peek() == static_cast<unsigned char>(quote); ++extra) {
      skip();
    }
  }

  // "U+00E9" for the UTF-8 character at the cursor, or "byte 0xff" if it is not UTF-8.
  std::string character() const {
    const auto lead = peek();
    const size_t len = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 0;
    char buf[24];
    uint32_t cp = lead & (0x7f >> len);
    bool valid = len > 0 && at_ + len <= text_.size();
    for (size_t k = 1; valid && k < len; ++k) {
      const auto b = static_cast<unsigned char>(text_[at_ + k]);
      valid = isContinuation(b);
      cp = cp << 6 | (b & 0x3f);
    }
    if (valid) {
      std::snprintf(buf, sizeof(buf), "U+%04X", static_cast<unsigned>(cp));
    } else {
      std::snprintf(buf, sizeof(buf), "byte 0x%02x", static_cast<unsigned>(lead));
    }
    return buf;
  }

  TomlHazard hazard(std::string what) const { return {line_, column_, std::move(what)}; }

private:
  std::string_view text_;
  size_t at_ = 0;
  uint32_t line_ = 1;
  uint32_t column_ = 1;
};

bool isTomlWhitespace(unsigned char b) {
  return b == ' ' || b == '\t' || (b >= '\n' && b <= '\r');
}

}  // namespace

std::optional<TomlHazard> findTomlHazard(std::string_view text) {
  enum class In { Code, Comment, Basic, Literal, MultiBasic, MultiLiteral };
  In in = In::Code;
  // The last character of code that is not a space or tab, '\n' at the start of a line. A quote
  // starts a string only where a key or a value starts: inside a bare value (2"x") it is just a
  // character, and toml++ reads on to the end of that value.
  unsigned char last = '\n';
  Cursor c(text);
  if (c.lookingAt("\xef\xbb\xbf")) {
    c.skip(3);  // a UTF-8 byte order mark, which toml++ skips
  }
  while (!c.done()) {
    const unsigned char b = c.peek();
    switch (in) {
      case In::Code: {
        if (b >= 0x80) {
          return c.hazard("unexpected " + c.character() +
                          " (outside strings and comments TOML allows only ASCII)");
        }
        const bool key_or_value = last == '\n' || last == '=' || last == '[' || last == ',' ||
                                  last == '{' || last == '.';
        if (key_or_value && (c.lookingAt("\"\"\"") || c.lookingAt("'''"))) {
          in = b == '"' ? In::MultiBasic : In::MultiLiteral;
          c.skip(3);
          continue;
        }
        if (b == '#') {
          in = In::Comment;
        } else if (key_or_value && (b == '"' || b == '\'')) {
          in = b == '"' ? In::Basic : In::Literal;
        } else if (b != ' ' && b != '\t' && b != '\r') {
          last = b;
        }
        break;
      }
      case In::Comment:
        if (b == '\n') {
          in = In::Code;
          last = '\n';
        }
        break;
      case In::Basic:
        if (b == '\\') {
          c.skip();  // the escaped character is skipped below, unless it ends the line
          if (c.peek() == '\n') {
            continue;
          }
        }
        if (b == '"' || b == '\n') {
          in = In::Code;
          last = b;
        }
        break;
      case In::Literal:
        if (b == '\'' || b == '\n') {
          in = In::Code;
          last = b;
        }
        break;
      case In::MultiBasic:
        if (c.lookingAt("\"\"\"")) {
          c.skipClosing('"');
          in = In::Code;
          last = '"';
          continue;
        }
        if (b == '\\') {
          // toml++ asks whether the escaped character is whitespace; if so (a line-ending
          // backslash) it asks again of each character up to the first that is not.
          c.skip();
          bool line_ending = false;
          while (!c.done() && isTomlWhitespace(c.peek())) {
            line_ending = true;
            c.skip();
          }
          if (c.peek() >= 0x80) {
            std::string where = line_ending ? " first after a line-ending" : " after a";
            return c.hazard(c.character() + where +
                            " backslash in a multi-line string; write it as \\uXXXX there");
          }
          if (line_ending) {
            continue;  // what comes next is read on its own: text, a quote, another backslash
          }
        }
        break;  // skips the character, or the escaped one
      case In::MultiLiteral:
        if (c.lookingAt("'''")) {
          c.skipClosing('\'');
          in = In::Code;
          last = '\'';
          continue;
        }
        break;
    }
    c.skip();
  }
  return std::nullopt;
}

}  // namespace weir::config::detail
