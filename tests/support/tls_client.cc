#include "support/tls_client.h"

#include "tls/errors.h"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace weir::test {

namespace {

constexpr size_t kRecordHeader = 5;
constexpr uint8_t kHandshakeRecord = 22;
constexpr size_t kIoChunk = 16 * 1024;


int versionConstant(TlsVersion v) { return v == TlsVersion::Tls12 ? TLS1_2_VERSION : TLS1_3_VERSION; }

// The payloads and the record-layer version of a flight of TLS records. False if the bytes
// are not whole records.
bool splitRecords(const std::string& flight, std::string* payload, uint16_t* version,
                  size_t* records) {
  size_t pos = 0;
  *records = 0;
  while (pos < flight.size()) {
    if (flight.size() - pos < kRecordHeader) {
      return false;
    }
    const auto* h = reinterpret_cast<const uint8_t*>(flight.data() + pos);
    const size_t len = (size_t{h[3]} << 8) | h[4];
    if (h[0] != kHandshakeRecord || flight.size() - pos - kRecordHeader < len) {
      return false;
    }
    if (*records == 0) {
      *version = static_cast<uint16_t>((h[1] << 8) | h[2]);
    }
    payload->append(flight, pos + kRecordHeader, len);
    pos += kRecordHeader + len;
    ++*records;
  }
  return true;
}

// `payload` as handshake records of at most `record_bytes` payload bytes each.
std::string joinRecords(const std::string& payload, uint16_t version, size_t record_bytes,
                        size_t* records) {
  std::string out;
  *records = 0;
  for (size_t pos = 0; pos < payload.size(); pos += record_bytes) {
    const size_t len = std::min(record_bytes, payload.size() - pos);
    out += static_cast<char>(kHandshakeRecord);
    out += static_cast<char>(version >> 8);
    out += static_cast<char>(version & 0xff);
    out += static_cast<char>(len >> 8);
    out += static_cast<char>(len & 0xff);
    out.append(payload, pos, len);
    ++*records;
  }
  return out;
}

std::string asn1Text(const ASN1_STRING* s) {
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) {
    return {};
  }
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

void describeCert(X509* cert, TlsHandshake* hs) {
  if (cert == nullptr) {
    return;
  }
  const X509_NAME* subject = X509_get_subject_name(cert);
  const int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (idx >= 0) {
    hs->cert_cn = asn1Text(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
  }
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) {
    return;
  }
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_DNS) {
      hs->cert_names.push_back(asn1Text(n->d.dNSName));
    } else if (n->type == GEN_IPADD) {
      const int len = ASN1_STRING_length(n->d.iPAddress);
      char buf[INET6_ADDRSTRLEN] = {};
      if (len == 4 || len == 16) {
        inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(n->d.iPAddress), buf,
                  sizeof buf);
        hs->cert_names.emplace_back(buf);
      }
    }
  }
  GENERAL_NAMES_free(names);
}

}  // namespace

// The OpenSSL objects of one connection. Heap-allocated so that the pointers OpenSSL keeps
// to it (app data, the padding extension's argument) survive moves of the TlsClient.
struct TlsClient::State {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  BIO* rbio = nullptr;  // network -> OpenSSL; owned by ssl
  BIO* wbio = nullptr;  // OpenSSL -> network; owned by ssl
  std::string pad;      // payload of the padding extension
  TlsSession ticket;    // the last session the server gave us
  uint64_t tickets = 0;  // how many it gave

  ~State() {
    SSL_free(ssl);
    SSL_CTX_free(ctx);
  }

  static int addPad(SSL*, unsigned int, unsigned int, const unsigned char** out, size_t* outlen,
                    X509*, size_t, int*, void* arg) {
    static const unsigned char kNothing = 0;
    const auto* pad = static_cast<const std::string*>(arg);
    *out = pad->empty() ? &kNothing : reinterpret_cast<const unsigned char*>(pad->data());
    *outlen = pad->size();
    return 1;
  }

  // Called by OpenSSL for every session it would cache: the end of a TLS 1.2 handshake, or
  // each TLS 1.3 NewSessionTicket. Returning 1 keeps the reference it hands us.
  static int newSession(SSL* ssl, SSL_SESSION* session) {
    auto* self = static_cast<State*>(SSL_get_app_data(ssl));
    self->ticket = TlsSession(session, SSL_SESSION_free);
    ++self->tickets;
    return 1;
  }

  // Builds ctx and ssl for `o`, with the padding extension sized for o.hello.pad_to.
  // Returns "" or what failed.
  std::string init(const TlsClientOptions& o, bool measure_pad = true) {
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == nullptr) {
      return tls::takeErrors("SSL_CTX_new");
    }
    SSL_CTX_set_min_proto_version(ctx, versionConstant(o.min_version));
    SSL_CTX_set_max_proto_version(ctx, versionConstant(o.max_version));
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, &State::newSession);
    if (!o.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr) != 1) {
        return tls::takeErrors("loading CA file " + o.ca_file);
      }
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    } else {
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    }
    if (!o.cert_file.empty()) {
      if (SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        return tls::takeErrors("loading client certificate " + o.cert_file + " / " + o.key_file);
      }
    }
    if (o.hello.pad_to > 0 &&
        SSL_CTX_add_custom_ext(ctx, kPadExtensionType, SSL_EXT_CLIENT_HELLO, &State::addPad,
                               nullptr, &pad, nullptr, nullptr) != 1) {
      return tls::takeErrors("SSL_CTX_add_custom_ext");
    }
    ssl = SSL_new(ctx);
    if (ssl == nullptr) {
      return tls::takeErrors("SSL_new");
    }
    SSL_set_app_data(ssl, this);
    rbio = BIO_new(BIO_s_mem());
    wbio = BIO_new(BIO_s_mem());
    if (rbio == nullptr || wbio == nullptr) {
      BIO_free(rbio);
      BIO_free(wbio);
      return tls::takeErrors("BIO_new");
    }
    SSL_set_bio(ssl, rbio, wbio);
    SSL_set_connect_state(ssl);
    if (!o.sni.empty() && SSL_set_tlsext_host_name(ssl, o.sni.c_str()) != 1) {
      return tls::takeErrors("SNI " + o.sni);
    }
    if (!o.alpn.empty()) {
      std::string wire;
      for (const std::string& p : o.alpn) {
        wire += static_cast<char>(p.size());
        wire += p;
      }
      // Unlike most of OpenSSL, 0 is success here.
      if (SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()),
                              static_cast<unsigned>(wire.size())) != 0) {
        return tls::takeErrors("ALPN");
      }
    }
    if (!o.ca_file.empty() && !o.verify_host.empty()) {
      in6_addr ip{};
      const bool is_ip = inet_pton(AF_INET, o.verify_host.c_str(), &ip) == 1 ||
                         inet_pton(AF_INET6, o.verify_host.c_str(), &ip) == 1;
      const int rc = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
                                                           o.verify_host.c_str())
                           : SSL_set1_host(ssl, o.verify_host.c_str());
      if (rc != 1) {
        return tls::takeErrors("verify host " + o.verify_host);
      }
    }
    if (o.session && SSL_set_session(ssl, o.session.get()) != 1) {
      return tls::takeErrors("SSL_set_session");
    }
    if (o.hello.pad_to > 0 && measure_pad) {
      // The same hello with an empty padding extension, to learn how much to add.
      State probe;
      std::string err = probe.init(o, false);
      if (!err.empty()) {
        return err;
      }
      std::string payload;
      uint16_t version = 0;
      size_t records = 0;
      if (!splitRecords(probe.firstFlight(), &payload, &version, &records)) {
        return "measuring the ClientHello: OpenSSL produced no handshake records";
      }
      if (payload.size() < o.hello.pad_to) {
        pad.assign(o.hello.pad_to - payload.size(), '\0');
      }
    }
    return {};
  }

  // Starts the handshake and returns what OpenSSL wrote: the ClientHello records.
  std::string firstFlight() {
    ERR_clear_error();
    SSL_do_handshake(ssl);
    ERR_clear_error();
    return drain();
  }

  // Everything OpenSSL has written to wbio.
  std::string drain() {
    std::string out(BIO_ctrl_pending(wbio), '\0');
    if (!out.empty()) {
      const int n = BIO_read(wbio, out.data(), static_cast<int>(out.size()));
      out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    }
    return out;
  }
};

TlsClient::TlsClient() = default;
TlsClient::TlsClient(TlsClient&&) noexcept = default;
TlsClient& TlsClient::operator=(TlsClient&&) noexcept = default;
TlsClient::~TlsClient() = default;

TlsClient TlsClient::connect(std::string_view endpoint, const TlsClientOptions& options) {
  const auto addr = SockAddr::parse(endpoint);
  if (!addr) {
    TlsClient c;
    c.hs_.error = "bad endpoint '" + std::string(endpoint) + "': expected IP:PORT or [V6]:PORT";
    return c;
  }
  return connect(*addr, options);
}

TlsClient TlsClient::connect(const SockAddr& addr, const TlsClientOptions& options) {
  TlsClient c;
  const Deadline deadline = deadlineIn(options.timeout);
  c.st_ = std::make_unique<State>();
  if (std::string err = c.st_->init(options); !err.empty()) {
    c.hs_.error = err;
    return c;
  }
  c.fd_ = connectTcp(addr, options.timeout, &c.hs_.error);
  if (!c.fd_) {
    return c;
  }
  const int one = 1;
  setsockopt(c.fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c.runHandshake(options, deadline);
  return c;
}

void TlsClient::runHandshake(const TlsClientOptions& options, Deadline deadline) {
  SSL* ssl = st_->ssl;
  const HelloShaping& shape = options.hello;
  // The first flight, shaped.
  std::string flight = st_->firstFlight();
  std::string payload;
  uint16_t version = 0;
  if (!splitRecords(flight, &payload, &version, &hs_.hello_records)) {
    hs_.error = "OpenSSL's first flight is not a ClientHello";
    return;
  }
  hs_.hello_bytes = payload.size();
  if (shape.record_bytes > 0) {
    flight = joinRecords(payload, version, shape.record_bytes, &hs_.hello_records);
  }
  if (!options.preamble.empty()) {
    const IoStatus w = writeAll(fd_.get(), options.preamble, deadline);
    if (w != IoStatus::Ok) {
      hs_.error = std::string("sending the preamble: ") + toString(w);
      return;
    }
  }
  const size_t step = shape.segment_bytes > 0 ? shape.segment_bytes : flight.size();
  for (size_t pos = 0; pos < flight.size(); pos += step) {
    const IoStatus w = writeAll(fd_.get(), flight.data() + pos,
                                std::min(step, flight.size() - pos), deadline);
    if (w != IoStatus::Ok) {
      hs_.error = std::string("sending the ClientHello: ") + toString(w);
      return;
    }
    ++hs_.hello_writes;
    if (shape.segment_bytes > 0 && shape.wait_acked && pos + step < flight.size()) {
      const bool acked = waitFor(
          [&] {
            int unacked = 0;
            return ioctl(fd_.get(), SIOCOUTQ, &unacked) == 0 && unacked == 0;
          },
          std::min<Clock::duration>(shape.ack_timeout, deadline - Clock::now()),
          milliseconds(1));
      if (!acked) {
        ++hs_.ack_waits_timed_out;
      }
    }
  }
  for (;;) {
    ERR_clear_error();
    const int rc = SSL_do_handshake(ssl);
    const int err = SSL_get_error(ssl, rc);
    std::string failure = rc == 1 || err == SSL_ERROR_WANT_READ ? "" : tls::takeErrors("handshake");
    // Whatever OpenSSL wrote goes out, including the alert of a failed handshake.
    const IoStatus f = flushOut(deadline);
    if (!failure.empty()) {
      const long vr = SSL_get_verify_result(ssl);
      if (vr != X509_V_OK) {
        failure += std::string("; certificate verify: ") + X509_verify_cert_error_string(vr);
      }
      hs_.verify_result = vr;
      hs_.error = failure;
      return;
    }
    if (f != IoStatus::Ok) {
      hs_.error = "sending during the handshake: " + last_error_;
      return;
    }
    if (rc == 1) {
      break;
    }
    const IoStatus r = fillIn(deadline);
    if (r == IoStatus::Eof) {
      hs_.error = "server closed the connection during the handshake";
      return;
    }
    if (r != IoStatus::Ok) {
      hs_.error = "during the handshake: " + last_error_;
      return;
    }
  }
  hs_.ok = true;
  hs_.version = SSL_get_version(ssl);
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  hs_.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  hs_.resumed = SSL_session_reused(ssl) == 1;
  hs_.verify_result = SSL_get_verify_result(ssl);
  describeCert(SSL_get0_peer_certificate(ssl), &hs_);
}

IoStatus TlsClient::fillIn(Deadline deadline) {
  for (;;) {
    pollfd p{fd_.get(), POLLIN, 0};
    const int rc = poll(&p, 1, msLeft(deadline));
    if (rc == 0) {
      last_error_ = "timed out waiting for the server";
      return IoStatus::Timeout;
    }
    if (rc < 0) {
      if (errno == EINTR) {
        continue;
      }
      last_error_ = "poll: " + errnoText(errno);
      return IoStatus::Error;
    }
    char buf[kIoChunk];
    const ssize_t n = recv(fd_.get(), buf, sizeof buf, 0);
    if (n > 0) {
      BIO_write(st_->rbio, buf, static_cast<int>(n));
      return IoStatus::Ok;
    }
    if (n == 0) {
      sock_eof_ = true;
      last_error_ = "server closed the connection";
      return IoStatus::Eof;
    }
    if (errno == EAGAIN || errno == EINTR) {
      continue;  // a spurious wake-up
    }
    last_error_ = "recv: " + errnoText(errno);
    // ECONNRESET is the server aborting, which tests tell apart from other failures.
    return errno == ECONNRESET ? IoStatus::Reset : IoStatus::Error;
  }
}

IoStatus TlsClient::flushOut(Deadline deadline) {
  const std::string out = st_->drain();
  if (out.empty()) {
    return IoStatus::Ok;
  }
  const IoStatus w = writeAll(fd_.get(), out, deadline);
  if (w != IoStatus::Ok) {
    last_error_ = std::string("send: ") + toString(w);
  }
  return w;
}

IoStatus TlsClient::readSome(Deadline deadline) {
  const uint64_t tickets_before = st_->tickets;
  for (;;) {
    ERR_clear_error();
    char buf[kIoChunk];
    const int n = SSL_read(st_->ssl, buf, sizeof buf);
    const int err = n > 0 ? SSL_ERROR_NONE : SSL_get_error(st_->ssl, n);
    std::string failure = n > 0 || err == SSL_ERROR_WANT_READ || err == SSL_ERROR_ZERO_RETURN
                              ? ""
                              : tls::takeErrors("SSL_read");
    // Reading can make OpenSSL answer (a KeyUpdate, an alert): send that first.
    const IoStatus f = flushOut(deadline);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      return f;
    }
    if (err == SSL_ERROR_ZERO_RETURN) {
      close_notify_ = true;
      last_error_ = "server sent close_notify";
      return IoStatus::Eof;
    }
    if (!failure.empty()) {
      last_error_ = failure;
      return IoStatus::Error;
    }
    if (f != IoStatus::Ok) {
      return f;
    }
    // WANT_READ: a record is incomplete, or one without application data (a session
    // ticket) was consumed. A new ticket returns, so that session() can look; read() and
    // friends just call again.
    if (st_->tickets != tickets_before) {
      return IoStatus::Ok;
    }
    if (sock_eof_) {
      last_error_ = "server closed the connection without close_notify";
      return IoStatus::Eof;
    }
    const IoStatus r = fillIn(deadline);
    if (r != IoStatus::Ok && r != IoStatus::Eof) {
      return r;  // Eof: SSL_read still gets what came before it, then we end up above
    }
  }
}

IoStatus TlsClient::write(std::string_view data, Deadline deadline) {
  if (!st_ || !hs_.ok) {
    last_error_ = "no TLS connection";
    return IoStatus::Error;
  }
  for (size_t pos = 0; pos < data.size(); pos += kIoChunk) {
    ERR_clear_error();
    const size_t len = std::min(kIoChunk, data.size() - pos);
    // A memory BIO grows as needed, so SSL_write takes everything or fails for good.
    if (SSL_write(st_->ssl, data.data() + pos, static_cast<int>(len)) <= 0) {
      last_error_ = tls::takeErrors("SSL_write");
      return IoStatus::Error;
    }
    const IoStatus f = flushOut(deadline);
    if (f != IoStatus::Ok) {
      return f;
    }
  }
  return IoStatus::Ok;
}

IoStatus TlsClient::read(size_t n, std::string* out, Deadline deadline) {
  if (!st_ || !hs_.ok) {
    last_error_ = "no TLS connection";
    return IoStatus::Error;
  }
  while (in_.size() < n) {
    const IoStatus r = readSome(deadline);
    if (r != IoStatus::Ok) {
      return r;
    }
  }
  out->append(in_, 0, n);
  in_.erase(0, n);
  return IoStatus::Ok;
}

IoStatus TlsClient::readLine(std::string* line, Deadline deadline) {
  if (!st_ || !hs_.ok) {
    last_error_ = "no TLS connection";
    return IoStatus::Error;
  }
  size_t nl;
  while ((nl = in_.find('\n')) == std::string::npos) {
    const IoStatus r = readSome(deadline);
    if (r != IoStatus::Ok) {
      return r;
    }
  }
  line->assign(in_, 0, nl);
  in_.erase(0, nl + 1);
  return IoStatus::Ok;
}

IoStatus TlsClient::readToEof(std::string* out, Deadline deadline) {
  if (!st_ || !hs_.ok) {
    last_error_ = "no TLS connection";
    return IoStatus::Error;
  }
  for (;;) {
    const IoStatus r = readSome(deadline);
    out->append(in_);
    in_.clear();
    if (r == IoStatus::Eof) {
      return IoStatus::Ok;
    }
    if (r != IoStatus::Ok) {
      return r;
    }
  }
}

IoStatus TlsClient::shutdown(Deadline deadline) {
  if (!st_ || !hs_.ok) {
    last_error_ = "no TLS connection";
    return IoStatus::Error;
  }
  ERR_clear_error();
  // 0 means "sent, the server's has not arrived": all we want, a half-close.
  if (SSL_shutdown(st_->ssl) < 0) {
    last_error_ = tls::takeErrors("SSL_shutdown");
    return IoStatus::Error;
  }
  const IoStatus f = flushOut(deadline);
  if (f != IoStatus::Ok) {
    return f;
  }
  if (::shutdown(fd_.get(), SHUT_WR) != 0) {
    last_error_ = "shutdown: " + errnoText(errno);
    return IoStatus::Error;
  }
  return IoStatus::Ok;
}

TlsSession TlsClient::session(Deadline deadline) {
  if (!st_ || !hs_.ok) {
    return nullptr;
  }
  if (st_->ticket == nullptr && hs_.version != "TLSv1.3") {
    // TLS 1.2 resumption of a resumed session: OpenSSL reports no new session; the current
    // one is the one to offer again.
    SSL_SESSION* s = SSL_get1_session(st_->ssl);
    if (s != nullptr) {
      st_->ticket = TlsSession(s, SSL_SESSION_free);
    }
  }
  while (st_->ticket == nullptr) {
    if (readSome(deadline) != IoStatus::Ok && st_->ticket == nullptr) {
      return nullptr;
    }
  }
  return st_->ticket;
}

std::string TlsClient::clientHelloBytes(const TlsClientOptions& options, std::string* error) {
  State st;
  std::string err = st.init(options);
  std::string flight = err.empty() ? st.firstFlight() : std::string();
  std::string payload;
  uint16_t version = 0;
  size_t records = 0;
  if (err.empty() && !splitRecords(flight, &payload, &version, &records)) {
    err = "OpenSSL's first flight is not a ClientHello";
  }
  if (!err.empty()) {
    if (error != nullptr) {
      *error = err;
    }
    return {};
  }
  if (options.hello.record_bytes > 0) {
    flight = joinRecords(payload, version, options.hello.record_bytes, &records);
  }
  return flight;
}

}  // namespace weir::test
