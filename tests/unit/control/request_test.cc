// The control socket's request line: what weirctl sends and the only input the root master
// takes from a local client.
#include <gtest/gtest.h>

#include <string>

#include "control/reply.h"
#include "control/request.h"

namespace weir::control {
namespace {

Request parsed(std::string_view line) {
  ParsedRequest r = parseRequest(line);
  EXPECT_TRUE(r.request.has_value()) << line << ": " << r.error;
  return r.request.value_or(Request{});
}

std::string errorOf(std::string_view line) {
  ParsedRequest r = parseRequest(line);
  EXPECT_FALSE(r.request.has_value()) << line;
  return r.error;
}

TEST(ControlRequest, EveryCommand) {
  EXPECT_EQ(parsed("text status"), (Request{Format::Text, Command::Status, {}}));
  EXPECT_EQ(parsed("json status"), (Request{Format::Json, Command::Status, {}}));
  EXPECT_EQ(parsed("text backends"), (Request{Format::Text, Command::Backends, {}}));
  EXPECT_EQ(parsed("json backends web"), (Request{Format::Json, Command::Backends, {"web"}}));
  EXPECT_EQ(parsed("text drain web 10.0.0.1:80"),
            (Request{Format::Text, Command::Drain, {"web", "10.0.0.1:80"}}));
  EXPECT_EQ(parsed("text undrain web [::1]:80"),
            (Request{Format::Text, Command::Undrain, {"web", "[::1]:80"}}));
  EXPECT_EQ(parsed("text disable a b").command, Command::Disable);
  EXPECT_EQ(parsed("text enable a b").command, Command::Enable);
  EXPECT_EQ(parsed("json reload"), (Request{Format::Json, Command::Reload, {}}));
}

TEST(ControlRequest, FormatParsesBack) {
  for (const Request& r : {Request{Format::Json, Command::Drain, {"web", "10.0.0.1:80"}},
                           Request{Format::Text, Command::Status, {}},
                           Request{Format::Text, Command::Backends, {"p"}}}) {
    std::string line = formatRequest(r);
    ASSERT_EQ(line.back(), '\n');
    line.pop_back();
    EXPECT_EQ(parsed(line), r);
  }
  EXPECT_EQ(formatRequest({Format::Json, Command::Enable, {"a", "b"}}), "json enable a b\n");
}

TEST(ControlRequest, WordsAndSpaces) {
  EXPECT_EQ(errorOf(""), "empty request");
  EXPECT_EQ(errorOf(" text status"), "words must be separated by exactly one space");
  EXPECT_EQ(errorOf("text  status"), "words must be separated by exactly one space");
  EXPECT_EQ(errorOf("text status "), "words must be separated by exactly one space");
  EXPECT_EQ(errorOf("text\tstatus"), "byte 5 of the request is not printable ASCII");
  EXPECT_EQ(errorOf("text status\r"), "byte 12 of the request is not printable ASCII");
  EXPECT_EQ(errorOf(std::string("text st\0tus", 11)),
            "byte 8 of the request is not printable ASCII");
  EXPECT_EQ(errorOf("text drain w\xc3\xa9 a"), "byte 13 of the request is not printable ASCII");
}

TEST(ControlRequest, KnownWordsOnly) {
  EXPECT_EQ(errorOf("xml status"), "expected \"text\" or \"json\" first, got \"xml\"");
  EXPECT_EQ(errorOf("TEXT status"), "expected \"text\" or \"json\" first, got \"TEXT\"");
  EXPECT_EQ(errorOf("text"), "no command");
  EXPECT_EQ(errorOf("text stop"), "unknown command \"stop\"");
  EXPECT_EQ(errorOf("text Status"), "unknown command \"Status\"");
}

TEST(ControlRequest, ExactArgumentCounts) {
  EXPECT_EQ(errorOf("text status now"), "status takes 0 arguments, got 1");
  EXPECT_EQ(errorOf("text backends a b"), "backends takes 0 to 1 argument, got 2");
  EXPECT_EQ(errorOf("text drain web"), "drain takes 2 arguments, got 1");
  EXPECT_EQ(errorOf("text enable a b c"), "enable takes 2 arguments, got 3");
  EXPECT_EQ(errorOf("json reload now"), "reload takes 0 arguments, got 1");
}

TEST(ControlRequest, Bounded) {
  const std::string word(kMaxWord, 'a');
  EXPECT_EQ(parsed("text backends " + word).args[0], word);
  EXPECT_EQ(errorOf("text backends " + word + "a"), "word 3 is longer than 128 bytes");
  const std::string many = "text drain " + std::string(500, 'a') + " " + std::string(600, 'b');
  EXPECT_EQ(errorOf(many), "request longer than 1023 bytes");
}

TEST(ControlRequest, ReceivedBytes) {
  EXPECT_FALSE(parseReceived("", false).has_value());
  EXPECT_FALSE(parseReceived("text sta", false).has_value());
  auto r = parseReceived("text status\n", false);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->request, (Request{Format::Text, Command::Status, {}}));
  // One request per connection: what follows the first line is not read.
  r = parseReceived("json reload\ntext drain a b\n", false);
  ASSERT_TRUE(r && r->request);
  EXPECT_EQ(r->request->command, Command::Reload);
  r = parseReceived("text status", true);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->error, "no newline before the end");
  r = parseReceived("\n", false);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->error, "empty request");
  // kMaxRequest bytes without a newline are enough to say no, and a newline past them counts
  // for nothing.
  const std::string flood(kMaxRequest, 'a');
  EXPECT_FALSE(parseReceived(flood.substr(1), false).has_value());
  r = parseReceived(flood + "\n", false);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->error, "request longer than 1023 bytes");
  r = parseReceived("text backends " + std::string(kMaxRequest - 15, 'p') + "\n", false);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->error, "word 3 is longer than 128 bytes");
}

TEST(ControlReply, EncodeAndDecode) {
  EXPECT_EQ(encodeReply(Reply::success("a\nb")), "ok\na\nb\n");
  EXPECT_EQ(encodeReply(Reply::failure("no pool\n")), "error\nno pool\n");
  EXPECT_EQ(encodeReply(Reply::success("")), "ok\n");
  auto r = decodeReply("error\nno pool \"x\"\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->ok);
  EXPECT_EQ(r->body, "no pool \"x\"\n");
  EXPECT_TRUE(decodeReply("ok\n")->ok);
  EXPECT_FALSE(decodeReply("").has_value());
  EXPECT_FALSE(decodeReply("okay\n").has_value());
  EXPECT_FALSE(decodeReply("ok").has_value());
}

}  // namespace
}  // namespace weir::control
