// Backends by DNS name through the real weir: a pool backend "NAME:PORT" becomes every A and
// AAAA address the name returns, asked of a dnsmasq the test runs on 127.0.0.1 with a hosts
// file it rewrites. Addresses come and go without a reload, within the answer's TTL; a name
// that stops resolving keeps its addresses; a reload keeps them too; `weir -t` warns about a
// name that does not resolve; a first start holds its accepts until the name is answered.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "http_client.h"
#include "support/dns_server.h"
#include "support/identify_line.h"
#include "support/net_io.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

constexpr const char* kName = "app.weir.test";
const std::string kWeirctlBin = WEIRCTL_BIN;
// Each worker runs its own round-robin, and the kernel spreads connections over the two
// workers: of 20 or 30 connections over 2 or 3 backends, each backend gets at least this many.
constexpr int kFairShare = 5;

// Starts dnsmasq for the test, or fails it (as root, where dnsmasq-base is installed by
// packaging/deps.sh) or skips it (elsewhere, saying why).
std::optional<DnsServer> startDns(const std::string& hosts, int ttl_s) {
  std::string error;
  auto dns = DnsServer::start(hosts, ttl_s, &error);
  if (!dns) {
    ADD_FAILURE() << "cannot run dnsmasq (packaging/deps.sh installs dnsmasq-base): " << error;
  }
  return dns;
}

// Which backend (its identify name) each of `count` new connections through weir reached;
// "" counts connections that got no identify line.
std::map<std::string, int> tally(const SockAddr& addr, int count) {
  std::map<std::string, int> seen;
  for (int i = 0; i < count; ++i) {
    Fd fd = connectTcp(addr, seconds(5));
    std::string who;
    if (fd.valid()) {
      if (auto line = readIdentifyLine(fd.get(), deadlineIn(seconds(5)))) {
        who = line->name();
      }
    }
    ++seen[who];
  }
  return seen;
}

std::string describe(const std::map<std::string, int>& seen) {
  std::string out;
  for (const auto& [name, n] : seen) {
    out += (name.empty() ? std::string("(none)") : name) + "=" + std::to_string(n) + " ";
  }
  return out;
}

int count(const std::map<std::string, int>& seen, const std::string& name) {
  auto it = seen.find(name);
  return it == seen.end() ? 0 : it->second;
}

// The metrics series of slot `k` of the pool's named backend holding `address`.
std::string resolvedSeries(uint16_t port, int k, const std::string& address) {
  return "weir_backend_resolved_info{pool=\"back\",backend=\"" + std::string(kName) + ":" +
         std::to_string(port) + "#" + std::to_string(k) + "\",address=\"" + address + "\"}";
}

// Whether the metrics listener shows `address` in some slot of the named backend.
bool holds(uint16_t metrics, uint16_t port, const std::string& address, int slots) {
  const std::string text = scrape(metrics);
  for (int k = 1; k <= slots; ++k) {
    if (sample(text, resolvedSeries(port, k, address)).value_or(0) == 1) {
      return true;
    }
  }
  return false;
}

struct Fixture {
  std::vector<TestServer> servers;  // identify servers named by their address
  uint16_t port = 0;
};

// Identify servers on `hosts` (IPv4 or IPv6 addresses), all on one port, as a name's
// addresses are.
Fixture startBackends(const std::vector<std::string>& hosts) {
  Fixture f;
  for (const std::string& host : hosts) {
    f.servers.push_back(
        startTestServer(kTestsrvBin, "identify", {"--name", "at-" + host}, host, f.port));
    f.port = f.servers.back().port;
  }
  return f;
}

WeirConfig namedConfig(const DnsServer& dns, uint16_t port, uint16_t metrics,
                       const std::string& interval, unsigned max_addresses) {
  WeirConfig cfg = WeirConfig::simple({}, 2);
  cfg.pools.front().backends.push_back(
      {std::string(kName) + ":" + std::to_string(port), 1, 0, max_addresses});
  cfg.global_lines.push_back("resolvers = [\"" + dns.address().toString() + "\"]");
  cfg.global_lines.push_back("resolve_interval = \"" + interval + "\"");
  cfg.global_lines.push_back("metrics = \"127.0.0.1:" + std::to_string(metrics) + "\"");
  return cfg;
}

TEST(DnsBackends, EveryAddressIsABackendAndTheyFollowTheNameWithoutAReload) {
  Fixture f = startBackends({"127.0.0.21", "127.0.0.22", "127.0.0.23", "::1"});
  // A TTL of 1 s and a resolve_interval of 30 s: changes seen within seconds prove the TTL
  // decides when to ask again.
  auto dns = startDns(std::string("127.0.0.21 ") + kName + "\n127.0.0.22 " + kName + "\n::1 " +
                          kName + "\n",
                      1);
  ASSERT_TRUE(dns);
  const uint16_t metrics = pickFreePort();
  WeirProcess weir(namedConfig(*dns, f.port, metrics, "30s", 4));
  ASSERT_TRUE(weir.start());
  const std::string a = "127.0.0.21:" + std::to_string(f.port);
  const std::string b = "127.0.0.22:" + std::to_string(f.port);
  const std::string c = "127.0.0.23:" + std::to_string(f.port);
  const std::string v6 = "[::1]:" + std::to_string(f.port);
  ASSERT_TRUE(waitFor([&] { return holds(metrics, f.port, v6, 4); }, seconds(10)))
      << weir.logTail();

  // Round-robin over the three addresses: every one of them serves.
  auto seen = tally(weir.addr(), 30);
  EXPECT_EQ(count(seen, ""), 0) << describe(seen);
  EXPECT_GE(count(seen, "at-127.0.0.21"), kFairShare) << describe(seen);
  EXPECT_GE(count(seen, "at-127.0.0.22"), kFairShare) << describe(seen);
  EXPECT_GE(count(seen, "at-::1"), kFairShare) << describe(seen);

  // A connection to b stays open while b leaves the name.
  Fd held;
  for (int i = 0; i < 6 && !held.valid(); ++i) {
    Fd fd = connectTcp(weir.addr(), seconds(5));
    ASSERT_TRUE(fd.valid());
    auto line = readIdentifyLine(fd.get(), deadlineIn(seconds(5)));
    ASSERT_TRUE(line);
    if (line->name() == "at-127.0.0.22") {
      held = std::move(fd);
    }
  }
  ASSERT_TRUE(held.valid()) << "round-robin never reached 127.0.0.22";

  // b goes, c comes: no reload, only the hosts file and the TTL.
  dns->setHosts(std::string("127.0.0.21 ") + kName + "\n127.0.0.23 " + kName + "\n::1 " + kName +
                "\n");
  const auto changed = Clock::now();
  ASSERT_TRUE(waitFor([&] { return holds(metrics, f.port, c, 4) && !holds(metrics, f.port, b, 4); },
                      seconds(10)))
      << weir.logTail();
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - changed).count();
  std::printf("dns backends: the new address served %lld ms after the hosts file changed\n",
              static_cast<long long>(took));
  EXPECT_LT(took, 5000) << "the 1 s TTL should have cut the 30 s interval short";
  EXPECT_EQ(weir.countLogLines(b + ": no longer returned by"), 1u) << weir.logTail();
  EXPECT_EQ(weir.countLogLines("the name resolves to " + c), 1u) << weir.logTail();
  EXPECT_EQ(weir.countLogLines("reloaded"), 0u);

  seen = tally(weir.addr(), 30);
  EXPECT_EQ(count(seen, ""), 0) << describe(seen);
  EXPECT_EQ(count(seen, "at-127.0.0.22"), 0) << describe(seen);
  EXPECT_GE(count(seen, "at-127.0.0.21"), kFairShare) << describe(seen);
  EXPECT_GE(count(seen, "at-127.0.0.23"), kFairShare) << describe(seen);
  EXPECT_GE(count(seen, "at-::1"), kFairShare) << describe(seen);

  // The connection to b still carries bytes both ways.
  EXPECT_EQ(echoRoundTrip(held.get(), "still here", deadlineIn(seconds(5))), IoStatus::Ok);
}

TEST(DnsBackends, ANameThatStopsResolvingKeepsItsAddressesAndAReloadKeepsThemToo) {
  Fixture f = startBackends({"127.0.0.24", "127.0.0.25"});
  auto dns = startDns(std::string("127.0.0.24 ") + kName + "\n127.0.0.25 " + kName + "\n", 1);
  ASSERT_TRUE(dns);
  const uint16_t metrics = pickFreePort();
  WeirConfig cfg = namedConfig(*dns, f.port, metrics, "1s", 0);  // default max_addresses
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start());
  cfg = weir.config();
  const std::string a = "127.0.0.24:" + std::to_string(f.port);
  const std::string b = "127.0.0.25:" + std::to_string(f.port);
  ASSERT_TRUE(waitFor([&] { return holds(metrics, f.port, a, 16) && holds(metrics, f.port, b, 16); },
                      seconds(10)))
      << weir.logTail();

  // NXDOMAIN from now on: a warning, once, and both addresses stay.
  dns->setHosts("");
  ASSERT_TRUE(weir.waitForLogLines("backend name " + std::string(kName) + ":" +
                                       std::to_string(f.port) + ": Domain name not found",
                                   1, seconds(10)))
      << weir.logTail();
  auto seen = tally(weir.addr(), 20);
  EXPECT_EQ(count(seen, ""), 0) << describe(seen);
  EXPECT_GE(count(seen, "at-127.0.0.24"), kFairShare) << describe(seen);
  EXPECT_GE(count(seen, "at-127.0.0.25"), kFairShare) << describe(seen);

  // The same while dnsmasq is gone altogether (no answer at all: the lookup times out).
  const pid_t dns_pid = dns->pid();
  dns.reset();
  ASSERT_NE(::kill(dns_pid, 0), 0) << "dnsmasq still runs";

  // A reload while the name does not resolve: the new generation starts with the addresses
  // the old one had (carried over in shared memory), so it serves at once.
  ASSERT_TRUE(reload(weir, cfg, 1));
  ASSERT_TRUE(weir.waitForLogLines("generation 1 draining", 1, seconds(10))) << weir.logTail();
  EXPECT_TRUE(holds(metrics, f.port, a, 16) && holds(metrics, f.port, b, 16)) << scrape(metrics);
  seen = tally(weir.addr(), 20);
  EXPECT_EQ(count(seen, ""), 0) << describe(seen);
  EXPECT_GE(count(seen, "at-127.0.0.24"), kFairShare) << describe(seen);
  EXPECT_GE(count(seen, "at-127.0.0.25"), kFairShare) << describe(seen);
  // The new checker warns for itself once (its first lookup fails).
  EXPECT_TRUE(weir.waitForLogLines("does not resolve", 2, seconds(15))) << weir.logTail();
}

// A UDP relay in front of a DNS server that holds every query for `delay` before passing it
// on, and passes every reply straight back: a slow resolver. Bounded: it stops with the test,
// at the latest after 60 s.
class SlowResolver {
public:
  SlowResolver(const std::string& upstream, Clock::duration delay) : delay_(delay) {
    const SockAddr here = *SockAddr::from("127.0.0.1", 0);
    const SockAddr there = *SockAddr::parse(upstream);
    down_ = Fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    up_ = Fd(::socket(there.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!down_ || !up_ || ::bind(down_.get(), here.get(), here.len) != 0 ||
        ::connect(up_.get(), there.get(), there.len) != 0) {
      throw std::runtime_error("slow resolver: " + errnoText(errno));
    }
    address_ = *SockAddr::local(down_.get());
    thread_ = std::thread([this] { run(); });
  }
  ~SlowResolver() {
    stop_ = true;
    thread_.join();
  }
  std::string address() const { return address_.str(); }
  // Replies passed back so far.
  size_t replies() const { return replies_; }

private:
  struct Query {
    Clock::time_point due;
    std::string bytes;
    SockAddr from;
  };
  void run() {
    const Deadline deadline = deadlineIn(seconds(60));
    std::vector<Query> held;
    std::map<uint16_t, SockAddr> asker;  // by DNS message id
    char buf[4096];
    while (!stop_ && Clock::now() < deadline) {
      pollfd p[2] = {{down_.get(), POLLIN, 0}, {up_.get(), POLLIN, 0}};
      (void)::poll(p, 2, 10);
      if (p[0].revents & POLLIN) {
        Query q;
        q.from.len = sizeof(q.from.storage);
        const ssize_t n = ::recvfrom(down_.get(), buf, sizeof(buf), 0, q.from.get(), &q.from.len);
        if (n >= 2) {
          q.due = Clock::now() + delay_;
          q.bytes.assign(buf, static_cast<size_t>(n));
          held.push_back(std::move(q));
        }
      }
      if (p[1].revents & POLLIN) {
        const ssize_t n = ::recv(up_.get(), buf, sizeof(buf), 0);
        const auto who = n >= 2 ? asker.find(static_cast<uint16_t>(
                                      static_cast<uint8_t>(buf[0]) << 8 | static_cast<uint8_t>(buf[1])))
                                : asker.end();
        if (who != asker.end() &&
            ::sendto(down_.get(), buf, static_cast<size_t>(n), 0, who->second.get(),
                     who->second.len) == n) {
          ++replies_;
        }
      }
      const auto now = Clock::now();
      for (auto it = held.begin(); it != held.end();) {
        if (it->due > now) {
          ++it;
          continue;
        }
        const uint16_t id = static_cast<uint16_t>(static_cast<uint8_t>(it->bytes[0]) << 8 |
                                                  static_cast<uint8_t>(it->bytes[1]));
        asker[id] = it->from;
        (void)::send(up_.get(), it->bytes.data(), it->bytes.size(), 0);
        it = held.erase(it);
      }
    }
  }

  Clock::duration delay_;
  Fd down_;
  Fd up_;
  SockAddr address_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> replies_{0};
  std::thread thread_;
};

// One listener whose pool's only backend is kName on `port`, asking `slow` for it.
WeirConfig slowNameConfig(const SlowResolver& slow, uint16_t port) {
  WeirConfig cfg = WeirConfig::simple({}, 2);
  cfg.pools.front().backends.push_back({std::string(kName) + ":" + std::to_string(port), 1});
  cfg.global_lines.push_back("resolvers = [\"" + slow.address() + "\"]");
  return cfg;
}

// What a held client got (its backend's identify line, or nothing if closed) and how long
// after `since` it came; prints that time as "dns: <what> was served N ms after <since_what>".
struct Served {
  std::optional<IdentifyLine> line;
  milliseconds after{0};
};
Served awaitServed(int fd, Clock::time_point since, const char* what, const char* since_what) {
  Served s;
  s.line = readIdentifyLine(fd, deadlineIn(seconds(10)));
  s.after = std::chrono::duration_cast<milliseconds>(Clock::now() - since);
  std::printf("dns: %s was served %lld ms after %s\n", what,
              static_cast<long long>(s.after.count()), since_what);
  return s;
}

TEST(DnsBackends, AFirstStartHoldsAcceptsUntilTheNameIsAnswered) {
  // The resolver answers 1.5 s late. weir is up long before that; a client that connects at
  // once is held in the accept queue and served once the answer is in, not closed for want of
  // a backend.
  constexpr auto kDelay = milliseconds(1500);
  Fixture f = startBackends({"127.0.0.29"});
  auto dns = startDns(std::string("127.0.0.29 ") + kName + "\n", 60);
  ASSERT_TRUE(dns);
  SlowResolver slow(dns->address().toString(), kDelay);
  WeirProcess weir(slowNameConfig(slow, f.port));
  const auto started = Clock::now();
  ASSERT_TRUE(weir.start());
  Fd fd = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(fd.valid());
  // Otherwise this test proves nothing: weir took longer to start than the resolver to answer.
  ASSERT_EQ(slow.replies(), 0u) << "weir took "
                                << std::chrono::duration_cast<milliseconds>(Clock::now() - started)
                                       .count()
                                << " ms to start";
  const Served served =
      awaitServed(fd.get(), started, "a connection made before the first answer", "start");
  ASSERT_TRUE(served.line.has_value()) << "closed instead of held\n" << weir.logTail();
  EXPECT_EQ(served.line->name(), "at-127.0.0.29");
  EXPECT_GE(served.after, kDelay);
  EXPECT_GE(slow.replies(), 1u);
  EXPECT_EQ(weir.countLogLines("accepting anyway"), 0u);
}

TEST(DnsBackends, AReloadHoldsOnlyTheListenersOfANameItAdds) {
  // A reload adds listener "added", whose pool has a second name, and the resolver answers
  // 1.5 s late. A client of "added" that connects right after the reload is held until the
  // answer, not closed for want of a backend; "front", whose name the reload carried over,
  // serves at once meanwhile.
  constexpr auto kDelay = milliseconds(1500);
  constexpr const char* kAddedName = "added.weir.test";
  Fixture f = startBackends({"127.0.0.35", "127.0.0.36"});
  auto dns = startDns(std::string("127.0.0.35 ") + kName + "\n127.0.0.36 " + kAddedName + "\n",
                      60);
  ASSERT_TRUE(dns);
  SlowResolver slow(dns->address().toString(), kDelay);
  const WeirConfig cfg = slowNameConfig(slow, f.port);
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start());
  auto served = [&](const SockAddr& addr) -> std::string {
    Fd fd = connectTcp(addr, seconds(5));
    if (!fd.valid()) {
      return "(no connection)";
    }
    const auto line = readIdentifyLine(fd.get(), deadlineIn(seconds(10)));
    return line ? line->name() : "(closed)";
  };
  // The first start holds "front" until its name is answered.
  ASSERT_EQ(served(weir.addr("front")), "at-127.0.0.35") << weir.logTail();

  WeirConfig next = cfg;
  next.listeners.front().port = weir.port("front");
  next.pools.push_back({"more", {{std::string(kAddedName) + ":" + std::to_string(f.port), 1}}});
  next.listeners.push_back({"added", "more"});
  const size_t answered = slow.replies();
  ASSERT_TRUE(reload(weir, next, 1)) << weir.logTail();
  const auto reloaded = Clock::now();
  Fd held = connectTcp(weir.addr("added"), seconds(5));
  ASSERT_TRUE(held.valid());
  // The name carried over serves before the new generation's first answers are in.
  EXPECT_EQ(served(weir.addr("front")), "at-127.0.0.35") << weir.logTail();
  ASSERT_EQ(slow.replies(), answered)
      << "the new generation's answers came before the test could look: it proves nothing";
  const Served added = awaitServed(held.get(), reloaded, "a client of a name added by a reload",
                                  "the reload");
  ASSERT_TRUE(added.line.has_value()) << "closed instead of held\n" << weir.logTail();
  EXPECT_EQ(added.line->name(), "at-127.0.0.36");
  EXPECT_GT(slow.replies(), answered);
  EXPECT_EQ(weir.countLogLines("accepting anyway"), 0u);
}

TEST(DnsBackends, MoreAddressesThanSlotsUseTheFirstAndWarn) {
  Fixture f = startBackends({"127.0.0.26", "127.0.0.27", "127.0.0.28"});
  auto dns = startDns(std::string("127.0.0.26 ") + kName + "\n127.0.0.27 " + kName +
                          "\n127.0.0.28 " + kName + "\n",
                      1);
  ASSERT_TRUE(dns);
  const uint16_t metrics = pickFreePort();
  WeirProcess weir(namedConfig(*dns, f.port, metrics, "1s", 2));
  ASSERT_TRUE(weir.start());
  ASSERT_TRUE(weir.waitForLogLines("returns 3 addresses, 1 more than its max_addresses = 2", 1,
                                   seconds(10)))
      << weir.logTail();
  auto seen = tally(weir.addr(), 20);
  EXPECT_EQ(count(seen, ""), 0) << describe(seen);
  EXPECT_EQ(count(seen, "at-127.0.0.28"), 0) << describe(seen);
  EXPECT_GE(count(seen, "at-127.0.0.26"), kFairShare) << describe(seen);
  EXPECT_GE(count(seen, "at-127.0.0.27"), kFairShare) << describe(seen);
  // Said once, not at every lookup.
  ASSERT_TRUE(weir.waitForLogLines("the name resolves to", 2, seconds(1)));
  EXPECT_EQ(weir.countLogLines("more than its max_addresses"), 1u);
}

TEST(DnsBackends, WeirctlDrainsASlotByItsAddressOrItsName) {
  Fixture f = startBackends({"127.0.0.31", "127.0.0.32"});
  auto dns = startDns(std::string("127.0.0.31 ") + kName + "\n127.0.0.32 " + kName + "\n", 1);
  ASSERT_TRUE(dns);
  const uint16_t metrics = pickFreePort();
  TempDir run_dir("weir-run");
  WeirConfig cfg = namedConfig(*dns, f.port, metrics, "30s", 2);
  cfg.global_lines.push_back("control_socket = \"" + run_dir.file("weir.sock") + "\"");
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start());
  const std::string a = "127.0.0.31:" + std::to_string(f.port);
  const std::string slot1 = std::string(kName) + ":" + std::to_string(f.port) + "#1";
  ASSERT_TRUE(waitFor([&] { return holds(metrics, f.port, a, 2); }, seconds(10)))
      << weir.logTail();
  auto weirctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"-c", weir.configPath()});
    return run(kWeirctlBin, args, seconds(30));
  };

  // `weirctl backends` names each slot and the address in it.
  RunResult listed = weirctl({"backends"});
  ASSERT_EQ(listed.exitCode(), 0) << listed.err;
  EXPECT_NE(listed.out.find(slot1 + " (" + a + ")"), std::string::npos) << listed.out;

  // Drained by the address it holds (sorted: 127.0.0.31 is slot 1), the reply names the slot.
  RunResult drained = weirctl({"drain", "back", a});
  ASSERT_EQ(drained.exitCode(), 0) << drained.err;
  EXPECT_NE(drained.out.find("backend " + slot1 + " drained"), std::string::npos)
      << drained.out;
  auto seen = tally(weir.addr(), 10);
  EXPECT_EQ(count(seen, "at-127.0.0.32"), 10) << describe(seen);

  // And undrained by its name.
  RunResult undrained = weirctl({"undrain", "back", slot1});
  ASSERT_EQ(undrained.exitCode(), 0) << undrained.err;
  seen = tally(weir.addr(), 20);
  EXPECT_GE(count(seen, "at-127.0.0.31"), kFairShare) << describe(seen);

  // An address no slot holds is no backend of the pool.
  RunResult unknown = weirctl({"drain", "back", "127.0.0.33:" + std::to_string(f.port)});
  EXPECT_NE(unknown.exitCode(), 0);
  EXPECT_NE((unknown.out + unknown.err).find("has no backend"), std::string::npos)
      << unknown.out << unknown.err;
}

TEST(DnsBackends, ConfigTestWarnsAboutANameThatDoesNotResolve) {
  auto dns = startDns(std::string("127.0.0.29 ") + kName + "\n", 1);
  ASSERT_TRUE(dns);
  TempDir dir;
  const std::string path = dir.file("weir.toml");
  const std::string text =
      "[global]\nresolvers = [\"" + dns->address().toString() +
      "\"]\n[listeners.front]\nbind = [\"127.0.0.1:1\"]\npool = \"back\"\n[pools.back]\n"
      "backends = [\n  { address = \"" + std::string(kName) + ":8080\" },\n"
      "  { address = \"missing.weir.test:8080\" },\n]\n";
  dir.write("weir.toml", text);
  const RunResult r = run(kWeirBin, {"-t", "-c", path}, seconds(30));
  EXPECT_EQ(r.exitCode(), 0) << r.err;
  EXPECT_NE(r.err.find("pool back: " + std::string(kName) +
                       ":8080 resolves to 1 address (127.0.0.29:8080)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("weir: warning: " + path +
                       ":9:15: pools.back.backends[1].address: missing.weir.test:8080: "
                       "Domain name not found"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("test is successful"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace weir::test
