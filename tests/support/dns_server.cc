#include "support/dns_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <cstdio>
#include <stdexcept>

#include "resolve/resolver.h"
#include "support/deadline.h"
#include "support/fd.h"

namespace weir::test {

namespace {

// dnsmasq answers this name from its command line, not from the test's hosts file, so that
// readiness can be checked whatever the test puts there.
constexpr const char* kReadyName = "ready.dns-server.weir.test";

// A port that was free on 127.0.0.1 for both UDP and TCP a moment ago (0 if none was found).
// Someone may take it before dnsmasq binds it; start() then tries another.
uint16_t pickPort() {
  for (int attempt = 0; attempt < 10; ++attempt) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    Fd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    socklen_t len = sizeof sin;
    if (!udp || ::bind(udp.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
        ::getsockname(udp.get(), reinterpret_cast<sockaddr*>(&sin), &len) != 0) {
      continue;
    }
    Fd tcp(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (tcp && ::bind(tcp.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0) {
      return ntohs(sin.sin_port);
    }
  }
  return 0;
}

void writeAtomically(const TempDir& dir, const std::string& name, const std::string& text) {
  dir.write(name + ".new", text);
  if (std::rename(dir.file(name + ".new").c_str(), dir.file(name).c_str()) != 0) {
    throw std::runtime_error("rename " + dir.file(name + ".new") + " failed");
  }
}

}  // namespace

std::optional<DnsServer> DnsServer::start(const std::string& hosts, int local_ttl_s,
                                          std::string* error) {
  const std::string dnsmasq = findProgram("dnsmasq");
  if (dnsmasq.empty()) {
    *error = "dnsmasq is not installed (Debian: dnsmasq-base)";
    return std::nullopt;
  }
  DnsServer server;
  server.dir_ = std::make_unique<TempDir>("weir-dns");
  writeAtomically(*server.dir_, "hosts", hosts);

  std::string last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    const uint16_t port = pickPort();
    if (port == 0) {
      last = "no free port on 127.0.0.1";
      continue;
    }
    server.address_ = *net::SockAddr::parse("127.0.0.1:" + std::to_string(port));
    Process::Options opts;
    opts.out = Process::Output::Null;
    opts.err = Process::Output::File;
    opts.err_path = server.dir_->file("stderr");
    server.process_ = Process::spawn(
        dnsmasq,
        {"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
         "--addn-hosts=" + server.dir_->file("hosts"), "--local=/#/",
         "--host-record=" + std::string(kReadyName) + ",127.0.0.1",
         "--listen-address=127.0.0.1", "--bind-interfaces", "--port=" + std::to_string(port),
         "--local-ttl=" + std::to_string(local_ttl_s), "--pid-file", "--user=root",
         "--group=root", "--log-facility=" + server.logPath(), "--log-queries"},
        opts);

    // Ready once it answers; a port taken in the meantime makes it exit instead.
    resolve::Options ro;
    ro.servers = {server.address_};
    ro.timeout = milliseconds(100);
    // ECONNREFUSED until it has bound the port fails a lookup at once: hence the interval.
    bool ready = false;
    const bool settled = waitFor(
        [&] {
          ready = resolve::resolveNow(ro, kReadyName, 53, milliseconds(500)).ok;
          return ready || !server.process_.running();
        },
        seconds(10), milliseconds(10));
    if (ready) {
      return server;
    }
    const int status = server.process_.stop();
    last = "dnsmasq on port " + std::to_string(port) +
           (settled ? " " + describeStatus(status) : " did not answer within 10 s") + ": " +
           readTextFile(server.dir_->file("stderr")) + readTextFile(server.logPath());
  }
  *error = last;
  return std::nullopt;
}

void DnsServer::setHosts(const std::string& hosts) {
  writeAtomically(*dir_, "hosts", hosts);
  if (!process_.signal(SIGHUP)) {
    throw std::runtime_error("dnsmasq has exited; see " + logPath());
  }
}

std::string DnsServer::logPath() const { return dir_->file("dnsmasq.log"); }

}  // namespace weir::test
