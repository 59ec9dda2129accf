#include "http_client.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "support/net_io.h"
#include "support/sock_addr.h"

namespace weir::test {

std::string httpGet(const SockAddr& addr) {
  std::string err;
  Fd fd = connectTcp(addr, seconds(2), &err);
  if (!fd) {
    return "";
  }
  if (writeAll(fd.get(), "GET / HTTP/1.0\r\nConnection: close\r\n\r\n", deadlineIn(seconds(2))) !=
      IoStatus::Ok) {
    return "";
  }
  return readAllUntilClosed(fd.get(), deadlineIn(seconds(2)));
}

std::string rawHttp(uint16_t port, const std::string& request) {
  std::string err;
  Fd fd = connectTcp(*SockAddr::from("127.0.0.1", port), seconds(2), &err);
  if (!fd || writeAll(fd.get(), request, deadlineIn(seconds(2))) != IoStatus::Ok) {
    return "";
  }
  return readAllUntilClosed(fd.get(), deadlineIn(seconds(5)));
}

std::string get(uint16_t port, const std::string& path) {
  return rawHttp(port, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
}

int statusOf(const std::string& response) {
  int status = 0;
  return std::sscanf(response.c_str(), "HTTP/1.1 %d ", &status) == 1 ? status : 0;
}

std::string bodyOf(const std::string& response) {
  const size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

std::string scrape(uint16_t port) { return bodyOf(get(port, "/metrics")); }

std::optional<double> sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
    }
  }
  return std::nullopt;
}

double waitSample(uint16_t port, const std::string& series, double want, bool exact,
                  Clock::duration timeout) {
  double last = -1;
  (void)waitFor(
      [&] {
        last = sample(scrape(port), series).value_or(-1);
        return exact ? last == want : last >= want;
      },
      timeout, milliseconds(50));
  return last;
}

}  // namespace weir::test
