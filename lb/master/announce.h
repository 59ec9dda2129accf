#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "config/config.h"
#include "net/route_table.h"

namespace weir::master {

// The announced VIP routes of one master (listeners.NAME.announce): keeps the kernel's
// announce table holding exactly the host routes the master wants, for a routing daemon (BIRD,
// FRR) to announce to the routers. What the master wants is worked out anew on each sync from
// its own state (serving or not, stopping, each announced pool's health); this class only
// makes the table match, and logs each change once.
//
// The first sync (and the first after the table changed) starts from what the table holds,
// not from nothing: routes a crashed master left are removed if not wanted, and a new master
// of a binary upgrade takes over the old master's routes without withdrawing them even for a
// moment. Every few seconds the table is read back, so a route someone else removed (an
// operator's `ip route flush table 4747`) comes back.
class Announcer {
public:
  // VIP -> why it is wanted ("listener web"), for the log.
  using Routes = std::map<net::HostAddr, std::string>;

  // Makes the table (global.announce_table, announce_protocol) hold exactly `want`; `why_not`
  // says, for the log, why a route being removed is no longer wanted. A route the kernel
  // refused is tried again on a later sync (at most every few seconds; each distinct error is
  // logged once).
  void sync(uint32_t table, uint8_t protocol, const Routes& want, const std::string& why_not,
            int64_t now_ms);
  // Removes every route this master announced, now.
  void withdrawAll(const std::string& why, int64_t now_ms);
  // Drops what this master knows without touching the table: a binary upgrade's new master
  // owns the routes from now on.
  void forget();
  // Routes in the table that this master put or found there.
  size_t announced() const { return installed_.size(); }
  bool holds(const net::HostAddr& vip) const { return installed_.count(vip) != 0; }
  bool active() const { return table_.has_value(); }

private:
  bool open(uint32_t table, uint8_t protocol, int64_t now_ms);
  void failed(const util::SysError& error, int64_t now_ms);

  std::optional<net::RouteTable> table_;
  std::set<net::HostAddr> installed_;
  int64_t retry_at_ = -1;   // after a refusal: no new attempt before then
  int64_t verify_at_ = -1;  // next time the table is read back (someone may have flushed it)
  std::string last_error_;
};

// `weir -w`: removes every route of the config's announce table and protocol, whoever put it
// there, printing each; for systemd's ExecStopPost, so that a master that was killed (and so
// could not withdraw) does not leave its node announced. Returns the exit code.
int withdrawRoutes(const config::Config& cfg);

}  // namespace weir::master
