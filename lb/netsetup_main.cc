// weir-netsetup: installs and removes the kernel setup of transparent mode (lb/netsetup).
// Parses the command line and hands over.
#include <getopt.h>

#include <cstdio>
#include <exception>
#include <string>

#include "config/config.h"
#include "netsetup/check.h"
#include "netsetup/plan.h"
#include "netsetup/steps.h"

namespace {

constexpr const char* kDefaultConfig = "/etc/weir/weir.toml";

void usage(FILE* out) {
  std::fprintf(
      out,
      "usage: weir-netsetup up|down|check|show [-c FILE] [--dry-run]\n"
      "  up         install what FILE's transparent listeners and source = \"client\" pools\n"
      "             need: nftables table inet weir, a policy rule and a local route per\n"
      "             family (idempotent)\n"
      "  down       remove table inet weir, every 'fwmark MARK lookup TABLE' rule and the\n"
      "             routes of TABLE, both families (succeeds when nothing is installed)\n"
      "  check      print what is missing; exit 1 if anything is\n"
      "  show       print what up would run (up --dry-run)\n"
      "  -c FILE    configuration file (default %s)\n"
      "  -n, --dry-run  print the commands without running them\n"
      "  -h, --help     this help\n"
      "Every command run is printed first, prefixed with \"+ \".\n",
      kDefaultConfig);
}

void printCommand(const std::string& text) {
  std::printf("+ %s\n", text.c_str());
  std::fflush(stdout);  // before the command's own output, if any
}

int runSteps(const std::vector<weir::netsetup::Step>& steps, bool dry_run) {
  weir::netsetup::SystemRunner runner;
  if (auto failure = weir::netsetup::apply(steps, runner, printCommand, dry_run)) {
    std::fprintf(stderr, "weir-netsetup: %s\n", failure->c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = kDefaultConfig;
  bool dry_run = false;
  static const option kLong[] = {{"config", required_argument, nullptr, 'c'},
                                 {"dry-run", no_argument, nullptr, 'n'},
                                 {"help", no_argument, nullptr, 'h'},
                                 {nullptr, 0, nullptr, 0}};
  int opt;
  while ((opt = ::getopt_long(argc, argv, "c:nh", kLong, nullptr)) != -1) {
    switch (opt) {
      case 'c':
        path = optarg;
        break;
      case 'n':
        dry_run = true;
        break;
      case 'h':
        usage(stdout);
        return 0;
      default:
        usage(stderr);
        return 2;
    }
  }
  if (optind + 1 != argc) {
    usage(stderr);
    return 2;
  }
  const std::string action = argv[optind];
  if (action != "up" && action != "down" && action != "check" && action != "show") {
    std::fprintf(stderr, "weir-netsetup: unknown action \"%s\"\n", action.c_str());
    usage(stderr);
    return 2;
  }

  weir::config::Config cfg;
  try {
    cfg = weir::config::load(path);
  } catch (const std::exception& e) {  // ConfigError, or anything reading it threw
    std::fprintf(stderr, "%s\n", e.what());
    std::fprintf(stderr, "weir-netsetup: configuration file %s test failed\n", path.c_str());
    return 2;
  }
  const weir::netsetup::Plan plan = weir::netsetup::makePlan(cfg);

  if (action == "down") {
    // Whatever the config needs now: an earlier config may have needed more.
    return runSteps(weir::netsetup::downSteps(plan), dry_run);
  }
  if (plan.empty()) {
    std::printf("no listener or pool uses transparent mode\n");
    return 0;
  }
  if (action == "check") {
    weir::netsetup::SystemRunner runner;
    const auto missing = weir::netsetup::missingPieces(plan, runner);
    for (const auto& piece : missing) {
      std::printf("%s\n", piece.c_str());
    }
    if (!missing.empty()) {
      std::fflush(stdout);  // the pieces first, also when both go to one pipe
      std::fprintf(stderr, "weir-netsetup: transparent mode: kernel setup incomplete; run: "
                           "weir-netsetup up -c %s\n", path.c_str());
      return 1;
    }
    std::printf("transparent mode: kernel setup complete\n");
    return 0;
  }
  return runSteps(weir::netsetup::upSteps(plan), dry_run || action == "show");
}
