// libFuzzer target: the value parsers under lb/config, fed directly (the config target reaches
// them only through TOML strings): durations, the send/expect escape decoder, IP:PORT and
// CIDR prefixes, and rates ("20/s").
//
// Properties: a parsed duration prints back to itself; decoding never grows a string and a
// decoding error is one printable line; an address or prefix prints as text that parses back
// to it, and a prefix holds its own network address; a prefix error is one line; a rate is
// 1..kMaxRateCount per second or minute and prints back to exactly its text; a backend host
// name is printable, at most 254 bytes, holds no ':' or '[' (so "NAME:PORT" splits at its one
// colon) and never parses as an address.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"
#include "config/readers.h"
#include "fuzz_check.h"
#include "net/address.h"
#include "net/cidr.h"
#include "net/host_name.h"

namespace weir::fuzz {
namespace {

void fuzzDuration(std::string_view text) {
  auto d = config::parseDuration(text);
  if (!d) {
    return;
  }
  check(d->count() >= 0, "a parsed duration is not negative", text);
  std::string printed = config::formatDuration(*d);
  auto back = config::parseDuration(printed);
  check(back.has_value() && *back == *d, "formatDuration reads back with parseDuration",
        printed);
}

void fuzzEscapes(std::string_view text) {
  std::string error;
  auto bytes = config::detail::decodeEscapes(text, error);
  if (bytes) {
    check(bytes->size() <= text.size(), "decoding escapes never adds bytes", text);
    check(error.empty(), "no error text on success", error);
  } else {
    check(!error.empty() && isOneLine(error), "an escape error is one line of text", error);
  }
}

void fuzzAddress(std::string_view text) {
  auto addr = net::SockAddr::parse(text);
  if (!addr) {
    return;
  }
  check(addr->family() == AF_INET || addr->family() == AF_INET6, "IPv4 or IPv6", text);
  std::string printed = addr->toString();
  auto back = net::SockAddr::parse(printed);
  check(back.has_value() && *back == *addr, "toString reads back with SockAddr::parse",
        printed);
}

void fuzzCidr(std::string_view text) {
  std::string error;
  auto prefix = net::Cidr::parse(text, error);
  if (!prefix) {
    check(!error.empty() && isOneLine(error), "a prefix error is one line of text", error);
    return;
  }
  std::string printed = prefix->toString();
  auto back = net::Cidr::parse(printed);
  check(back.has_value() && *back == *prefix, "toString reads back with Cidr::parse", printed);
  // Its network address, as a socket address: the prefix holds it.
  std::string ip = printed.substr(0, printed.find('/'));
  auto addr = net::SockAddr::parse(prefix->family() == AF_INET6 ? "[" + ip + "]:1" : ip + ":1");
  check(addr.has_value() && prefix->contains(*addr), "a prefix holds its network address",
        printed);
}

void fuzzRate(std::string_view text) {
  auto rate = config::parseRate(text);
  if (!rate) {
    return;
  }
  check(rate->count >= 1 && rate->count <= config::kMaxRateCount, "a rate's count is 1..max",
        text);
  check(rate->period == config::Duration(1000) || rate->period == config::Duration(60000),
        "a rate is per second or per minute", text);
  const std::string printed = config::formatRate(*rate);
  check(printed == text, "a rate is written one way only: it prints back to its text", text);
}

void fuzzHostName(std::string_view text) {
  if (!net::validHostName(text)) {
    return;
  }
  check(!text.empty() && text.size() <= 254, "a host name is 1..254 bytes", text);
  check(isPrintableAscii(text), "a host name is printable", text);
  check(text.find(':') == std::string_view::npos && text.find('[') == std::string_view::npos,
        "a host name has no ':' or '['", text);
  check(!net::SockAddr::parse(std::string(text) + ":80").has_value(),
        "a host name is never an address", text);
}

}  // namespace
}  // namespace weir::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  weir::fuzz::fuzzDuration(text);
  weir::fuzz::fuzzEscapes(text);
  weir::fuzz::fuzzAddress(text);
  weir::fuzz::fuzzCidr(text);
  weir::fuzz::fuzzRate(text);
  weir::fuzz::fuzzHostName(text);
  return 0;
}
