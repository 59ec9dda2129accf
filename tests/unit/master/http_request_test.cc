#include "master/http_request.h"

#include <gtest/gtest.h>

#include <string>

namespace weir::master {
namespace {

using Status = HttpRequest::Status;

TEST(HttpRequest, ParsesGetAndHeadWithoutTheQuery) {
  const HttpRequest get = parseHttpRequest("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(get.status, Status::Ok);
  EXPECT_EQ(get.method, "GET");
  EXPECT_EQ(get.path, "/metrics");
  const HttpRequest head = parseHttpRequest("HEAD / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(head.status, Status::Ok);
  EXPECT_EQ(head.method, "HEAD");
  EXPECT_EQ(head.path, "/");
}

TEST(HttpRequest, WaitsForTheEndOfTheHeaders) {
  EXPECT_EQ(parseHttpRequest("").status, Status::Incomplete);
  EXPECT_EQ(parseHttpRequest("GET / HTTP/1.1").status, Status::Incomplete);
  EXPECT_EQ(parseHttpRequest("GET / HTTP/1.1\r\nHost: a\r\n").status, Status::Incomplete);
  EXPECT_EQ(parseHttpRequest("GET / HTTP/1.1\r\nHost: a\r\n\r").status, Status::Incomplete);
}

TEST(HttpRequest, RefusesWhatIsNotAPlainRequest) {
  EXPECT_EQ(parseHttpRequest("GARBAGE\r\n").status, Status::Bad);
  EXPECT_EQ(parseHttpRequest("GET  / HTTP/1.1\r\n\r\n").status, Status::Bad);
  EXPECT_EQ(parseHttpRequest("GET http://a/ HTTP/1.1\r\n\r\n").status, Status::Bad);
  EXPECT_EQ(parseHttpRequest("GET /\x01 HTTP/1.1\r\n\r\n").status, Status::Bad);
  EXPECT_EQ(parseHttpRequest("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n").status, Status::Bad);
  EXPECT_EQ(parseHttpRequest("GET / HTTP/1.1\r\n folded\r\n\r\n").status, Status::Bad);
  EXPECT_EQ(parseHttpRequest("GET / HTTP/1.1\nHost: a\n\n").status, Status::Bad);  // bare LF
  EXPECT_EQ(parseHttpRequest("GET / HTTP/2.0\r\n\r\n").status, Status::Version);
  EXPECT_EQ(parseHttpRequest("GET / HTTP/1.1\r\n" + std::string(kMaxRequestBytes, 'a')).status,
            Status::TooLarge);
}

}  // namespace
}  // namespace weir::master
