#include "master/notify.h"

#include <time.h>

#include <systemd/sd-daemon.h>

namespace weir::master {

void notifySystemd(const std::string& state) {
  // unset_environment = 0: the variable must survive for a binary upgrade, whose new master
  // reports to the same socket.
  (void)::sd_notify(0, state.c_str());
}

void notifyReady(const std::string& status) {
  notifySystemd("READY=1\nSTATUS=" + status);
}

void notifyReloading() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const long long usec = static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
  notifySystemd("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void notifyStopping() { notifySystemd("STOPPING=1"); }

}  // namespace weir::master
