// Connection ids: every connection a worker accepts gets its own number, used in its [C<id>]
// log lines and in its access-log line (conn=<slot>-<id>), even though the worker reuses one
// Session object for connection after connection.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "support/net_io.h"
#include "support/temp_dir.h"
#include "weir_process.h"

namespace weir::test {
namespace {

// Every first capture group of `re` in `text`, in order.
std::vector<std::string> captures(const std::string& text, const std::regex& re) {
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
       ++it) {
    out.push_back((*it)[1].str());
  }
  return out;
}

TEST(ConnectionIds, ARecycledSessionGetsANewIdForEachConnection) {
  TempDir logs("weir-ids");
  const std::string refused = "127.0.0.1:" + std::to_string(pickFreePort());
  WeirConfig cfg;
  cfg.workers = "1";
  cfg.log_level = "debug";
  cfg.access_log = logs.file("access.log");
  cfg.pools.push_back({"dead", {{refused, 1}}, 0, "2s", "10m"});
  cfg.pools.back().lines.push_back("passive_fall = 0");  // keep connecting to it
  cfg.listeners.push_back({"front", "dead", 0, 4096});
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start());

  // One after the other: each connection's Session is back on the free list before the next
  // connection is accepted, so the worker serves them all with the same object.
  constexpr size_t kConnections = 3;
  std::vector<std::string> access_ids;
  for (size_t i = 0; i < kConnections; ++i) {
    std::string err;
    Fd fd = connectTcp(weir.addr(), seconds(5), &err);
    ASSERT_TRUE(fd) << err;
    const std::optional<SockAddr> local = SockAddr::local(fd.get());
    ASSERT_TRUE(local.has_value());
    const IoStatus s = readUntilClosed(fd.get(), deadlineIn(seconds(5)));
    ASSERT_TRUE(s == IoStatus::Eof || s == IoStatus::Reset) << toString(s);
    // This connection's access-log line, found by the client's port.
    const std::regex mine("(.* client=" + local->str() + " .*reason=connect-failed.*)");
    std::vector<std::string> lines;
    ASSERT_TRUE(waitFor(
        [&] {
          lines = captures(readTextFile(cfg.access_log), mine);
          return !lines.empty();
        },
        seconds(5)))
        << "no access-log line for client " << local->str() << ":\n"
        << readTextFile(cfg.access_log);
    ASSERT_EQ(lines.size(), 1U);
    const std::vector<std::string> id = captures(lines[0], std::regex(" conn=(\\S+) "));
    EXPECT_EQ(id.size(), 1U) << "no conn= in " << lines[0];
    access_ids.push_back(id.empty() ? "" : id[0]);
  }
  ASSERT_TRUE(weir.waitForLogLines("connect to " + refused + " failed", kConnections, seconds(5)))
      << weir.logTail();

  // Every failed connect's [C<id>] line (the readiness probe's included) names its own id.
  const std::vector<std::string> debug_ids =
      captures(weir.log(), std::regex("\\[C([^\\]]*)\\] connect to " + refused + " failed"));
  ASSERT_GE(debug_ids.size(), kConnections) << weir.logTail();
  EXPECT_EQ(std::set<std::string>(debug_ids.begin(), debug_ids.end()).size(), debug_ids.size())
      << "two connections share an id in the debug log:\n"
      << weir.logTail();

  EXPECT_EQ(std::set<std::string>(access_ids.begin(), access_ids.end()).size(), kConnections)
      << readTextFile(cfg.access_log);
  for (const std::string& id : access_ids) {
    // conn=<worker slot>-<id>, with the same id as the connection's [C<id>] line.
    ASSERT_EQ(id.rfind("0-", 0), 0U) << "conn=" << id;
    const std::string n = id.substr(2);
    EXPECT_NE(std::find(debug_ids.begin(), debug_ids.end(), n), debug_ids.end())
        << "no [C" << n << "] line for conn=" << id << "\n"
        << weir.logTail();
  }
}

}  // namespace
}  // namespace weir::test
