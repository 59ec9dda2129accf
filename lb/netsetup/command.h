#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "util/result.h"

namespace weir::netsetup {

// How a command ended and what it printed.
struct Output {
  int code = 0;  // its exit status; 128 + N if signal N killed it
  std::string out;
  std::string err;

  bool ok() const { return code == 0; }
};

// Runs the nft and ip commands of the plan. An interface so that tests can answer with
// canned output.
class Runner {
public:
  virtual ~Runner() = default;
  // Runs argv (argv[0] a program name looked up in PATH) with `input` on its stdin, to its
  // end. Fails only when it could not be run at all: ENOENT when argv[0] is not installed,
  // ETIMEDOUT when it did not finish in time (it is killed), or the errno of pipe/fork/exec.
  // A command that runs and fails is an Output with code != 0.
  virtual util::Result<Output> run(const std::vector<std::string>& argv,
                                   const std::string& input) = 0;
};

// Runs commands with fork + exec (no shell). The child gets an empty signal mask (the master
// blocks the signals it reads from a signalfd), its stdin, stdout and stderr on pipes, and no
// other descriptor. Programs are looked up in PATH, then in /usr/sbin, /usr/bin, /sbin and
// /bin (nft and ip live in sbin, which a minimal PATH lacks).
class SystemRunner final : public Runner {
public:
  explicit SystemRunner(std::chrono::milliseconds timeout = std::chrono::seconds(30))
      : timeout_(timeout) {}
  util::Result<Output> run(const std::vector<std::string>& argv,
                           const std::string& input) override;

private:
  std::chrono::milliseconds timeout_;
};

// argv joined by spaces, as a shell would read it back (the plan's arguments need no quoting).
std::string commandLine(const std::vector<std::string>& argv);

}  // namespace weir::netsetup
