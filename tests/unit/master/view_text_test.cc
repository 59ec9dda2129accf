// weirctl status and backends as text, from a View made by hand.
#include "master/view_text.h"

#include <gtest/gtest.h>

#include <string>

namespace weir::master {
namespace {

TEST(ViewText, Ages) {
  EXPECT_EQ(formatAge(-1), "never");
  EXPECT_EQ(formatAge(0), "0s ago");
  EXPECT_EQ(formatAge(59999), "59s ago");
  EXPECT_EQ(formatAge(125000), "2m5s ago");
  EXPECT_EQ(formatAge(3720000), "1h2m ago");
  EXPECT_EQ(formatAge(273600000), "3d4h ago");
}

View sample() {
  View view;
  view.master_pid = 4242;
  view.steering = "least-loaded";
  view.steering_bpf = true;
  view.reloads = 1;
  GenerationView old{1, true, {}};
  old.workers.push_back({0, 4250, 1, 500});
  GenerationView serving{2, false, {}};
  serving.workers.push_back({0, 4301, 3, 1203});
  serving.workers.push_back({1, 0, 0, 1187});  // being respawned
  view.generations = {old, serving};
  BackendView a;
  a.address = "10.0.0.1:80";
  a.state = "up";
  a.admin = "drain";
  a.weight = 4;
  a.effective_weight = 1.25;  // slow start
  a.slow_start_remaining_ms = 2500;
  a.last_check_age_ms = 1200;
  a.active = 2;
  a.total = 1500;
  BackendView b;
  b.address = "[2001:db8::7]:8080";
  b.state = "down";
  b.admin = "none";
  b.weight = 1;
  b.effective_weight = 1;
  b.last_check_age_ms = -1;
  b.last_error = "connect: Connection refused\n\x01";
  b.failed_connects = 12;
  view.pools.push_back({"web", {a, b}});
  return view;
}

TEST(ViewText, Status) {
  EXPECT_EQ(statusText(sample()),
            "master pid 4242, steering least-loaded (bpf), 1 reload\n"
            "GEN  STATE     SLOT  PID   ACTIVE  ACCEPTED\n"
            "1    draining  0     4250  1       500\n"
            "2    serving   0     4301  3       1203\n"
            "2    serving   1     -     0       1187\n"
            "evenness (generation 2): accepted max/min = 1.01 (1203 / 1187)\n");
}

TEST(ViewText, EvennessWithoutConnections) {
  View view = sample();
  view.generations.back().workers[0].accepted = 0;
  EXPECT_NE(statusText(view).find("accepted max/min = inf (1187 / 0: a worker has accepted "
                                  "nothing yet)\n"),
            std::string::npos);
  view.generations.back().workers[1].accepted = 0;
  EXPECT_NE(statusText(view).find("evenness (generation 2): no connection accepted yet\n"),
            std::string::npos);
}

TEST(ViewText, Backends) {
  EXPECT_EQ(backendsText(sample()),
            "POOL  BACKEND             STATE  ADMIN  WEIGHT  ACTIVE  TOTAL  FAILED  CHECKED  "
            "ERROR\n"
            "web   10.0.0.1:80         up     drain  1.25/4  2       1500   0       1s ago   -\n"
            "web   [2001:db8::7]:8080  down   none   1       0       0      12      never    "
            "connect: Connection refused??\n");
}

}  // namespace
}  // namespace weir::master
