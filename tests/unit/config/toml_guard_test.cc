// config::parse never hands toml++ 3.3 text that makes it reach undefined behaviour (see
// lb/config/toml_guard.h): such text is a syntax error at the character, and non-ASCII text
// where TOML allows it still parses.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"

namespace weir::config {
namespace {

using ::testing::ElementsAre;

constexpr std::string_view kValid =
    "[listeners.web]\n"
    "bind = \"127.0.0.1:8080\"\n"
    "pool = \"web\"\n"
    "[pools.web]\n"
    "backends = [{ address = \"10.0.0.1:80\" }]\n";

std::vector<std::string> errorsOf(std::string_view text) {
  try {
    parse(text, "weir.toml");
  } catch (const ConfigError& e) {
    return e.messages();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << text;
  return {};
}

// What follows "unexpected CHARACTER" in the guard's error.
constexpr std::string_view kWhere =
    " (weir accepts non-ASCII characters only in string values and comments)";

std::string unexpected(std::string_view at, std::string_view character) {
  return "weir.toml:" + std::string(at) + ": syntax error: unexpected " + std::string(character) +
         std::string(kWhere);
}

// Found by fuzzing (config_fuzz, UBSan in toml++'s is_non_ascii_horizontal_whitespace): a
// non-ASCII letter in a table name.
TEST(TomlGuard, NonAsciiOutsideStringsIsASyntaxErrorAtTheCharacter) {
  EXPECT_THAT(errorsOf("[pools\xd2\x90" "eb]\n"), ElementsAre(unexpected("1:7", "U+0490")));
  EXPECT_THAT(errorsOf(std::string(kValid) + "retries = 1 \xc3\xa9\n"),
              ElementsAre(unexpected("6:13", "U+00E9")));
  // Columns count characters, as toml++'s own errors do: the comment's "é" is one.
  EXPECT_THAT(errorsOf("# caf\xc3\xa9\nx = 'caf\xc3\xa9' \xc2\xa7\n"),
              ElementsAre(unexpected("2:12", "U+00A7")));
  EXPECT_THAT(errorsOf("x = 1\xff\n"), ElementsAre(unexpected("1:6", "byte 0xff")));
}

// Found by fuzzing too: toml++ reads a bare value (a number, a date) on to a value terminator
// and asks of each character whether it is one, so a quote inside it starts no string.
TEST(TomlGuard, AQuoteInsideABareValueStartsNoString) {
  EXPECT_THAT(errorsOf("x = 2\"\xc3\xa9\"\n"), ElementsAre(unexpected("1:7", "U+00E9")));
  EXPECT_THAT(errorsOf("g=1_\"{\"00x\xd0\x9d\n"), ElementsAre(unexpected("1:11", "U+041D")));
  EXPECT_THAT(errorsOf("x = [1, 1979-05-27T'\xc3\xa9']\n"),
              ElementsAre(unexpected("1:21", "U+00E9")));
  // A date, a space and more: toml++ reads on, looking for the time.
  EXPECT_THAT(errorsOf("x = 1979-05-27 \"\xc3\xa9\"\n"), ElementsAre(unexpected("1:17", "U+00E9")));
}

// Quoted keys are strings: toml++ reads them as such, and weir reports the unknown key.
TEST(TomlGuard, QuotedKeysAreStrings) {
  EXPECT_THAT(errorsOf(std::string(kValid) + "\"caf\xc3\xa9\" = 1\nx.\"\xc3\xa9\" = 2\n"),
              ElementsAre("weir.toml:6:10: pools.web.\"caf\xc3\xa9\": unknown key",
                          "weir.toml:7:1: pools.web.x: unknown key"));
}

// toml++ also asks whether the character after a backslash in a """ string is whitespace, and
// after a line-ending backslash, each character up to the first that is not (upstream #190).
TEST(TomlGuard, NonAsciiAfterABackslashInAMultiLineStringIsASyntaxError) {
  const std::string health = std::string(kValid) + "[pools.web.health]\nkind = \"send-expect\"\n";
  EXPECT_THAT(errorsOf(health + "expect = \"\"\"\\\n  \xc2\xa7\"\"\"\n"),
              ElementsAre("weir.toml:9:3: syntax error: U+00A7 first after a line-ending "
                          "backslash in a multi-line string; write it as \\uXXXX there"));
  EXPECT_THAT(errorsOf(health + "expect = \"\"\"a\\\xc3\xa9\"\"\"\n"),
              ElementsAre("weir.toml:8:15: syntax error: U+00E9 after a backslash in a "
                          "multi-line string; write it as \\uXXXX there"));
}

TEST(TomlGuard, NonAsciiInStringsAndCommentsStillParses) {
  const std::string text = "\xef\xbb\xbf# caf\xc3\xa9 \xd2\x90\n" + std::string(kValid) +
                           "[pools.web.health]  # \xc2\xa7\n"
                           "kind = \"send-expect\"\n"
                           "send = \"\"\"\xc2\xa7\\\\\\\\\xc3\xa9\\\n  \\u00e9\"\"\"\n"
                           "expect = '''\n\xc3\xa9'''\n";
  Config c = parse(text, "weir.toml");
  ASSERT_TRUE(c.pools[0].health.has_value());
  // TOML makes one backslash of \\ and so does weir's escape decoder afterwards.
  EXPECT_EQ(c.pools[0].health->send, "\xc2\xa7\\\xc3\xa9\xc3\xa9");
  EXPECT_EQ(c.pools[0].health->expect, "\xc3\xa9");
}

}  // namespace
}  // namespace weir::config
