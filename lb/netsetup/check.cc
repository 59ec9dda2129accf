#include "netsetup/check.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <sstream>

#include "netsetup/steps.h"

namespace weir::netsetup {
namespace {

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) {
    // "priority mangle;" and "policy accept;" end in a semicolon.
    if (!w.empty() && w.back() == ';') {
      w.pop_back();
    }
    out.push_back(w);
  }
  return out;
}

std::vector<std::string> lines(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  std::string l;
  while (std::getline(in, l)) {
    out.push_back(l);
  }
  return out;
}

// A number as nft or ip prints it ("0x00007765", "30565"); a mask after '/' is ignored.
std::optional<uint64_t> number(const std::string& text) {
  const std::string digits = text.substr(0, text.find('/'));
  if (digits.empty()) {
    return std::nullopt;
  }
  char* end = nullptr;
  const unsigned long long v = std::strtoull(digits.c_str(), &end, 0);
  if (end == nullptr || *end != '\0') {
    return std::nullopt;
  }
  return v;
}

bool sameAddress(int family, const std::string& a, const std::string& b) {
  in6_addr x{};
  in6_addr y{};
  return ::inet_pton(family, a.c_str(), &x) == 1 && ::inet_pton(family, b.c_str(), &y) == 1 &&
         std::memcmp(&x, &y, family == AF_INET6 ? 16 : 4) == 0;
}

// One rule of `nft list table` output, taken apart into what the check compares.
struct ListedRule {
  bool socket_transparent = false;  // "socket transparent 1"
  int daddr_family = 0;             // "ip daddr X" / "ip6 daddr X"
  std::string daddr;
  std::optional<uint64_t> dport;        // "tcp dport N"
  int tproxy_family = 0;                // "tproxy ip to :N" / "tproxy ip6 to :N"
  std::optional<uint64_t> tproxy_port;  // the port of the "to" target
  std::optional<uint64_t> mark;         // "meta mark set V" (or "mark set V")
  bool accept = false;
};

ListedRule parseRule(const std::vector<std::string>& w) {
  ListedRule r;
  auto at = [&](size_t i) -> const std::string& {
    static const std::string kNone;
    return i < w.size() ? w[i] : kNone;
  };
  for (size_t i = 0; i < w.size(); ++i) {
    const int family = w[i] == "ip6" ? AF_INET6 : w[i] == "ip" ? AF_INET : 0;
    if (w[i] == "socket" && at(i + 1) == "transparent" && at(i + 2) == "1") {
      r.socket_transparent = true;
    } else if (family != 0 && at(i + 1) == "daddr") {
      r.daddr_family = family;
      r.daddr = at(i + 2);
    } else if (w[i] == "tcp" && at(i + 1) == "dport") {
      r.dport = number(at(i + 2));
    } else if (w[i] == "tproxy") {
      const int to_family = at(i + 1) == "ip6" ? AF_INET6 : at(i + 1) == "ip" ? AF_INET : 0;
      const size_t to = to_family != 0 ? i + 2 : i + 1;
      if (at(to) == "to") {
        r.tproxy_family = to_family;
        const std::string& target = at(to + 1);  // ":80", "192.0.2.1:80", "[::1]:80"
        const size_t colon = target.rfind(':');
        if (colon != std::string::npos) {
          r.tproxy_port = number(target.substr(colon + 1));
        }
      }
    } else if (w[i] == "mark" && at(i + 1) == "set") {
      r.mark = number(at(i + 2));
    } else if (w[i] == "accept") {
      r.accept = true;
    }
  }
  return r;
}

bool isInterceptRule(const ListedRule& r, const Intercept& i, uint32_t mark) {
  if (r.tproxy_family != i.family || r.tproxy_port != i.port || r.dport != i.port ||
      r.mark != mark || !r.accept) {
    return false;
  }
  if (i.address.empty()) {
    return r.daddr_family == 0;
  }
  return r.daddr_family == i.family && sameAddress(i.family, r.daddr, i.address);
}

std::string firstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  return line.empty() ? "failed" : line;
}

std::string cannotRun(const std::string& program, const util::SysError& e) {
  if (e.code == ENOENT) {
    return program + " not found: install " + (program == "nft" ? "nftables" : "iproute2");
  }
  return "cannot run " + program + ": " + e.message();
}

void checkNft(const Plan& plan, Runner& runner, std::vector<std::string>& missing) {
  const std::string table = std::string("table ") + kNftTable;
  auto listed = runner.run({"nft", "list", "table", "inet", "weir"}, "");
  if (!listed) {
    missing.push_back(cannotRun("nft", listed.error()));
    return;
  }
  if (!listed->ok()) {
    if (listed->err.find("No such file or directory") != std::string::npos) {
      missing.push_back("no nftables " + table);
    } else {
      missing.push_back("cannot list nftables " + table + ": " + firstLine(listed->err));
    }
    return;
  }
  // Only the rules of a chain named prerouting on the prerouting hook count.
  std::vector<ListedRule> rules;
  bool hooked = false;
  std::string chain;
  for (const auto& line : lines(listed->out)) {
    const std::vector<std::string> w = words(line);
    if (w.size() >= 3 && w[0] == "chain" && w.back() == "{") {
      chain = w[1];
      continue;
    }
    if (w.size() == 1 && w[0] == "}") {
      chain.clear();
      continue;
    }
    if (chain != "prerouting" || w.empty()) {
      continue;
    }
    if (w[0] == "type") {
      hooked = hooked || (w.size() >= 4 && w[2] == "hook" && w[3] == "prerouting");
      continue;
    }
    rules.push_back(parseRule(w));
  }
  if (!hooked) {
    missing.push_back("no chain prerouting on the prerouting hook in nftables " + table);
    return;
  }
  bool marks_sockets = false;
  for (const auto& r : rules) {
    marks_sockets = marks_sockets || (r.socket_transparent && r.mark == plan.mark && r.accept);
  }
  if (!marks_sockets) {
    missing.push_back("no rule marking packets of transparent sockets in nftables " + table +
                      " ('socket transparent 1 meta mark set " + formatMark(plan.mark) +
                      " accept')");
  }
  for (const auto& intercept : plan.intercepts) {
    bool found = false;
    for (const auto& r : rules) {
      found = found || isInterceptRule(r, intercept, plan.mark);
    }
    if (!found) {
      missing.push_back("no tproxy rule for " + intercept.describe());
    }
  }
}

// Returns false if ip could not run at all (reported once, the other checks are skipped).
bool checkFamily(const Plan& plan, int family, Runner& runner,
                 std::vector<std::string>& missing) {
  const std::string name = family == AF_INET6 ? "IPv6" : "IPv4";
  const std::string mark = formatMark(plan.mark);
  const std::string table = std::to_string(plan.table);
  std::vector<std::string> ip{"ip"};
  if (family == AF_INET6) {
    ip.push_back("-6");
  }

  std::vector<std::string> show_rule = ip;
  show_rule.insert(show_rule.end(), {"rule", "show", "fwmark", mark, "lookup", table});
  auto rules = runner.run(show_rule, "");
  if (!rules) {
    missing.push_back(cannotRun("ip", rules.error()));
    return false;
  }
  const std::string rule_text = "'fwmark " + mark + " lookup " + table + "'";
  if (!rules->ok()) {
    missing.push_back("cannot list " + name + " rules: " + firstLine(rules->err));
  } else {
    bool found = false;
    for (const auto& line : lines(rules->out)) {
      const std::vector<std::string> w = words(line);
      bool mark_ok = false;
      bool table_ok = false;
      for (size_t i = 0; i + 1 < w.size(); ++i) {
        if (w[i] == "fwmark") {
          // No mask, or the full one ip prints as none.
          const size_t slash = w[i + 1].find('/');
          mark_ok = number(w[i + 1]) == plan.mark &&
                    (slash == std::string::npos ||
                     number(w[i + 1].substr(slash + 1)) == 0xffffffffu);
        } else if (w[i] == "lookup") {
          // A name from /etc/iproute2/rt_tables is what the filter asked for.
          table_ok = w[i + 1] == table || !number(w[i + 1]);
        }
      }
      found = found || (mark_ok && table_ok);
    }
    if (!found) {
      missing.push_back("no " + name + " rule " + rule_text);
    }
  }

  std::vector<std::string> show_routes = ip;
  show_routes.insert(show_routes.end(), {"route", "show", "table", table});
  auto routes = runner.run(show_routes, "");
  if (!routes) {
    missing.push_back(cannotRun("ip", routes.error()));
    return false;
  }
  const std::string no_route = "no local default route in " + name + " table " + table;
  if (!routes->ok()) {
    if (routes->err.find("table does not exist") != std::string::npos) {
      missing.push_back(no_route);
    } else {
      missing.push_back("cannot list " + name + " table " + table + ": " +
                        firstLine(routes->err));
    }
    return true;
  }
  bool found = false;
  for (const auto& line : lines(routes->out)) {
    const std::vector<std::string> w = words(line);
    if (w.size() >= 4 && w[0] == "local" && w[1] == "default") {
      for (size_t i = 2; i + 1 < w.size(); ++i) {
        found = found || (w[i] == "dev" && w[i + 1] == "lo");
      }
    }
  }
  if (!found) {
    missing.push_back(no_route);
  }
  return true;
}

}  // namespace

std::vector<std::string> missingPieces(const Plan& plan, Runner& runner) {
  std::vector<std::string> missing;
  if (plan.empty()) {
    return missing;
  }
  checkNft(plan, runner, missing);
  for (int family : {AF_INET, AF_INET6}) {
    if ((family == AF_INET ? plan.ipv4 : plan.ipv6) &&
        !checkFamily(plan, family, runner, missing)) {
      break;
    }
  }
  return missing;
}

std::vector<std::string> setupWarnings(const config::Config& cfg) {
  const Plan plan = makePlan(cfg);
  if (plan.empty()) {
    return {};
  }
  SystemRunner runner(std::chrono::seconds(5));
  std::vector<std::string> warnings;
  for (const auto& piece : missingPieces(plan, runner)) {
    warnings.push_back("transparent mode: " + piece + ", run: weir-netsetup up -c " + cfg.path);
  }
  return warnings;
}

}  // namespace weir::netsetup
