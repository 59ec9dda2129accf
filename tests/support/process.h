#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "support/deadline.h"
#include "support/fd.h"

namespace weir::test {

// A child process started with fork/exec, owned by this object: the destructor stops it
// (SIGTERM, then SIGKILL after a bounded grace period) and always reaps it with waitpid.
//
// The child gets PR_SET_PDEATHSIG(SIGTERM), so a test runner that dies does not leave
// servers behind. The kernel sends that signal when the *thread* that forked exits, so spawn
// from a thread that outlives the child (the gtest main thread does).
class Process {
public:
  // Where a child's stdout/stderr go.
  enum class Output { Inherit, Pipe, File, Null };
  struct Options {
    Output out = Output::Inherit;
    std::string out_path;  // for Output::File (created/truncated)
    Output err = Output::Inherit;
    std::string err_path;  // for Output::File (created/truncated)
    // Run inside this named network namespace (netns.h, /run/netns/NAME): the child enters
    // it with setns(2) before it execs `path`, so pid() and signals reach the program
    // itself. "" runs it where the caller runs.
    std::string netns;
  };

  Process() = default;
  Process(Process&& o) noexcept;
  Process& operator=(Process&& o) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  // Starts `path` (a bare name is looked up with findProgram) with argv[0] = path followed by
  // `args`. Throws std::runtime_error if the fork fails, the namespace of options.netns does
  // not exist, or the child cannot enter it or exec (it reports the errno through a CLOEXEC
  // pipe).
  static Process spawn(const std::string& path, const std::vector<std::string>& args,
                       const Options& options);

  pid_t pid() const { return pid_; }
  bool valid() const { return pid_ > 0; }
  // True while the child has not exited (reaps it without blocking if it has).
  bool running();
  // Raw wait status once the child was reaped.
  std::optional<int> status() const { return status_; }

  // Reads one '\n'-terminated line from the stdout pipe (Output::Pipe); nullopt on EOF,
  // timeout or error. The line is returned without the newline.
  std::optional<std::string> readLine(Deadline deadline);
  // Reads stdout lines until "PORT <n>" and returns n; nullopt if the child exits, closes
  // stdout or the deadline passes first.
  std::optional<uint16_t> waitForPortLine(Deadline deadline);
  // Reads everything left on the stdout/stderr pipes until both reach EOF or the deadline.
  void drainPipes(Deadline deadline, std::string* out, std::string* err);

  // Sends `sig` to the child if it is still running. Returns false if it already exited.
  bool signal(int sig);
  // Waits for the child to exit, up to `timeout`. Returns the raw wait status, or nullopt
  // if it is still running.
  std::optional<int> wait(Clock::duration timeout);
  // SIGTERM, wait up to `grace`, then SIGKILL and a blocking waitpid. Returns the raw wait
  // status. Idempotent.
  int stop(Clock::duration grace = seconds(5));

private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  Fd out_;
  Fd err_;
  std::string out_buf_;  // stdout bytes read past the last returned line
};

// Result of run(): how the child ended and what it printed.
struct RunResult {
  int status = -1;  // raw wait status
  bool timed_out = false;
  std::string out;
  std::string err;
  // The exit code, or -1 if the child was killed by a signal or timed out.
  int exitCode() const;
};

// Runs `path args...` to completion with stdout/stderr captured; kills it after `timeout`.
// `netns` as in Process::Options. Throws std::runtime_error if it cannot be started.
RunResult run(const std::string& path, const std::vector<std::string>& args,
              Clock::duration timeout, const std::string& netns = "");

// The path of an installed program `name` in /usr/sbin, /usr/bin, /sbin or /bin (root's
// PATH order), or "" if none is executable.
std::string findProgram(const std::string& name);

// "exited 0", "killed by signal 9", ... for a raw wait status.
std::string describeStatus(int status);

}  // namespace weir::test
