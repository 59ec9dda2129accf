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

bool isBareKeyCharacter(unsigned char b) {
  return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') ||
         b == '_' || b == '-';
}

// What toml++ takes as the end of a bare value (a number, date, boolean, inf or nan).
bool endsBareValue(unsigned char b) {
  return isTomlWhitespace(b) || b == ']' || b == '}' || b == ',' || b == '#';
}

}  // namespace

// A small model of TOML's structure, enough to know where toml++ looks at a character: in a
// string or comment it does not ask whether the character is whitespace; everywhere else it
// does. In a bare value toml++ reads on to a value terminator, so a quote there (2"x") is a
// character of the value, not the start of a string.
std::optional<TomlHazard> findTomlHazard(std::string_view text) {
  enum class In { Code, Comment, Basic, Literal, MultiBasic, MultiLiteral, BareKey, BareValue };
  enum class Next { Key, Value, Other };  // what the code at the cursor may start
  In in = In::Code;
  Next next = Next::Key;
  std::string open;  // brackets open at the cursor: 'h' table header, 'a' array, '{' inline table
  // A bare value just ended at a space or tab: a quote now is no valid TOML, and toml++ may
  // still be reading the value (a date followed by " " and a time), so it is not a string.
  bool after_bare_value = false;
  Cursor c(text);
  if (c.lookingAt("\xef\xbb\xbf")) {
    c.skip(3);  // a UTF-8 byte order mark, which toml++ skips
  }
  while (!c.done()) {
    const unsigned char b = c.peek();
    if (b >= 0x80 && (in == In::Code || in == In::BareKey || in == In::BareValue)) {
      return c.hazard("unexpected " + c.character() +
                      " (weir accepts non-ASCII characters only in string values and comments)");
    }
    switch (in) {
      case In::Code:
        if (b == ' ' || b == '\t' || b == '\r') {
          break;
        }
        if ((b == '"' || b == '\'') && after_bare_value) {
          in = In::BareValue;
        } else if (c.lookingAt("\"\"\"") || c.lookingAt("'''")) {
          in = b == '"' ? In::MultiBasic : In::MultiLiteral;
          c.skip(3);
          continue;
        } else if (b == '"' || b == '\'') {
          in = b == '"' ? In::Basic : In::Literal;
        } else if (b == '#') {
          in = In::Comment;
        } else if (b == '\n') {
          next = !open.empty() && open.back() == 'a' ? next : Next::Key;
        } else if (b == '[') {
          open += next == Next::Value ? 'a' : 'h';
        } else if (b == '{') {
          open += '{';
          next = Next::Key;
        } else if (b == ']' || b == '}') {
          next = !open.empty() && open.back() == 'h' ? Next::Key : Next::Other;
          if (!open.empty()) {
            open.pop_back();
          }
        } else if (b == ',') {
          next = !open.empty() && open.back() == 'a' ? Next::Value : Next::Key;
        } else if (b == '=') {
          next = Next::Value;
        } else if (b == '.') {
          next = Next::Key;
        } else if (next == Next::Value) {
          in = In::BareValue;
        } else if (isBareKeyCharacter(b)) {
          in = In::BareKey;
        }
        after_bare_value = false;
        break;
      case In::BareKey:
        if (!isBareKeyCharacter(b)) {
          in = In::Code;
          continue;  // the character after the key is code
        }
        break;
      case In::BareValue:
        if (endsBareValue(b)) {
          in = In::Code;
          next = Next::Other;
          after_bare_value = b == ' ' || b == '\t';
          continue;  // the terminator is code
        }
        break;
      case In::Comment:
        if (b == '\n') {
          in = In::Code;
          continue;  // the line break is code
        }
        break;
      case In::Basic:
      case In::Literal: {
        const char quote = in == In::Basic ? '"' : '\'';
        if (in == In::Basic && b == '\\') {
          c.skip();  // the escaped character is skipped below, unless it ends the line
          if (c.peek() == '\n') {
            continue;
          }
          break;
        }
        if (b == quote || b == '\n') {
          in = In::Code;
          next = Next::Other;
          if (b == '\n') {
            continue;  // an unterminated string: toml++ stops here; the line break is code
          }
        }
        break;
      }
      case In::MultiBasic:
        if (c.lookingAt("\"\"\"")) {
          c.skipClosing('"');
          in = In::Code;
          next = Next::Other;
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
          next = Next::Other;
          continue;
        }
        break;
    }
    c.skip();
  }
  return std::nullopt;
}

}  // namespace weir::config::detail
