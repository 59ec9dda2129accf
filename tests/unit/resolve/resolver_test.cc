#include "resolve/resolver.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "net/host_name.h"
#include "support/deadline.h"
#include "support/dns_server.h"
#include "support/fd.h"

namespace weir::resolve {
namespace {

using net::validHostName;
using test::Clock;
using test::DnsServer;
using test::Fd;
using test::milliseconds;
using test::seconds;

// dnsmasq needs no root to serve a high port, but the suite's rule is that a root run must
// not skip: a missing dnsmasq-base is then a failure.
#define START_DNS(server, hosts, ttl)                                            \
  std::string server##_why;                                                      \
  std::optional<DnsServer> server = DnsServer::start(hosts, ttl, &server##_why); \
  if (!server) {                                                                 \
    if (::geteuid() != 0) {                                                      \
      GTEST_SKIP() << "no DNS server, and not root: " << server##_why;           \
    }                                                                            \
    FAIL() << "no DNS server: " << server##_why;                                 \
  }

Options optionsFor(const DnsServer& server) {
  Options o;
  o.servers = {server.address()};
  o.timeout = milliseconds(500);
  return o;
}

std::vector<std::string> strings(const Answer& a) {
  std::vector<std::string> out;
  for (const net::SockAddr& s : a.addresses) {
    out.push_back(s.toString());
  }
  return out;
}

// A UDP socket bound on 127.0.0.1 that nobody reads: a nameserver that never answers.
struct SilentServer {
  Fd fd{::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
  net::SockAddr address;
  SilentServer() {
    address = *net::SockAddr::parse("127.0.0.1:0");
    EXPECT_EQ(::bind(fd.get(), address.get(), address.len()), 0);
    EXPECT_EQ(::getsockname(fd.get(), address.get(), address.lenPtr()), 0);
  }
};

TEST(ResolveNowTest, ReturnsEveryAAndAaaaSortedUniqueWithThePort) {
  START_DNS(dns,
            "127.0.0.3 app.weir.test\n"
            "::2 app.weir.test\n"
            "127.0.0.2 app.weir.test\n"
            "::1 app.weir.test\n"
            "127.0.0.2 app.weir.test\n"
            "127.0.0.9 other.weir.test\n",
            30);
  const Answer a = resolveNow(optionsFor(*dns), "app.weir.test", 8080, seconds(5));
  ASSERT_TRUE(a.ok) << a.error;
  EXPECT_EQ(strings(a), (std::vector<std::string>{"127.0.0.2:8080", "127.0.0.3:8080",
                                                  "[::1]:8080", "[::2]:8080"}));
  EXPECT_EQ(a.error, "");
}

TEST(ResolveNowTest, NameWithOnlyOneFamily) {
  START_DNS(dns, "127.0.0.5 v4.weir.test\n::5 v6.weir.test\n", 30);
  const Answer v4 = resolveNow(optionsFor(*dns), "v4.weir.test", 80, seconds(5));
  ASSERT_TRUE(v4.ok) << v4.error;
  EXPECT_EQ(strings(v4), std::vector<std::string>{"127.0.0.5:80"});
  const Answer v6 = resolveNow(optionsFor(*dns), "v6.weir.test.", 443, seconds(5));
  ASSERT_TRUE(v6.ok) << v6.error;
  EXPECT_EQ(strings(v6), std::vector<std::string>{"[::5]:443"});
}

TEST(ResolveNowTest, TtlIsTheServersInMilliseconds) {
  START_DNS(dns, "127.0.0.2 app.weir.test\n::1 app.weir.test\n", 7);
  const Answer a = resolveNow(optionsFor(*dns), "app.weir.test", 80, seconds(5));
  ASSERT_TRUE(a.ok) << a.error;
  EXPECT_EQ(a.ttl_ms, 7000);
}

TEST(ResolveNowTest, UnknownNameIsAnErrorNamingIt) {
  START_DNS(dns, "127.0.0.2 app.weir.test\n", 30);
  const Answer a = resolveNow(optionsFor(*dns), "nope.weir.test", 80, seconds(5));
  EXPECT_FALSE(a.ok);
  EXPECT_TRUE(a.addresses.empty());
  EXPECT_EQ(a.error, "nope.weir.test:80: Domain name not found");
}

TEST(ResolveNowTest, ANewHostsFileIsSeenByTheNextLookup) {
  START_DNS(dns, "127.0.0.2 app.weir.test\n", 1);
  const Options o = optionsFor(*dns);
  const Answer before = resolveNow(o, "app.weir.test", 80, seconds(5));
  ASSERT_TRUE(before.ok) << before.error;
  EXPECT_EQ(strings(before), std::vector<std::string>{"127.0.0.2:80"});

  dns->setHosts("127.0.0.7 app.weir.test\n::7 app.weir.test\n127.0.0.8 new.weir.test\n");
  // dnsmasq reloads on SIGHUP in its own time: no event to wait on, so poll the answers. (The
  // A and AAAA queries go out together: one answer may hold the old A and the new AAAA.)
  const std::vector<std::string> expected{"127.0.0.7:80", "[::7]:80"};
  Answer after;
  EXPECT_TRUE(test::waitFor(
      [&] {
        after = resolveNow(o, "app.weir.test", 80, seconds(2));
        return strings(after) == expected;
      },
      seconds(10)))
      << after.error << " " << ::testing::PrintToString(strings(after));
  const Answer added = resolveNow(o, "new.weir.test", 81, seconds(5));
  ASSERT_TRUE(added.ok) << added.error;
  EXPECT_EQ(strings(added), std::vector<std::string>{"127.0.0.8:81"});
}

TEST(ResolveNowTest, ManyAddressesComeOverTcpAndAreCapped) {
  // 1100 A records do not fit a UDP answer: c-ares retries over TCP (connect, then write
  // interest), and keeps the lowest kMaxAddresses.
  std::string hosts;
  for (int i = 0; i < 1100; ++i) {
    hosts += "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256) + " big.weir.test\n";
  }
  START_DNS(dns, hosts, 30);
  const Answer a = resolveNow(optionsFor(*dns), "big.weir.test", 80, seconds(10));
  ASSERT_TRUE(a.ok) << a.error;
  ASSERT_EQ(a.addresses.size(), kMaxAddresses);
  EXPECT_EQ(a.addresses.front().toString(), "10.0.0.0:80");
  EXPECT_EQ(a.addresses.back().toString(), "10.0.3.255:80");
}

TEST(ResolveNowTest, SilentServerFailsAfterTheRetries) {
  SilentServer silent;
  Options o;
  o.servers = {silent.address};
  o.timeout = milliseconds(200);
  const auto start = Clock::now();
  const Answer a = resolveNow(o, "app.weir.test", 80, seconds(10));
  const auto took = Clock::now() - start;
  EXPECT_FALSE(a.ok);
  EXPECT_EQ(a.error, "app.weir.test:80: Timeout while contacting DNS servers");
  // Two tries, the second with the timeout doubled: about 600 ms, far below the limit.
  EXPECT_GE(took, milliseconds(200));
  EXPECT_LT(took, seconds(3));
}

TEST(ResolveNowTest, LimitShorterThanTheRetriesEndsTheLookup) {
  SilentServer silent;
  Options o;
  o.servers = {silent.address};
  o.timeout = milliseconds(2000);
  const auto start = Clock::now();
  const Answer a = resolveNow(o, "app.weir.test", 80, milliseconds(300));
  const auto took = Clock::now() - start;
  EXPECT_FALSE(a.ok);
  EXPECT_EQ(a.error, "app.weir.test:80: no answer within 300 ms");
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, milliseconds(1500));
}

TEST(ResolveNowTest, ServerThatRefusesFailsAtOnce) {
  // A port nothing listens on: the kernel answers with ICMP port unreachable.
  SilentServer closed;
  const net::SockAddr address = closed.address;
  closed.fd.reset();
  Options o;
  o.servers = {address};
  const auto start = Clock::now();
  const Answer a = resolveNow(o, "app.weir.test", 80, seconds(10));
  EXPECT_FALSE(a.ok);
  EXPECT_NE(a.error.find("app.weir.test:80: "), std::string::npos) << a.error;
  EXPECT_LT(Clock::now() - start, seconds(3));
}

// The owner's side of Resolver, as the health checker has it: an epoll set that Watch keeps in
// step with c-ares's sockets, and a loop that waits for the nearest of fds and timeout.
class EpollLoop {
public:
  EpollLoop() : ep_(::epoll_create1(EPOLL_CLOEXEC)) {}

  Resolver::Watch watch() {
    return [this](int fd, bool read, bool write) {
      ++watch_calls_;
      if (!read && !write) {
        EXPECT_EQ(::epoll_ctl(ep_.get(), EPOLL_CTL_DEL, fd, nullptr), 0) << fd;
        fds_.erase(fd);
        return;
      }
      epoll_event ev{};
      ev.events = (read ? uint32_t{EPOLLIN} : 0) | (write ? uint32_t{EPOLLOUT} : 0);
      ev.data.fd = fd;
      const int op = fds_.count(fd) != 0 ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
      EXPECT_EQ(::epoll_ctl(ep_.get(), op, fd, &ev), 0) << fd;
      fds_.insert(fd);
    };
  }

  // Runs r's events until `until` holds or `limit` passes; returns until().
  bool run(Resolver& r, const std::function<bool()>& until, Clock::duration limit) {
    const test::Deadline deadline = test::deadlineIn(limit);
    while (!until() && Clock::now() < deadline) {
      const int64_t due = r.timeoutMs();
      const int left = test::msLeft(deadline);
      const int wait = due < 0 ? left : static_cast<int>(std::min<int64_t>(due, left));
      epoll_event events[8];
      const int n = ::epoll_wait(ep_.get(), events, 8, wait);
      for (int i = 0; i < n; ++i) {
        r.onReady(events[i].data.fd, events[i].events);
      }
      r.onTimeout();  // harmless when nothing is due
    }
    return until();
  }

  const std::set<int>& fds() const { return fds_; }
  int watchCalls() const { return watch_calls_; }

private:
  Fd ep_;
  std::set<int> fds_;
  int watch_calls_ = 0;
};

TEST(ResolverTest, SeveralConcurrentNamesInAnEpollLoop) {
  START_DNS(dns,
            "127.0.0.2 a.weir.test\n"
            "127.0.0.3 b.weir.test\n::3 b.weir.test\n"
            "::4 c.weir.test\n",
            30);
  EpollLoop loop;
  auto r = Resolver::create(optionsFor(*dns), loop.watch());
  ASSERT_TRUE(r) << r.error().message();
  Resolver& resolver = **r;
  EXPECT_EQ(resolver.timeoutMs(), -1);

  std::map<std::string, Answer> answers;
  for (const std::string name : {"a", "b", "c", "nope"}) {
    resolver.resolve(name + ".weir.test", 9000, [&answers, name](Answer a) {
      EXPECT_EQ(answers.count(name), 0u) << name << " answered twice";
      answers[name] = std::move(a);
    });
  }
  EXPECT_EQ(resolver.pending(), 4u);
  EXPECT_TRUE(answers.empty());  // nothing runs inside resolve()
  EXPECT_FALSE(loop.fds().empty());
  ASSERT_TRUE(loop.run(resolver, [&] { return answers.size() == 4; }, seconds(10)));

  EXPECT_EQ(strings(answers["a"]), std::vector<std::string>{"127.0.0.2:9000"});
  EXPECT_EQ(strings(answers["b"]), (std::vector<std::string>{"127.0.0.3:9000", "[::3]:9000"}));
  EXPECT_EQ(strings(answers["c"]), std::vector<std::string>{"[::4]:9000"});
  EXPECT_EQ(answers["a"].ttl_ms, 30000);
  EXPECT_FALSE(answers["nope"].ok);
  EXPECT_EQ(answers["nope"].error, "nope.weir.test:9000: Domain name not found");
  EXPECT_EQ(resolver.pending(), 0u);
  EXPECT_EQ(resolver.timeoutMs(), -1);
  // With nothing pending, c-ares closes its sockets and says so.
  EXPECT_TRUE(loop.fds().empty());
}

TEST(ResolverTest, DoneMayStartTheNextLookup) {
  START_DNS(dns, "127.0.0.2 a.weir.test\n127.0.0.3 b.weir.test\n", 30);
  EpollLoop loop;
  auto r = Resolver::create(optionsFor(*dns), loop.watch());
  ASSERT_TRUE(r) << r.error().message();
  Resolver& resolver = **r;
  std::vector<std::string> got;
  resolver.resolve("a.weir.test", 1, [&](Answer a) {
    got.push_back(a.ok ? a.addresses.at(0).toString() : a.error);
    resolver.resolve("b.weir.test", 2, [&](Answer b) {
      got.push_back(b.ok ? b.addresses.at(0).toString() : b.error);
    });
    EXPECT_EQ(resolver.pending(), 1u);
  });
  ASSERT_TRUE(loop.run(resolver, [&] { return got.size() == 2; }, seconds(10)));
  EXPECT_EQ(got, (std::vector<std::string>{"127.0.0.2:1", "127.0.0.3:2"}));
}

TEST(ResolverTest, AnAnswerReadyAtOnceWaitsForOnTimeout) {
  // c-ares refuses .onion names (RFC 7686) inside ares_getaddrinfo, without a query.
  EpollLoop loop;
  Options o;
  o.servers = {*net::SockAddr::parse("127.0.0.1:9")};
  auto r = Resolver::create(o, loop.watch());
  ASSERT_TRUE(r) << r.error().message();
  Resolver& resolver = **r;
  std::optional<Answer> answer;
  resolver.resolve("hidden.onion", 80, [&](Answer a) { answer = std::move(a); });
  EXPECT_FALSE(answer.has_value());
  EXPECT_EQ(resolver.pending(), 1u);
  EXPECT_EQ(resolver.timeoutMs(), 0);
  EXPECT_TRUE(loop.fds().empty());
  resolver.onTimeout();
  ASSERT_TRUE(answer.has_value());
  EXPECT_FALSE(answer->ok);
  EXPECT_EQ(answer->error, "hidden.onion:80: Domain name not found");
  EXPECT_EQ(resolver.pending(), 0u);
  EXPECT_EQ(resolver.timeoutMs(), -1);
}

TEST(ResolverTest, DestroyingDropsPendingLookupsQuietly) {
  SilentServer silent;
  EpollLoop loop;
  Options o;
  o.servers = {silent.address};
  auto r = Resolver::create(o, loop.watch());
  ASSERT_TRUE(r) << r.error().message();
  bool called = false;
  (*r)->resolve("app.weir.test", 80, [&](Answer) { called = true; });
  EXPECT_GT((*r)->timeoutMs(), 0);
  EXPECT_FALSE(loop.fds().empty());
  const int calls = loop.watchCalls();
  r->reset();
  EXPECT_FALSE(called);
  EXPECT_EQ(loop.watchCalls(), calls);  // the destructor does not call back
}

TEST(ValidHostNameTest, Table) {
  struct Case {
    const char* name;
    bool valid;
  };
  const std::string l63(63, 'a');
  const std::string l64(64, 'a');
  // 4 labels of 61 + 3 dots = 247, plus ".abcde" = 253.
  const std::string n253 = std::string(61, 'a') + "." + std::string(61, 'b') + "." +
                           std::string(61, 'c') + "." + std::string(61, 'd') + ".abcde";
  ASSERT_EQ(n253.size(), 253u);
  for (const Case& c : std::vector<Case>{
           {"app.weir.test", true},
           {"app.weir.test.", true},
           {"localhost", true},
           {"a", true},
           {"A-1.Example.COM", true},
           {"_http._tcp.weir.test", true},
           {"xn--bcher-kva.example", true},
           {"1a.example", true},
           {"example.123abc", true},
           {"", false},
           {".", false},
           {"..", false},
           {".app", false},
           {"app..test", false},
           {"app.test..", false},
           {"-app.test", false},
           {"app-.test", false},
           {"app.-test", false},
           {"app test", false},
           {"app/test", false},
           {"app:80", false},
           {"app*.test", false},
           {"ä.example", false},
           {"10.0.0.1", false},
           {"10.1", false},
           {"3232235777", false},
           {"host.123", false},
           {"::1", false},
           {"[::1]", false},
           {"fe80::1%eth0", false},
       }) {
    EXPECT_EQ(validHostName(c.name), c.valid) << '"' << c.name << '"';
  }
  EXPECT_TRUE(validHostName(l63 + ".test"));
  EXPECT_FALSE(validHostName(l64 + ".test"));
  EXPECT_TRUE(validHostName(n253));
  EXPECT_TRUE(validHostName(n253 + "."));
  EXPECT_FALSE(validHostName(n253 + "e"));
  EXPECT_FALSE(validHostName(std::string_view("app\0.test", 9)));
}

}  // namespace
}  // namespace weir::resolve
