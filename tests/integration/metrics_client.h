#pragma once

// A client of weir's metrics listener (global.metrics on 127.0.0.1): plain HTTP/1.1 requests
// on fresh connections, and samples read out of the Prometheus text.
#include <cstdint>
#include <optional>
#include <string>

namespace weir::test {

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

}  // namespace weir::test
