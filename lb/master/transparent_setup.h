#pragma once

#include "config/config.h"

namespace weir::master {

// The master, at start and after each reload: logs as a warning each piece of the kernel
// setup that `cfg`'s transparent listeners and source = "client" pools need and this network
// namespace lacks (lb/netsetup), with the command that installs it. weir serves anyway: the
// rules may come later, and only the transparent traffic depends on them. Runs nft and ip
// only when cfg uses transparent mode; never throws.
void logTransparentSetup(const config::Config& cfg);

}  // namespace weir::master
