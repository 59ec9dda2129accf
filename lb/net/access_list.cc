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

size_t AccessList::KeyHash::operator()(const std::array<uint8_t, 17>& k) const {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (uint8_t b : k) {
    h = (h ^ b) * 1099511628211ULL;
  }
  return static_cast<size_t>(h);
}

AccessList::Key AccessList::keyOf(const Cidr& prefix) {
  Key key;
  key.bytes[0] = prefix.family() == AF_INET6 ? 6 : 4;
  const size_t len = prefix.family() == AF_INET6 ? 16 : 4;
  std::memcpy(&key.bytes[1], prefix.bytes().data(), len);
  key.bits = 8 + prefix.prefixLength();
  return key;
}

AccessList::AccessList(std::vector<Rule> rules) {
  std::vector<std::pair<unsigned, Level>> levels;
  for (Rule& rule : rules) {
    const Key key = keyOf(rule.prefix);
    auto level = std::find_if(levels.begin(), levels.end(),
                              [&](const auto& l) { return l.first == key.bits; });
    if (level == levels.end()) {
      levels.emplace_back(key.bits, Level{});
      level = levels.end() - 1;
    }
    if (!level->second.emplace(key.bytes, rule.allow).second) {
      continue;  // listed before
    }
    allows_ += rule.allow ? 1 : 0;
    rules_.push_back(rule);
  }
  std::sort(levels.begin(), levels.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  levels_ = std::move(levels);
  default_allow_ = allows_ == 0;
}

bool AccessList::allows(const SockAddr& peer) const {
  const Key key = keyOfPeer(peer);
  if (key.bits == 0) {
    return default_allow_;  // not an IP peer: cannot happen on a TCP listener
  }
  for (const auto& [bits, level] : levels_) {
    if (bits > key.bits) {
      continue;
    }
    auto hit = level.find(masked(key.bytes, bits));
    if (hit != level.end()) {
      return hit->second;
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
