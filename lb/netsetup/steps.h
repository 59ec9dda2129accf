#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "netsetup/command.h"
#include "netsetup/plan.h"

namespace weir::netsetup {

// The nftables table weir owns entirely: `up` rewrites it, `down` deletes it.
inline constexpr const char* kNftTable = "inet weir";

// One command that changes the kernel's setup, and when it runs. Steps are idempotent by
// construction: a probe tells whether what the command adds is there already (ip rule has no
// "replace"), and a removal tolerates "nothing there".
struct Step {
  enum class When {
    Always,
    Unless,  // only if `probe` prints nothing
    While,   // again while `probe` prints something (every copy of an ip rule goes)
  };
  std::vector<std::string> argv;
  std::string input;  // fed to its stdin (the nft script); empty: none
  When when = When::Always;
  std::vector<std::string> probe;  // a read-only command; for Unless and While
  // A failure whose stderr holds this text means there was nothing to remove: the step
  // succeeded ("FIB table does not exist" from flushing a table never created). Empty: none.
  std::string absent;
};

// The nft script of `plan`: creates table inet weir if missing, flushes it and fills it, in
// one transaction (nft -f applies a file atomically), so running it again changes nothing
// and never leaves a moment without the rules.
std::string nftScript(const Plan& plan);

// What `weir-netsetup up` runs for `plan`, in order: per family the local route, then the
// policy rule, then the nft script (interception starts only once its return path exists).
// Empty for an empty plan.
std::vector<Step> upSteps(const Plan& plan);

// What `weir-netsetup down` runs: deletes table inet weir, every "fwmark MARK lookup TABLE"
// rule and every route of TABLE, for both families whatever the plan needs (the config may
// have changed since `up`). Succeeds when nothing is installed.
std::vector<Step> downSteps(const Plan& plan);

// Runs `steps` in order with `runner`, after calling `print` with each command it runs
// ("nft -f - <<'EOF'\n...\nEOF" for a command with input, probes included). With `dry_run`
// it runs nothing and prints each step once, a conditional one with a shell comment saying
// when it runs. Returns nullopt on success; otherwise stops at the first failure and returns
// the failing command line and why ("exit 1: Error: ..." with its stderr, or "not found").
[[nodiscard]] std::optional<std::string> apply(const std::vector<Step>& steps, Runner& runner,
                                               const std::function<void(const std::string&)>& print,
                                               bool dry_run);

// How a step's command is printed: its command line, and for one with input a here-document
// holding the input.
std::string render(const std::vector<std::string>& argv, const std::string& input);

}  // namespace weir::netsetup
