// weir: the daemon's entry point. Parses the command line and hands over to lb/master.
#include <getopt.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <exception>
#include <string>
#include <vector>

#include "config/config.h"
#include "master/announce.h"
#include "master/control.h"
#include "master/master.h"
#include "master/privileges.h"
#include "master/proc_title.h"
#include "netsetup/check.h"
#include "resolve/resolver.h"
#include "tls/cert_check.h"

namespace {

constexpr std::chrono::milliseconds kNameCheckLimit{5000};  // per name

constexpr const char* kDefaultConfig = "/etc/weir/weir.toml";

void usage(FILE* out) {
  std::fprintf(out,
               "usage: weir [-c FILE] [-t] [-w] [-s reload|quit|stop|reopen]\n"
               "  -c FILE   configuration file (default %s)\n"
               "  -t        check the configuration and exit (binds nothing)\n"
               "  -s ACTION send a signal to the running master (its pid from global.pid_file):\n"
               "            reload (HUP), quit (QUIT, graceful), stop (TERM), reopen (USR1)\n"
               "  -w        withdraw every announced VIP route (global.announce_table) and exit:\n"
               "            after a master that could not (killed), e.g. as ExecStopPost\n"
               "  -v        print the version and exit\n"
               "  -h        this help\n",
               kDefaultConfig);
}

// Reads the certificate, key and CA files the config names (parsing it only recorded their
// paths). Prints each error and warning, and with `verbose` what each certificate serves.
// Returns false if there was an error.
// `weir -t`: every backend name looked up once, as the health checker would. A name that does
// not resolve is a warning, not an error: weir starts with its slots empty and keeps asking.
void checkNames(const weir::config::Config& cfg) {
  weir::resolve::Options options;
  options.servers = cfg.global.resolvers;
  for (const auto& pool : cfg.pools) {
    for (const auto& backend : pool.backends) {
      if (!backend.named() || backend.name_slot != 0) {
        continue;
      }
      const std::string name = backend.host + ":" + std::to_string(backend.port);
      const weir::resolve::Answer answer =
          weir::resolve::resolveNow(options, backend.host, backend.port, kNameCheckLimit);
      if (!answer.ok) {
        std::fprintf(stderr,
                     "weir: warning: %s: %s; weir starts with its backends empty and keeps "
                     "asking\n",
                     backend.where.c_str(), answer.error.c_str());
        continue;
      }
      std::string addresses;
      for (size_t i = 0; i < answer.addresses.size() && i < 4; ++i) {
        addresses += (i > 0 ? ", " : "") + answer.addresses[i].toString();
      }
      if (answer.addresses.size() > 4) {
        addresses += ", ...";
      }
      std::fprintf(stderr, "weir: pool %s: %s resolves to %zu address%s (%s)\n",
                   pool.name.c_str(), name.c_str(), answer.addresses.size(),
                   answer.addresses.size() == 1 ? "" : "es", addresses.c_str());
      if (answer.addresses.size() > backend.name_slots) {
        std::fprintf(stderr,
                     "weir: warning: %s: %s returns %zu addresses, more than max_addresses = %u; "
                     "the rest are not used\n",
                     backend.where.c_str(), name.c_str(), answer.addresses.size(),
                     backend.name_slots);
      }
    }
  }
}

bool checkFiles(const weir::config::Config& cfg, bool verbose) {
  const weir::tls::CertReport report = weir::tls::checkCertificates(cfg, std::time(nullptr));
  for (const auto& error : report.errors) {
    std::fprintf(stderr, "%s\n", error.c_str());
  }
  for (const auto& warning : report.warnings) {
    std::fprintf(stderr, "weir: warning: %s\n", warning.c_str());
  }
  for (size_t i = 0; verbose && i < report.info.size(); ++i) {
    std::fprintf(stderr, "weir: %s\n", report.info[i].c_str());
  }
  return report.ok();
}

}  // namespace

int main(int argc, char** argv) {
  // Copies the arguments before the process title overwrites them (and for a binary upgrade).
  std::vector<std::string> args = weir::master::initProcessTitle(argc, argv);
  std::string path = kDefaultConfig;
  std::string action;
  bool test_only = false;
  bool withdraw = false;
  int opt;
  while ((opt = ::getopt(argc, argv, "c:s:thvw")) != -1) {
    switch (opt) {
      case 'c':
        path = optarg;
        break;
      case 's':
        action = optarg;
        if (weir::master::controlSignal(action) == 0) {
          std::fprintf(stderr, "weir: unknown -s action \"%s\"\n", optarg);
          usage(stderr);
          return 2;
        }
        break;
      case 't':
        test_only = true;
        break;
      case 'w':
        withdraw = true;
        break;
      case 'v':
        std::printf("weir " WEIR_VERSION "\n");
        return 0;
      case 'h':
        usage(stdout);
        return 0;
      default:
        usage(stderr);
        return 2;
    }
  }
  if (optind != argc) {
    usage(stderr);
    return 2;
  }
  weir::config::Config cfg;
  try {
    cfg = weir::config::load(path);
  } catch (const std::exception& e) {  // ConfigError, or anything reading it threw
    std::fprintf(stderr, "%s\n", e.what());
    std::fprintf(stderr, "weir: configuration file %s test failed\n", path.c_str());
    return 1;
  }
  if (withdraw) {
    return weir::master::withdrawRoutes(cfg);
  }
  // -s only signals the running master, whose files are its own business.
  if (action.empty() && !checkFiles(cfg, test_only)) {
    std::fprintf(stderr, "weir: configuration file %s test failed\n", path.c_str());
    return 1;
  }
  if (test_only) {
    // The credentials the master would give its children, resolved as it would (this
    // process's euid decides the default user).
    std::fprintf(stderr, "weir: %sworkers and the health checker will run as %s\n",
                 weir::master::childrenRunAsRoot(cfg.global) ? "warning: " : "",
                 weir::master::describeChildCredentials(cfg).c_str());
    // Transparent listeners and source = "client" pools need rules in this network
    // namespace; without them the config is valid but its traffic would not flow.
    for (const auto& warning : weir::netsetup::setupWarnings(cfg)) {
      std::fprintf(stderr, "weir: warning: %s\n", warning.c_str());
    }
    checkNames(cfg);
    std::fprintf(stderr, "weir: configuration file %s test is successful\n", path.c_str());
    return 0;
  }
  if (!action.empty()) {
    return weir::master::sendControlSignal(cfg, action);
  }
  try {
    return weir::master::run(cfg, std::move(args));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weir: %s\n", e.what());
    return 1;
  }
}
