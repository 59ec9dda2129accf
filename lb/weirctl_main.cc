// weirctl: the operator's client of the master's control socket (lb/control). Parses the
// command line, sends one request, prints the reply; the master renders it.
#include <getopt.h>

#include <cstdio>
#include <string>

#include "config/config.h"
#include "control/client.h"
#include "control/reply.h"
#include "control/request.h"

namespace {

using weir::control::Command;

constexpr const char* kDefaultConfig = "/etc/weir/weir.toml";
constexpr int64_t kTimeoutMs = 60000;  // a reload reads certificates and forks workers

// Exit codes (docs/weirctl.md).
constexpr int kOk = 0;
constexpr int kRefused = 1;
constexpr int kUsage = 2;
constexpr int kUnreachable = 3;

void usage(FILE* out) {
  std::fprintf(
      out,
      "usage: weirctl [-s SOCKET | --socket SOCKET] [-c CONFIG] [--json] COMMAND [ARGS]\n"
      "  status                  generations, workers, steering and its evenness\n"
      "  backends [POOL]         each backend: state, admin state, last check, connections\n"
      "  drain POOL ADDRESS      no new connections to the backend; open ones continue\n"
      "  undrain POOL ADDRESS    clears drain\n"
      "  disable POOL ADDRESS    maintenance: no new connections, health checks paused\n"
      "  enable POOL ADDRESS     clears maintenance\n"
      "  reload                  reload the configuration (as SIGHUP) and print its errors\n"
      "  -s, --socket SOCKET     the master's control socket (default: global.control_socket\n"
      "                          of CONFIG)\n"
      "  -c, --config CONFIG     configuration file (default %s)\n"
      "  --json                  a JSON document instead of text\n"
      "  -h, --help              this help\n"
      "Exit status: 0 ok, 1 the master refused or failed, 2 usage, 3 no master reached.\n",
      kDefaultConfig);
}

// The socket: -s, else control_socket of the config (read alone: the rest of the file may
// be broken, which is what `weirctl reload` is there to show).
std::string socketPath(const std::string& socket, const std::string& config, int* code) {
  if (!socket.empty()) {
    return socket;
  }
  try {
    std::string path = weir::config::controlSocketOf(config);
    if (path.empty()) {
      std::fprintf(stderr, "weirctl: %s sets no global.control_socket; use -s SOCKET\n",
                   config.c_str());
      *code = kUnreachable;
    }
    return path;
  } catch (const weir::config::ConfigError& e) {
    std::fprintf(stderr, "weirctl: cannot find the control socket in %s (use -s SOCKET):\n%s\n",
                 config.c_str(), e.what());
    *code = kUnreachable;
    return "";
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket;
  std::string config = kDefaultConfig;
  weir::control::Request request;
  static const option kLong[] = {{"socket", required_argument, nullptr, 's'},
                                 {"config", required_argument, nullptr, 'c'},
                                 {"json", no_argument, nullptr, 'j'},
                                 {"help", no_argument, nullptr, 'h'},
                                 {nullptr, 0, nullptr, 0}};
  int opt;
  while ((opt = ::getopt_long(argc, argv, "s:c:h", kLong, nullptr)) != -1) {
    switch (opt) {
      case 's':
        socket = optarg;
        break;
      case 'c':
        config = optarg;
        break;
      case 'j':
        request.format = weir::control::Format::Json;
        break;
      case 'h':
        usage(stdout);
        return kOk;
      default:
        usage(stderr);
        return kUsage;
    }
  }
  if (optind >= argc) {
    usage(stderr);
    return kUsage;
  }
  const std::optional<Command> command = weir::control::commandNamed(argv[optind]);
  if (!command) {
    std::fprintf(stderr, "weirctl: unknown command \"%s\"\n", argv[optind]);
    usage(stderr);
    return kUsage;
  }
  request.command = *command;
  for (int i = optind + 1; i < argc; ++i) {
    request.args.emplace_back(argv[i]);
  }
  // The master parses the same line; checking here first gives a usage error (exit 2) for
  // what is wrong on this side.
  std::string line = weir::control::formatRequest(request);
  line.pop_back();
  if (auto parsed = weir::control::parseRequest(line); !parsed.request) {
    std::fprintf(stderr, "weirctl: %s\n", parsed.error.c_str());
    usage(stderr);
    return kUsage;
  }
  int code = kOk;
  const std::string path = socketPath(socket, config, &code);
  if (code != kOk) {
    return code;
  }
  auto bytes = weir::control::exchange(path, weir::control::formatRequest(request), kTimeoutMs);
  if (!bytes) {
    std::fprintf(stderr, "weirctl: cannot reach the master: %s\n",
                 bytes.error().message().c_str());
    return kUnreachable;
  }
  const std::optional<weir::control::Reply> reply = weir::control::decodeReply(*bytes);
  if (!reply) {
    std::fprintf(stderr, "weirctl: %s: %s\n", path.c_str(),
                 bytes->empty() ? "the master closed the connection without a reply"
                                : "not a reply of a weir master");
    return kRefused;
  }
  std::fputs(reply->body.c_str(), reply->ok ? stdout : stderr);
  return reply->ok ? kOk : kRefused;
}
