#pragma once

#include <string>

namespace weir::master {

// systemd's readiness protocol (Type=notify) through libsystemd's sd_notify: a no-op when the
// service manager set no NOTIFY_SOCKET. `state` is one or more "KEY=VALUE" lines.
void notifySystemd(const std::string& state);

// "READY=1", "RELOADING=1" (with the MONOTONIC_USEC systemd >= 253 wants), "STOPPING=1".
void notifyReady(const std::string& status);
void notifyReloading();
void notifyStopping();

}  // namespace weir::master
