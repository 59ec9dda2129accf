// weir-netsetup in a network namespace of the test's own: `up` installs exactly the rules a
// transparent config needs and changes nothing when run again, `check` and `weir -t` then
// find nothing missing, `down` leaves the namespace's ruleset, policy rules and routes as
// they were before `up` (also when run again), and `weir -t` warns once they are gone.
// Needs root (network namespaces, nftables); nft and ip come from packaging/deps.sh.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/netns.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "weir_process.h"

namespace weir::test {
namespace {

const std::string kNetsetupBin = WEIR_NETSETUP_BIN;

// A network namespace of its own (support/netns.h deletes it whatever the test did: a failed
// assertion returns through the destructor), and what these tests read of it.
class NetNs {
public:
  NetNs() : name_(topology_.addNamespace("netsetup")) {}

  // Runs `program args...` inside the namespace.
  RunResult exec(const std::string& program, const std::vector<std::string>& args) const {
    return runInNetns(name_, program, args, seconds(30));
  }

  // The namespace's nftables ruleset, IPv4 and IPv6 policy rules and every route of every
  // table, each section headed by the command that printed it.
  std::string snapshot() const {
    std::string out;
    for (const std::vector<std::string>& args :
         std::vector<std::vector<std::string>>{{"nft", "list", "ruleset"},
                                               {"ip", "rule", "show"},
                                               {"ip", "-6", "rule", "show"},
                                               {"ip", "route", "show", "table", "all"},
                                               {"ip", "-6", "route", "show", "table", "all"}}) {
      const std::vector<std::string> rest(args.begin() + 1, args.end());
      const RunResult r = exec(args[0] == "nft" ? nft_ : ip_, rest);
      EXPECT_EQ(r.exitCode(), 0) << args[0] << ": " << r.err;
      std::string text = r.out;
      // nft names protocols from /etc/protocols (netbase), which a minimal system lacks: it
      // then prints "meta l4proto 6" for "meta l4proto tcp". The same rule either way.
      for (size_t at; (at = text.find("meta l4proto 6 ")) != std::string::npos;) {
        text.replace(at, 15, "meta l4proto tcp ");
      }
      out += "## " + args[0] + "\n" + text;
    }
    return out;
  }

  const std::string& name() const { return name_; }

private:
  std::string ip_ = findProgram("ip");
  std::string nft_ = findProgram("nft");
  NetnsTopology topology_;
  std::string name_;
};

// Two transparent VIPs (IPv4 and IPv6), a wildcard transparent bind, an ordinary listener,
// and a source = "client" pool with IPv4 backends.
std::string transparentConfig() {
  return "[global]\n"
         "workers = 1\n"
         "transparent_mark = 0x7765\n"
         "transparent_table = 7765\n"
         "\n"
         "[listeners.vip]\n"
         "bind = [\"192.0.2.10:80\", \"[2001:db8::10]:443\", \"0.0.0.0:8080\"]\n"
         "pool = \"web\"\n"
         "transparent = true\n"
         "\n"
         "[listeners.plain]\n"
         "bind = \"127.0.0.1:9090\"\n"
         "pool = \"web\"\n"
         "\n"
         "[pools.web]\n"
         "source = \"client\"\n"
         "backends = [{ address = \"198.51.100.5:80\" }, { address = \"198.51.100.6:80\" }]\n";
}

constexpr const char* kMark = "0x7765";

class Netsetup : public ::testing::Test {
protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "network namespaces and nftables need root";
    }
    for (const char* tool : {"ip", "nft"}) {
      if (findProgram(tool).empty()) {
        GTEST_SKIP() << tool << " is not installed (packaging/deps.sh installs iproute2 and "
                     << "nftables)";
      }
    }
  }

  // weir-netsetup ACTION -c config inside `ns`.
  RunResult netsetup(const NetNs& ns, const std::string& action, const std::string& config) {
    return ns.exec(kNetsetupBin, {action, "-c", config});
  }
};

TEST_F(Netsetup, UpIsIdempotentAndDownLeavesNothingBehind) {
  TempDir dir("weir-netsetup");
  const std::string config = dir.write("weir.toml", transparentConfig());
  NetNs ns;
  ASSERT_EQ(ns.exec("ip", {"link", "set", "lo", "up"}).exitCode(), 0);
  const std::string before = ns.snapshot();

  const RunResult up = netsetup(ns, "up", config);
  ASSERT_EQ(up.exitCode(), 0) << up.out << up.err;
  EXPECT_NE(up.out.find("+ nft -f - <<'EOF'\n"), std::string::npos) << up.out;
  EXPECT_NE(up.out.find("+ ip rule add fwmark 0x7765 lookup 7765\n"), std::string::npos)
      << up.out;
  const std::string installed = ns.snapshot();
  for (const std::string& line :
       {std::string("\t\tmeta l4proto tcp socket transparent 1 meta mark set 0x00007765 accept\n"),
        std::string("\t\ttcp dport 8080 tproxy ip to :8080 meta mark set 0x00007765 accept\n"),
        std::string("\t\tip daddr 192.0.2.10 tcp dport 80 tproxy ip to :80 meta mark set "
                    "0x00007765 accept\n"),
        std::string("\t\tip6 daddr 2001:db8::10 tcp dport 443 tproxy ip6 to :443 meta mark set "
                    "0x00007765 accept\n"),
        std::string("from all fwmark ") + kMark + " lookup 7765\n",
        std::string("local default dev lo table 7765 scope host \n"),
        std::string("local default dev lo table 7765 metric 1024 pref medium\n")}) {
    EXPECT_NE(installed.find(line), std::string::npos) << "no \"" << line << "\" in\n"
                                                        << installed;
  }
  // One rule per family, not one per run.
  const RunResult rules4 = ns.exec("ip", {"rule", "show", "fwmark", kMark, "lookup", "7765"});
  const RunResult rules6 =
      ns.exec("ip", {"-6", "rule", "show", "fwmark", kMark, "lookup", "7765"});
  EXPECT_EQ(std::count(rules4.out.begin(), rules4.out.end(), '\n'), 1) << rules4.out;
  EXPECT_EQ(std::count(rules6.out.begin(), rules6.out.end(), '\n'), 1) << rules6.out;

  const RunResult again = netsetup(ns, "up", config);
  ASSERT_EQ(again.exitCode(), 0) << again.out << again.err;
  EXPECT_EQ(again.out.find("+ ip rule add"), std::string::npos) << again.out;
  EXPECT_EQ(ns.snapshot(), installed) << "a second up changed the setup";

  const RunResult check = netsetup(ns, "check", config);
  EXPECT_EQ(check.exitCode(), 0) << check.out << check.err;
  EXPECT_EQ(check.out, "transparent mode: kernel setup complete\n");
  const RunResult t = ns.exec(kWeirBin, {"-t", "-c", config});
  EXPECT_EQ(t.exitCode(), 0) << t.err;
  EXPECT_EQ(t.err.find("transparent mode"), std::string::npos) << t.err;

  const RunResult down = netsetup(ns, "down", config);
  ASSERT_EQ(down.exitCode(), 0) << down.out << down.err;
  EXPECT_EQ(ns.snapshot(), before) << "down left something behind";
  const RunResult down_again = netsetup(ns, "down", config);
  ASSERT_EQ(down_again.exitCode(), 0) << down_again.out << down_again.err;
  EXPECT_EQ(ns.snapshot(), before);

  const RunResult warned = ns.exec(kWeirBin, {"-t", "-c", config});
  EXPECT_EQ(warned.exitCode(), 0) << warned.err;
  EXPECT_NE(warned.err.find("weir: warning: transparent mode: no nftables table inet weir, "
                            "run: weir-netsetup up -c " + config + "\n"),
            std::string::npos)
      << warned.err;
  EXPECT_NE(warned.err.find("weir: warning: transparent mode: no IPv6 rule 'fwmark 0x7765 "
                            "lookup 7765', run: weir-netsetup up -c " + config + "\n"),
            std::string::npos)
      << warned.err;
  const RunResult missing = netsetup(ns, "check", config);
  EXPECT_EQ(missing.exitCode(), 1) << missing.out << missing.err;
  EXPECT_NE(missing.out.find("no local default route in IPv4 table 7765\n"), std::string::npos)
      << missing.out;
}

TEST_F(Netsetup, ShowRunsNothing) {
  TempDir dir("weir-netsetup");
  const std::string config = dir.write("weir.toml", transparentConfig());
  NetNs ns;
  ASSERT_EQ(ns.exec("ip", {"link", "set", "lo", "up"}).exitCode(), 0);
  const std::string before = ns.snapshot();
  const RunResult show = netsetup(ns, "show", config);
  ASSERT_EQ(show.exitCode(), 0) << show.err;
  EXPECT_NE(show.out.find("+ ip -6 rule add fwmark 0x7765 lookup 7765  # unless `ip -6 rule "
                          "show fwmark 0x7765 lookup 7765` lists one\n"),
            std::string::npos)
      << show.out;
  EXPECT_NE(show.out.find("\t\tip daddr 192.0.2.10 tcp dport 80 tproxy ip to :80 meta mark set "
                          "0x7765 accept\n"),
            std::string::npos)
      << show.out;
  const RunResult dry = ns.exec(kNetsetupBin, {"down", "--dry-run", "-c", config});
  ASSERT_EQ(dry.exitCode(), 0) << dry.err;
  EXPECT_EQ(ns.snapshot(), before);
}

TEST_F(Netsetup, FailingCommandStopsWithItsError) {
  TempDir dir("weir-netsetup");
  const std::string config = dir.write("weir.toml", transparentConfig());
  NetNs ns;
  // With lo down the kernel refuses an IPv6 route through it.
  ASSERT_EQ(ns.exec("ip", {"link", "set", "lo", "down"}).exitCode(), 0);
  const RunResult up = netsetup(ns, "up", config);
  EXPECT_EQ(up.exitCode(), 1) << up.out << up.err;
  EXPECT_NE(up.err.find("weir-netsetup: ip -6 route replace local ::/0 dev lo table 7765: "
                        "exit 2:\n"),
            std::string::npos)
      << up.err;
  EXPECT_EQ(up.out.find("+ nft"), std::string::npos) << "went on after the failure:\n" << up.out;
  const RunResult down = netsetup(ns, "down", config);
  EXPECT_EQ(down.exitCode(), 0) << down.out << down.err;
}

TEST_F(Netsetup, PlainConfigNeedsNothing) {
  TempDir dir("weir-netsetup");
  const std::string config = dir.write("weir.toml",
                                       "[listeners.web]\n"
                                       "bind = \"127.0.0.1:9090\"\n"
                                       "pool = \"web\"\n"
                                       "[pools.web]\n"
                                       "backends = [{ address = \"198.51.100.5:80\" }]\n");
  NetNs ns;
  const std::string before = ns.snapshot();
  for (const char* action : {"up", "check", "show"}) {
    const RunResult r = netsetup(ns, action, config);
    EXPECT_EQ(r.exitCode(), 0) << action << ": " << r.err;
    EXPECT_EQ(r.out, "no listener or pool uses transparent mode\n") << action;
  }
  EXPECT_EQ(ns.snapshot(), before);
}

TEST_F(Netsetup, BadConfigExits2WithTheLocatedError) {
  TempDir dir("weir-netsetup");
  const std::string config = dir.write("weir.toml", "[listeners.web]\nbind = 5\n");
  const RunResult r = run(kNetsetupBin, {"show", "-c", config}, seconds(10));
  EXPECT_EQ(r.exitCode(), 2) << r.err;
  EXPECT_NE(r.err.find(config + ":2:"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace weir::test
