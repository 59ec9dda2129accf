#include "support/test_server.h"

#include <stdexcept>

namespace weir::test {

TestServer startTestServer(const std::string& binary, const std::string& mode,
                           const std::vector<std::string>& extra, const std::string& host,
                           uint16_t port, const std::string& netns) {
  const std::string p = std::to_string(port);
  std::vector<std::string> args = {"--listen", (host.find(':') != std::string::npos
                                                    ? "[" + host + "]:" + p
                                                    : host + ":" + p),
                                   "--mode", mode};
  args.insert(args.end(), extra.begin(), extra.end());
  Process::Options opts;
  opts.out = Process::Output::Pipe;
  opts.netns = netns;
  TestServer s;
  s.host = host;
  s.netns = netns;
  s.process = Process::spawn(binary, args, opts);
  const auto reported = s.process.waitForPortLine(deadlineIn(seconds(10)));
  if (!reported) {
    const int st = s.process.stop(seconds(1));
    throw std::runtime_error("weir-testsrv --mode " + mode +
                             (netns.empty() ? "" : " in " + netns) + " reported no port (" +
                             describeStatus(st) + ")");
  }
  s.port = *reported;
  return s;
}

}  // namespace weir::test
