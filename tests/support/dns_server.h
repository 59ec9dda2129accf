#pragma once

#include <memory>
#include <optional>
#include <string>

#include "net/address.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace weir::test {

// A DNS server for one test: dnsmasq (from dnsmasq-base) on 127.0.0.1 and a port the kernel
// picked, answering A and AAAA queries from a hosts file of the test's own, nothing else.
//
// dnsmasq reads no /etc/dnsmasq.conf, /etc/hosts or resolv.conf and forwards nothing: a name
// not in the file gets NXDOMAIN (--local=/#/). Its answers carry the TTL given to start()
// (--local-ttl). On SIGHUP it clears its cache and reads the hosts file again, which is how
// setHosts() changes the answers. Its log goes to logPath() for post-mortems.
class DnsServer {
public:
  // Starts dnsmasq with `hosts` as its hosts file ("127.0.0.2 app.weir.test" lines, IPv4 and
  // IPv6) and returns once it answers queries. nullopt, with the reason in *error, if dnsmasq
  // is not installed or does not come up within a few seconds (a few ports are tried).
  static std::optional<DnsServer> start(const std::string& hosts, int local_ttl_s,
                                        std::string* error);

  DnsServer(DnsServer&&) = default;
  DnsServer& operator=(DnsServer&&) = default;
  // Stops dnsmasq (SIGTERM, then SIGKILL), reaps it and removes its files.
  ~DnsServer() = default;

  // Replaces the hosts file (atomically, by rename) and sends SIGHUP. dnsmasq reloads it
  // asynchronously: wait for the new answers, do not assume them. Throws on I/O errors.
  void setHosts(const std::string& hosts);

  // Where to send queries: 127.0.0.1:port, UDP and TCP.
  const net::SockAddr& address() const { return address_; }
  std::string logPath() const;
  pid_t pid() const { return process_.pid(); }

private:
  DnsServer() = default;

  std::unique_ptr<TempDir> dir_;  // declared first: outlives the process that reads it
  net::SockAddr address_;
  Process process_;
};

}  // namespace weir::test
