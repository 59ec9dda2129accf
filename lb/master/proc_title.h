#pragma once

#include <string>
#include <vector>

namespace weir::master {

// Process titles, as ps and /proc/PID/cmdline show them: "weir: master",
// "weir: worker 2 (gen 5)", "weir: health checker".
//
// Linux shows a process's argv area (one block: argv[0]\0argv[1]\0...) as its command line, so
// the title is written over that block, padded with NULs; a title longer than the block is cut.
// The thread name (comm, 15 bytes, what top shows) is set with PR_SET_NAME.

// Call once at the start of main, before anything else reads argv: remembers the argv block
// and returns a copy of the arguments (the binary upgrade execs them again).
std::vector<std::string> initProcessTitle(int argc, char** argv);

// Sets the title. Without initProcessTitle only the thread name changes.
void setProcessTitle(const std::string& title);

}  // namespace weir::master
