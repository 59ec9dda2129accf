#include "support/testsrv/options.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace weir::testsrv {

namespace {

constexpr const char* kUsage =
    R"USAGE(usage: weir-testsrv [--listen HOST:PORT] --mode MODE [options]

A small single-threaded epoll test backend for weir. Prints "PORT <n>" on stdout once it
listens (use port 0 to let the kernel choose) and runs until SIGTERM or SIGINT.

  --listen HOST:PORT  address to listen on (default 127.0.0.1:0; IPv6 as [::1]:0)
  --mode MODE         echo         echo every byte; on EOF flush, shut down writes, close
                      http         answer each HTTP/1.x request with
                                   "hello from NAME (you are CLIENT_IP:PORT)"
                      drain-reply  read to EOF, reply "BYTES <n> FNV <fnv1a64 hex>\n"
                                   followed by --bytes bytes of the PRNG stream, close
                      source       send --bytes bytes of the PRNG stream, close; input ignored
                      hold         keep connections open, discard input, never answer
                      identify     send one line saying who answered and what the client
                                   presented, then echo:
                                   "ID name=NAME peer=IP:PORT tls=none" or, over TLS,
                                   "... tls=TLSv1.3 sni=S alpn=P alpn-offered=P,Q resumed=0|1
                                   client-cert=CN" ("-" when absent; see identify_line.h)
  --name NAME         name for http and identify replies (default: the listen address)
  --bytes N           payload size for drain-reply/source, suffix k/m/g for KiB/MiB/GiB
                      (default 1m)
  --seed S            PRNG stream seed (default 1). The stream is splitmix64 with state S,
                      each 64-bit output written little-endian (see prng_stream.h).
  --tls-cert FILE     speak TLS (1.2 and 1.3, session tickets on) with this PEM
                      certificate chain; every mode runs unchanged inside it. http replies
                      then carry X-TLS-Version, X-TLS-SNI and X-TLS-ALPN headers
  --tls-key FILE      the certificate's private key (PEM); required with --tls-cert
  --tls-client-ca FILE  require a client certificate issued by a CA in this PEM file
  --tls-alpn P1,P2    ALPN protocols to select from, in our order of preference (default:
                      none selected; the client's offer is still reported)
  --proxy-protocol    every connection starts with a PROXY protocol header (v1 or v2, before
                      TLS); a connection whose header is not valid is closed. The header's
                      source is then the client's address (peer=, http's "you are"), and
                      identify adds "proxy=v1|v2 src=IP:PORT dst=IP:PORT" (none when local),
                      and what a v2 header carried: "authority=A proxy_alpn=P ssl=0|1
                      ssl_version=V ssl_cipher=C". Without this flag identify says proxy=none
  --help              show this text
)USAGE";

std::optional<uint64_t> parseSize(std::string_view s) {
  if (s.empty()) {
    return std::nullopt;
  }
  uint64_t mult = 1;
  switch (s.back()) {
    case 'k': case 'K': mult = 1ULL << 10; s.remove_suffix(1); break;
    case 'm': case 'M': mult = 1ULL << 20; s.remove_suffix(1); break;
    case 'g': case 'G': mult = 1ULL << 30; s.remove_suffix(1); break;
    default: break;
  }
  if (s.empty() || s.size() > 15) {
    return std::nullopt;
  }
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v * mult;
}

std::optional<Mode> parseMode(std::string_view s) {
  if (s == "echo") return Mode::Echo;
  if (s == "http") return Mode::Http;
  if (s == "drain-reply") return Mode::DrainReply;
  if (s == "source") return Mode::Source;
  if (s == "hold") return Mode::Hold;
  if (s == "identify") return Mode::Identify;
  return std::nullopt;
}

std::optional<Options> usageError(const std::string& what) {
  std::fprintf(stderr, "weir-testsrv: %s\n\n%s", what.c_str(), kUsage);
  return std::nullopt;
}

}  // namespace

std::optional<Options> parseOptions(int argc, char** argv) {
  Options o;
  o.listen = *test::SockAddr::parse("127.0.0.1:0");
  bool have_mode = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (arg == "--proxy-protocol") {
      o.proxy_protocol = true;
      continue;
    }
    if (i + 1 >= argc) {
      return usageError("unknown option or missing value: " + std::string(arg));
    }
    const std::string_view val = argv[++i];
    if (arg == "--listen") {
      const auto a = test::SockAddr::parse(val);
      if (!a) {
        return usageError("--listen: expected HOST:PORT or [V6HOST]:PORT, got '" +
                          std::string(val) + "'");
      }
      o.listen = *a;
    } else if (arg == "--mode") {
      const auto m = parseMode(val);
      if (!m) {
        return usageError("--mode: unknown mode '" + std::string(val) + "'");
      }
      o.mode = *m;
      have_mode = true;
    } else if (arg == "--name") {
      o.name = val;
    } else if (arg == "--bytes") {
      const auto n = parseSize(val);
      if (!n) {
        return usageError("--bytes: expected a byte count such as 1048576 or 64m, got '" +
                          std::string(val) + "'");
      }
      o.bytes = *n;
    } else if (arg == "--seed") {
      const auto n = parseSize(val);
      if (!n || !std::isdigit(static_cast<unsigned char>(val.back()))) {
        return usageError("--seed: expected a decimal number, got '" + std::string(val) + "'");
      }
      o.seed = *n;
    } else if (arg == "--tls-cert") {
      o.tls_cert = val;
    } else if (arg == "--tls-key") {
      o.tls_key = val;
    } else if (arg == "--tls-client-ca") {
      o.tls_client_ca = val;
    } else if (arg == "--tls-alpn") {
      o.tls_alpn.clear();
      for (size_t pos = 0; pos <= val.size();) {
        const size_t end = std::min(val.find(',', pos), val.size());
        const std::string_view p = val.substr(pos, end - pos);
        if (p.empty() || p.size() > 255) {
          return usageError("--tls-alpn: expected comma-separated protocol names, got '" +
                            std::string(val) + "'");
        }
        o.tls_alpn.emplace_back(p);
        pos = end + 1;
      }
    } else {
      return usageError("unknown option: " + std::string(arg));
    }
  }
  if (!have_mode) {
    return usageError("--mode is required");
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return usageError("--tls-cert and --tls-key go together");
  }
  if (o.tls_cert.empty() && (!o.tls_client_ca.empty() || !o.tls_alpn.empty())) {
    return usageError("--tls-client-ca and --tls-alpn need --tls-cert");
  }
  return o;
}

}  // namespace weir::testsrv
