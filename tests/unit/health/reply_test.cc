#include <gtest/gtest.h>

#include <string>

#include "health/reply.h"

namespace weir::health {
namespace {

TEST(JudgeExpect, PassesOnceTheSubstringArrives) {
  EXPECT_EQ(judgeExpect("", "+PONG", false, false).verdict, Verdict::NeedMore);
  EXPECT_EQ(judgeExpect("+PO", "+PONG", false, false).verdict, Verdict::NeedMore);
  EXPECT_EQ(judgeExpect("+PONG\r\n", "+PONG", false, false).verdict, Verdict::Pass);
  EXPECT_EQ(judgeExpect("banner\r\n220 ready", "220 ", true, false).verdict, Verdict::Pass);
}

TEST(JudgeExpect, WrongAnswerSaysWhatCame) {
  Judgement j = judgeExpect("-ERR unknown command\r\n", "+PONG", true, false);
  EXPECT_EQ(j.verdict, Verdict::Fail);
  EXPECT_EQ(j.error, "expected \"+PONG\", got \"-ERR unknown command\\r\\n\"");
}

TEST(JudgeExpect, ClosedWithoutAWord) {
  Judgement j = judgeExpect("", "+PONG", true, false);
  EXPECT_EQ(j.error, "expected \"+PONG\", got nothing (connection closed)");
}

TEST(JudgeExpect, FullBufferWithoutMatch) {
  std::string reply(kMaxReply, 'z');
  Judgement j = judgeExpect(reply, "+PONG", false, true);
  EXPECT_EQ(j.verdict, Verdict::Fail);
  EXPECT_EQ(j.error, "expected \"+PONG\", got \"" + std::string(40, 'z') +
                         "\"... (no match in the first 4096 bytes)");
}

TEST(JudgeExpect, BinaryBytesAreEscaped) {
  Judgement j = judgeExpect(std::string("\x00\x01\xff\"\\", 5), std::string("\x02", 1), true,
                            false);
  EXPECT_EQ(j.error, "expected \"\\x02\", got \"\\x00\\x01\\xff\\\"\\\\\"");
}

TEST(JudgeHttp, StatusInRangePasses) {
  EXPECT_EQ(judgeHttp("HTTP/1.1 200 OK\r\n", 200, 200, false, false).verdict, Verdict::Pass);
  EXPECT_EQ(judgeHttp("HTTP/1.0 204\r\n", 200, 299, false, false).verdict, Verdict::Pass);
  EXPECT_EQ(judgeHttp("HTTP/1.1 301 Moved\n", 300, 399, false, false).verdict, Verdict::Pass);
  // Closed right after the status line, no newline.
  EXPECT_EQ(judgeHttp("HTTP/1.0 200 OK", 200, 200, true, false).verdict, Verdict::Pass);
}

TEST(JudgeHttp, WaitsForTheWholeStatusLine) {
  EXPECT_EQ(judgeHttp("", 200, 200, false, false).verdict, Verdict::NeedMore);
  EXPECT_EQ(judgeHttp("HTTP/1.1 2", 200, 200, false, false).verdict, Verdict::NeedMore);
  EXPECT_EQ(judgeHttp("HTTP/1.1 200 OK", 200, 200, false, false).verdict, Verdict::NeedMore);
}

TEST(JudgeHttp, WrongStatus) {
  Judgement j = judgeHttp("HTTP/1.1 500 Internal Server Error\r\n", 200, 200, false, false);
  EXPECT_EQ(j.verdict, Verdict::Fail);
  EXPECT_EQ(j.error, "status 500, expected 200");
  EXPECT_EQ(judgeHttp("HTTP/1.1 404 Not Found\r\n", 200, 299, false, false).error,
            "status 404, expected 2xx");
  EXPECT_EQ(judgeHttp("HTTP/1.1 404 Not Found\r\n", 200, 204, false, false).error,
            "status 404, expected 200..204");
}

TEST(JudgeHttp, NotHttp) {
  EXPECT_EQ(judgeHttp("SSH-2.0-OpenSSH_9.2\r\n", 200, 200, false, false).error,
            "not an HTTP status line: \"SSH-2.0-OpenSSH_9.2\"");
  EXPECT_EQ(judgeHttp("HTTP/1.1 20x OK\r\n", 200, 200, false, false).error,
            "not an HTTP status line: \"HTTP/1.1 20x OK\"");
  EXPECT_EQ(judgeHttp("HTTP/1.1 2000\r\n", 200, 200, false, false).verdict, Verdict::Fail);
  EXPECT_EQ(judgeHttp("", 200, 200, true, false).error, "connection closed before a status line");
}

TEST(HttpRequest, IsHttp10WithHost) {
  EXPECT_EQ(httpRequest("/health", "10.0.0.1:8080"),
            "GET /health HTTP/1.0\r\nHost: 10.0.0.1:8080\r\nUser-Agent: weir-health-check\r\n"
            "Connection: close\r\n\r\n");
}

}  // namespace
}  // namespace weir::health
