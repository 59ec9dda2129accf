// weir's PROXY headers read by other implementations: HAProxy (`bind ... accept-proxy`) and
// nginx (`listen ... proxy_protocol`) as backends of a pool with proxy_protocol = "v1" / "v2".
// Each answers an HTTP request with the client address it took from the header; it must be
// the test client's own. (weir-testsrv's parser is weir's own code; these two are not.)
// HAProxy and nginx come from packaging/deps.sh; where one is missing the test skips saying
// so (and under root, where CI runs, a skip fails the run).
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

#include "support/net_io.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "weir_process.h"

namespace weir::test {
namespace {

// A peer server started from a config file in its own directory, on a free port.
struct Peer {
  TempDir dir;
  uint16_t port = 0;
  Process process;
  std::string log() const {
    std::ifstream in(dir.file("peer.log"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
};

// Waits until 127.0.0.1:port accepts a connection.
bool waitListening(uint16_t port, Process& process) {
  const Deadline deadline = Clock::now() + seconds(10);
  while (Clock::now() < deadline && process.running()) {
    if (connectTcp(*SockAddr::from("127.0.0.1", port), milliseconds(200))) {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(20));  // bounded poll for the server to bind
  }
  return false;
}

std::unique_ptr<Peer> startHaproxy(const std::string& bin) {
  auto peer = std::make_unique<Peer>();
  peer->port = pickFreePort();
  const std::string cfg = peer->dir.file("haproxy.cfg");
  std::ofstream(cfg) << "defaults\n"
                        "  mode http\n"
                        "  timeout connect 5s\n"
                        "  timeout client 10s\n"
                        "  timeout server 10s\n"
                        "frontend pp\n"
                        "  bind 127.0.0.1:"
                     << peer->port
                     << " accept-proxy\n"
                        "  http-request return status 200 content-type text/plain lf-string "
                        "\"src=%[src]:%[src_port] dst=%[dst]:%[dst_port]\\n\"\n";
  Process::Options o;
  o.out = Process::Output::File;
  o.out_path = peer->dir.file("peer.log");
  o.err = Process::Output::File;
  o.err_path = peer->dir.file("peer.err");
  peer->process = Process::spawn(bin, {"-db", "-f", cfg}, o);
  return peer;
}

std::unique_ptr<Peer> startNginx(const std::string& bin) {
  auto peer = std::make_unique<Peer>();
  peer->port = pickFreePort();
  const std::string dir = peer->dir.path();
  const std::string cfg = peer->dir.file("nginx.conf");
  std::ofstream(cfg) << "daemon off;\n"
                        "master_process off;\n"
                        "pid "
                     << dir << "/nginx.pid;\n"
                     << "error_log " << dir << "/peer.log info;\n"
                     << "events { worker_connections 64; }\n"
                        "http {\n"
                        "  access_log off;\n"
                        "  client_body_temp_path "
                     << dir << "/body;\n"
                     << "  proxy_temp_path " << dir << "/proxy;\n"
                     << "  fastcgi_temp_path " << dir << "/fastcgi;\n"
                     << "  uwsgi_temp_path " << dir << "/uwsgi;\n"
                     << "  scgi_temp_path " << dir << "/scgi;\n"
                     << "  server {\n"
                        "    listen 127.0.0.1:"
                     << peer->port
                     << " proxy_protocol;\n"
                        "    location / {\n"
                        "      default_type text/plain;\n"
                        "      return 200 \"src=$proxy_protocol_addr:$proxy_protocol_port "
                        "dst=$proxy_protocol_server_addr:$proxy_protocol_server_port\\n\";\n"
                        "    }\n"
                        "  }\n"
                        "}\n";
  Process::Options o;
  o.out = Process::Output::Null;
  o.err = Process::Output::File;
  o.err_path = peer->dir.file("peer.err");
  peer->process = Process::spawn(bin, {"-p", dir, "-e", dir + "/peer.log", "-c", cfg}, o);
  return peer;
}

// GET / through `weir` on a fresh connection; returns the client's own "IP:PORT" and the
// whole response.
std::pair<std::string, std::string> getThrough(const SockAddr& weir) {
  Fd fd = connectTcp(weir, seconds(5));
  if (!fd) {
    return {"", "(connect failed)"};
  }
  const std::string me = SockAddr::local(fd.get())->str();
  const Deadline deadline = Clock::now() + seconds(10);
  if (writeAll(fd.get(), "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", deadline) !=
      IoStatus::Ok) {
    return {me, "(write failed)"};
  }
  return {me, readAllUntilClosed(fd.get(), deadline)};
}

void expectPeerSeesTheClient(const std::string& program,
                             std::unique_ptr<Peer> (*start)(const std::string&)) {
  const std::string bin = findProgram(program);
  if (bin.empty()) {
    GTEST_SKIP() << program << " is not installed (packaging/deps.sh installs it)";
  }
  std::unique_ptr<Peer> peer = start(bin);
  ASSERT_TRUE(waitListening(peer->port, peer->process)) << program << " did not start:\n"
                                                        << peer->log();
  for (const char* version : {"v1", "v2"}) {
    SCOPED_TRACE(std::string(program) + " " + version);
    WeirConfig c;
    c.workers = "1";
    c.listeners = {{"front", "p"}};
    PoolSpec p;
    p.name = "p";
    p.backends = {{"127.0.0.1:" + std::to_string(peer->port)}};
    p.lines = {std::string("proxy_protocol = \"") + version + "\""};
    c.pools = {p};
    WeirProcess weir(c);
    ASSERT_TRUE(weir.start());
    for (int i = 0; i < 3; ++i) {
      auto [me, response] = getThrough(weir.addr("front"));
      ASSERT_NE(response.find("200"), std::string::npos) << response << "\n" << peer->log();
      EXPECT_NE(response.find("src=" + me + " "), std::string::npos)
          << "client " << me << ", response:\n" << response;
      EXPECT_NE(response.find("dst=" + weir.addr("front").str()), std::string::npos) << response;
    }
  }
}

TEST(ProxyProtocolPeers, HaproxyReadsTheClientFromWeirsHeader) {
  expectPeerSeesTheClient("haproxy", startHaproxy);
}

TEST(ProxyProtocolPeers, NginxReadsTheClientFromWeirsHeader) {
  expectPeerSeesTheClient("nginx", startNginx);
}

}  // namespace
}  // namespace weir::test
