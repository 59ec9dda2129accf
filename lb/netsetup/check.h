#pragma once

#include <string>
#include <vector>

#include "netsetup/command.h"
#include "netsetup/plan.h"

namespace weir::netsetup {

// The pieces of `plan` missing in the calling process's network namespace, one line each for
// a person to read: "no nftables table inet weir", "no tproxy rule for 192.0.2.10:80",
// "no IPv4 rule 'fwmark 0x7765 lookup 7765'", "no local default route in IPv6 table 7765".
// Empty when everything is there, and for an empty plan (then nothing is run).
//
// Reads what `nft list table inet weir`, `ip rule show fwmark M lookup T` and
// `ip route show table T` print (per family the plan needs), run through `runner`. A command
// that cannot run or fails for another reason than "not there" is itself a finding ("nft not
// found: install nftables", "cannot list nftables table inet weir: Operation not permitted").
// Rules are recognised by their parts (match, tproxy target, mark, verdict), not by their
// exact text, so that another nft's spelling of numbers or spacing does not matter.
std::vector<std::string> missingPieces(const Plan& plan, Runner& runner);

// For `weir -t` and the master's start and reloads: one warning per missing piece of the
// setup `cfg` needs, "transparent mode: PIECE, run: weir-netsetup up -c PATH", checked with a
// SystemRunner. Empty when cfg does not use transparent mode or nothing is missing.
std::vector<std::string> setupWarnings(const config::Config& cfg);

}  // namespace weir::netsetup
