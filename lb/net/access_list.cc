#include "net/access_list.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace weir::net {
namespace {

// `key` with every bit past the first `bits` cleared.
std::array<uint8_t, 17> masked(std::array<uint8_t, 17> key, unsigned bits) {
  for (unsigned i = 0; i < key.size(); ++i) {
    if (bits >= 8 * (i + 1)) {
      continue;
    }
    const unsigned keep = bits > 8 * i ? bits - 8 * i : 0;
    key[i] &= static_cast<uint8_t>(0xff00 >> keep);
  }
  return key;
}

// The full-length key of a client address (IPv4-mapped IPv6 as IPv4).
AccessList::Key keyOfPeer(const SockAddr& peer) {
  AccessList::Key key;
  if (peer.family() == AF_INET) {
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(peer.get());
    key.bytes[0] = 4;
    std::memcpy(&key.bytes[1], &in4->sin_addr.s_addr, 4);
    key.bits = 8 + 32;
  } else if (peer.family() == AF_INET6) {
    const in6_addr& in6 = reinterpret_cast<const sockaddr_in6*>(peer.get())->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&in6)) {
      key.bytes[0] = 4;
      std::memcpy(&key.bytes[1], in6.s6_addr + 12, 4);
      key.bits = 8 + 32;
    } else {
      key.bytes[0] = 6;
      std::memcpy(&key.bytes[1], in6.s6_addr, 16);
      key.bits = 8 + 128;
    }
  }
  return key;
}

}  // namespace

AccessList::Key AccessList::keyOf(const Cidr& prefix) {
  Key key;
  key.bytes[0] = prefix.family() == AF_INET6 ? 6 : 4;
  const size_t len = prefix.family() == AF_INET6 ? 16 : 4;
  std::memcpy(&key.bytes[1], prefix.bytes().data(), len);
  key.bits = 8 + prefix.prefixLength();
  return key;
}

AccessList::AccessList(std::vector<Rule> rules) {
  // Sort every rule by (length, key), keeping the order given among equal ones, so that the
  // first of a prefix listed twice is the one kept.
  struct Entry {
    Key key;
    size_t index;
  };
  std::vector<Entry> entries;
  entries.reserve(rules.size());
  for (size_t i = 0; i < rules.size(); ++i) {
    entries.push_back({keyOf(rules[i].prefix), i});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.key.bits != b.key.bits ? a.key.bits > b.key.bits : a.key.bytes < b.key.bytes;
  });
  std::vector<bool> keep(rules.size(), false);
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (i > 0 && entries[i - 1].key.bits == e.key.bits &&
        entries[i - 1].key.bytes == e.key.bytes) {
      continue;  // listed before
    }
    if (levels_.empty() || levels_.back().bits != e.key.bits) {
      levels_.push_back({e.key.bits, {}, {}});
    }
    levels_.back().keys.push_back(e.key.bytes);
    levels_.back().allow.push_back(rules[e.index].allow);
    keep[e.index] = true;
  }
  entries.clear();
  entries.shrink_to_fit();
  for (size_t i = 0; i < rules.size(); ++i) {
    if (keep[i]) {
      allows_ += rules[i].allow ? 1 : 0;
      rules_.push_back(rules[i]);
    }
  }
  default_allow_ = allows_ == 0;
}

bool AccessList::allows(const SockAddr& peer) const {
  const Key key = keyOfPeer(peer);
  if (key.bits == 0) {
    return default_allow_;  // not an IP peer: cannot happen on a TCP listener
  }
  for (const Level& level : levels_) {
    if (level.bits > key.bits) {
      continue;
    }
    const std::array<uint8_t, 17> want = masked(key.bytes, level.bits);
    auto hit = std::lower_bound(level.keys.begin(), level.keys.end(), want);
    if (hit != level.keys.end() && *hit == want) {
      return level.allow[static_cast<size_t>(hit - level.keys.begin())];
    }
  }
  return default_allow_;
}

bool AccessList::operator==(const AccessList& o) const {
  if (rules_.size() != o.rules_.size()) {
    return false;
  }
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (!(rules_[i].prefix == o.rules_[i].prefix) || rules_[i].allow != o.rules_[i].allow) {
      return false;
    }
  }
  return true;
}

void parseListFile(std::string_view text, std::vector<ListFileEntry>& out,
                   std::vector<ListFileProblem>& problems, size_t max_problems, size_t* more) {
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    ++line_no;
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    std::string_view line = text.substr(pos, end - pos);
    const size_t line_start = pos;
    pos = end + 1;
    auto problem = [&](size_t column, std::string what) {
      if (problems.size() < max_problems) {
        problems.push_back({line_no, column, std::move(what)});
      } else if (more != nullptr) {
        ++*more;
      }
    };
    if (const size_t nul = line.find('\0'); nul != std::string_view::npos) {
      problem(nul + 1, "a NUL byte; a list file is text, one prefix per line");
      continue;
    }
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos) {
      continue;  // blank or a comment
    }
    const size_t last = line.find_last_not_of(" \t");
    const std::string_view token = line.substr(first, last - first + 1);
    const size_t column = (line.data() + first) - (text.data() + line_start) + 1;
    if (token.find_first_of(" \t") != std::string_view::npos) {
      problem(column, "one address or prefix per line, got more than one word");
      continue;
    }
    std::string error;
    if (auto cidr = Cidr::parse(token, error)) {
      out.push_back({*cidr, line_no});
    } else {
      std::string shown(token.substr(0, 64));
      for (char& c : shown) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f) {
          c = '?';  // the message is one line of plain text
        }
      }
      problem(column, "\"" + shown + (token.size() > 64 ? "...\"" : "\"") + ": " + error);
    }
  }
}

}  // namespace weir::net
