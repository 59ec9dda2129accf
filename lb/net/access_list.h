#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/address.h"
#include "net/cidr.h"

namespace weir::net {

// A listener's access list (listeners.NAME.allow / deny / allow_file / deny_file): which
// client addresses may connect. The longest listed prefix that contains the client's address
// decides; an address no prefix contains is refused when anything is allowed explicitly, and
// let in otherwise (a deny list alone refuses only what it lists). IPv4 and IPv6 prefixes
// never match each other's clients; an IPv4 client of a dual-stack socket (::ffff:a.b.c.d) is
// an IPv4 client.
//
// The BPF program holds the same list as an LPM trie (bpf/steer.h); this class is its copy for
// the workers, which enforce it right after accept where the program is not loaded, and the
// one definition of the trie's keys (keyOf).
class AccessList {
public:
  struct Rule {
    Cidr prefix;
    bool allow = false;
  };
  // Key of the family-tagged address space the trie uses: byte 0 is 4 or 6, bytes 1..16 the
  // address; `bits` counts the family byte (8 + the prefix length).
  struct Key {
    std::array<uint8_t, 17> bytes{};
    unsigned bits = 0;
  };

  // `rules` must not give one prefix both actions (the config rejects that); a prefix listed
  // twice with one action counts once.
  explicit AccessList(std::vector<Rule> rules);

  // Whether a client at `peer` may connect.
  bool allows(const SockAddr& peer) const;
  // What an address no rule covers gets.
  bool defaultAllow() const { return default_allow_; }
  // Every distinct rule, in the order first given.
  const std::vector<Rule>& rules() const { return rules_; }
  size_t allowCount() const { return allows_; }
  size_t denyCount() const { return rules_.size() - allows_; }
  bool operator==(const AccessList& o) const;

  static Key keyOf(const Cidr& prefix);

private:
  // The rules of one prefix length: their keys sorted, and each one's action. Sorted arrays
  // rather than hash tables: a blocklist of a million prefixes takes 18 MB, not 70.
  struct Level {
    unsigned bits = 0;
    std::vector<std::array<uint8_t, 17>> keys;
    std::vector<bool> allow;
  };

  std::vector<Rule> rules_;
  size_t allows_ = 0;
  bool default_allow_ = true;
  std::vector<Level> levels_;  // longest prefix first
};

// A prefix of a list file and its 1-based line.
struct ListFileEntry {
  Cidr prefix;
  size_t line = 0;
};

// One line's problem in a list file: 1-based line and column, and what is wrong.
struct ListFileProblem {
  size_t line = 0;
  size_t column = 0;
  std::string what;
};

// Reads the text of an allow_file / deny_file: one address or prefix per line, as Cidr::parse
// takes it; a '#' starts a comment that runs to the end of the line; blank lines and spaces or
// tabs around the prefix are ignored; "\r\n" line ends are accepted. Appends each prefix to
// `out` and each malformed line to `problems` (at most `max_problems` of them; the count of
// the rest goes in *more). A NUL byte anywhere is a problem of its line.
void parseListFile(std::string_view text, std::vector<ListFileEntry>& out,
                   std::vector<ListFileProblem>& problems, size_t max_problems, size_t* more);

}  // namespace weir::net
