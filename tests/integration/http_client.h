#pragma once

// Plain HTTP clients for the tests: requests on fresh connections through weir (to an HTTP
// backend) or to weir's metrics listener (global.metrics on 127.0.0.1), and samples read out
// of the Prometheus text.
#include <cstdint>
#include <optional>
#include <string>

#include "support/deadline.h"
#include "support/sock_addr.h"

namespace weir::test {

// One HTTP/1.0 request (GET /, Connection: close) to `addr`; the response ("" on failure).
std::string httpGet(const SockAddr& addr);
// One request on a fresh connection to 127.0.0.1:port; the whole response (the server
// closes), "" on failure.
std::string rawHttp(uint16_t port, const std::string& request);
// GET `path` with Connection: close.
std::string get(uint16_t port, const std::string& path);
// The status code of a response (0 if it has none).
int statusOf(const std::string& response);
// The body of a response ("" without one).
std::string bodyOf(const std::string& response);
// The body of GET /metrics.
std::string scrape(uint16_t port);
// The value of the sample `series` ("name{labels}" exactly as weir writes it).
std::optional<double> sample(const std::string& text, const std::string& series);

// Waits up to `timeout` until the sample `series` on the metrics listener at `port` is at least
// `want` (or, with `exact`, equal to it); returns the last value read (-1: absent).
double waitSample(uint16_t port, const std::string& series, double want, bool exact,
                  Clock::duration timeout);

}  // namespace weir::test
