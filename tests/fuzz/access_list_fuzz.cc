// libFuzzer target: the text of an allow_file / deny_file -> net::parseListFile, and the
// access list built from what it read -> net::AccessList.
//
// Properties: every problem is one printable line at a line and column inside the input;
// every prefix read comes from a line the input has, and prints back to a prefix that parses
// to itself; and the list decides each probe address (every rule's network address, and the
// same address with its last bit or its last prefix bit flipped) exactly as a brute-force
// longest-prefix match over the rules with Cidr::contains does, default included.
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "net/access_list.h"
#include "net/address.h"
#include "net/cidr.h"

namespace weir::fuzz {
namespace {

using net::AccessList;
using net::Cidr;
using net::SockAddr;

constexpr size_t kMaxProblems = 8;
constexpr size_t kMaxProbedRules = 64;  // keeps the brute force quadratic in a small number

// The client address of `prefix`'s network with bit `flip` (0 = the first) inverted, or none.
SockAddr probe(const Cidr& prefix, int flip) {
  std::array<uint8_t, 16> bytes = prefix.bytes();
  const unsigned width = prefix.family() == AF_INET6 ? 128 : 32;
  if (flip >= 0 && static_cast<unsigned>(flip) < width) {
    bytes[flip / 8] ^= static_cast<uint8_t>(0x80 >> (flip % 8));
  }
  if (prefix.family() == AF_INET6) {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    std::memcpy(in6.sin6_addr.s6_addr, bytes.data(), 16);
    return SockAddr(reinterpret_cast<const sockaddr*>(&in6), sizeof(in6));
  }
  sockaddr_in in4{};
  in4.sin_family = AF_INET;
  std::memcpy(&in4.sin_addr.s_addr, bytes.data(), 4);
  return SockAddr(reinterpret_cast<const sockaddr*>(&in4), sizeof(in4));
}

// `peer` as the kernel sees the client: an IPv4-mapped IPv6 address (what a dual-stack socket
// reports for an IPv4 client) is the IPv4 address.
SockAddr asClient(const SockAddr& peer) {
  if (peer.family() != AF_INET6) {
    return peer;
  }
  const in6_addr& in6 = reinterpret_cast<const sockaddr_in6*>(peer.get())->sin6_addr;
  if (!IN6_IS_ADDR_V4MAPPED(&in6)) {
    return peer;
  }
  sockaddr_in in4{};
  in4.sin_family = AF_INET;
  std::memcpy(&in4.sin_addr.s_addr, in6.s6_addr + 12, 4);
  return SockAddr(reinterpret_cast<const sockaddr*>(&in4), sizeof(in4));
}

// The decision by brute force: the longest rule containing the client, else the default.
bool expected(const std::vector<AccessList::Rule>& rules, bool default_allow,
              const SockAddr& peer_as_written) {
  const SockAddr peer = asClient(peer_as_written);
  int best = -1;
  bool allow = default_allow;
  for (const auto& rule : rules) {
    if (rule.prefix.contains(peer) && static_cast<int>(rule.prefix.prefixLength()) > best) {
      best = static_cast<int>(rule.prefix.prefixLength());
      allow = rule.allow;
    }
  }
  return allow;
}

void run(std::string_view text) {
  std::vector<net::ListFileEntry> entries;
  std::vector<net::ListFileProblem> problems;
  size_t more = 0;
  net::parseListFile(text, entries, problems, kMaxProblems, &more);
  check(problems.size() <= kMaxProblems, "at most max_problems problems are kept");
  size_t lines = 1;
  for (char c : text) {
    lines += c == '\n' ? 1 : 0;
  }
  for (const auto& p : problems) {
    check(isOneLine(p.what), "a problem is one printable line", p.what);
    check(p.line >= 1 && p.line <= lines && p.column >= 1, "a problem is inside the input",
          p.what);
  }
  for (const auto& e : entries) {
    check(e.line >= 1 && e.line <= lines, "a prefix comes from a line of the input");
    auto back = Cidr::parse(e.prefix.toString());
    check(back.has_value() && *back == e.prefix, "a prefix read prints back to itself",
          e.prefix.toString());
  }
  // Each prefix gets an action from its line number (a file holds one action; mixing them
  // covers allow and deny lists at once). A prefix seen before keeps its first action, as the
  // config's conflict check would demand.
  std::vector<AccessList::Rule> rules;
  for (const auto& e : entries) {
    bool seen = false;
    for (const auto& r : rules) {
      seen = seen || r.prefix == e.prefix;
    }
    if (!seen) {
      rules.push_back({e.prefix, e.line % 3 != 0});
    }
  }
  const AccessList list(rules);
  check(list.rules().size() == rules.size(), "the list keeps every distinct rule");
  bool any_allow = false;
  for (const auto& r : rules) {
    any_allow = any_allow || r.allow;
  }
  check(list.defaultAllow() == !any_allow, "anything allowed makes the default a refusal");
  for (size_t i = 0; i < rules.size() && i < kMaxProbedRules; ++i) {
    const Cidr& prefix = rules[i].prefix;
    const int width = prefix.family() == AF_INET6 ? 128 : 32;
    for (int flip : {-1, width - 1, static_cast<int>(prefix.prefixLength()) - 1}) {
      const SockAddr peer = probe(prefix, flip);
      check(list.allows(peer) == expected(rules, list.defaultAllow(), peer),
            "the list decides as the longest matching rule", peer.toString());
    }
  }
}

}  // namespace
}  // namespace weir::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  weir::fuzz::run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
