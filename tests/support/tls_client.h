#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "support/deadline.h"
#include "support/fd.h"
#include "support/net_io.h"
#include "support/sock_addr.h"

// Declared by <openssl/ssl.h>, which this header does not need whole (a repeated typedef of
// the same type is allowed).
typedef struct ssl_session_st SSL_SESSION;

// A TLS client for tests: blocking calls bounded by deadlines, like net_io.h.
//
// OpenSSL never touches the socket: it reads and writes memory BIOs and this class moves the
// bytes between them and a non-blocking TCP socket. That puts the test in charge of exactly
// what goes onto the wire, which is what ClientHello shaping (HelloShaping) needs.
namespace weir::test {

enum class TlsVersion { Tls12, Tls13 };

// An owned reference to an SSL_SESSION (freed with SSL_SESSION_free when the last copy goes).
using TlsSession = std::shared_ptr<SSL_SESSION>;

// How the first flight (the ClientHello) goes onto the wire. Later flights are not shaped.
struct HelloShaping {
  // > 0: the ClientHello handshake message is re-cut into TLS records carrying this many
  // payload bytes each (the last one fewer). Servers must reassemble handshake messages
  // split over records (RFC 8446 section 5.1); OpenSSL does.
  size_t record_bytes = 0;
  // > 0: the (re-cut) records are written with one send() per this many bytes, TCP_NODELAY
  // on. Separate writes are separate segments only if nothing coalesces them; a test cannot
  // force the receiver to read them apart. With wait_acked, each write waits until the peer
  // has acknowledged everything sent so far (SIOCOUTQ == 0, polled every millisecond, at most
  // ack_timeout per write), so each write leaves on its own and, on loopback, the peer's
  // kernel has usually handed the previous bytes to the reader. A reader that only peeks
  // delays its ACKs (delayed ACK, ~40 ms per write after the first few).
  size_t segment_bytes = 0;
  bool wait_acked = true;
  Clock::duration ack_timeout = milliseconds(500);
  // > 0: an extension of type kPadExtensionType grows the ClientHello handshake message
  // (4-byte handshake header included, record headers not) to exactly this many bytes. The
  // size without it is measured first with a throwaway connection object; if the hello is
  // already larger, it is sent unpadded (TlsHandshake::hello_bytes tells). At most 65535.
  size_t pad_to = 0;
};

// A GREASE value (RFC 8701): a server must ignore it, so padding never changes the outcome.
inline constexpr uint16_t kPadExtensionType = 0x2a2a;

struct TlsClientOptions {
  std::string sni;                // server_name to send; empty: none
  std::vector<std::string> alpn;  // protocols to offer, in order; empty: no ALPN extension
  TlsVersion min_version = TlsVersion::Tls12;
  TlsVersion max_version = TlsVersion::Tls13;
  // PEM file of trusted CAs. Empty: the server certificate is not verified (it is still
  // received and reported).
  std::string ca_file;
  // With ca_file: the DNS name (or IP address) the certificate must match. Empty: any.
  std::string verify_host;
  // Client certificate chain and key (PEM), for servers that ask for one. Empty: none.
  std::string cert_file;
  std::string key_file;
  // A session from TlsClient::session() of an earlier connection, to resume.
  TlsSession session;
  HelloShaping hello;
  // Bytes written before the ClientHello, in a write of their own: a PROXY protocol header.
  std::string preamble;
  // Bound on connect + handshake.
  Clock::duration timeout = seconds(10);
};

// What the handshake produced.
struct TlsHandshake {
  bool ok = false;
  std::string error;         // when !ok: what failed ("connect ...", OpenSSL's reasons,
                             // the verify result, "server closed during the handshake")
  std::string version;       // "TLSv1.2", "TLSv1.3"
  std::string alpn;          // selected protocol, "" if none
  bool resumed = false;      // the offered session was accepted
  std::string cert_cn;       // server certificate subject CN, "" if none
  std::vector<std::string> cert_names;  // its subjectAltName DNS names and IP addresses
  long verify_result = 0;    // SSL_get_verify_result (X509_V_OK = 0)
  size_t hello_bytes = 0;    // ClientHello handshake message size (what pad_to targets)
  size_t hello_records = 0;  // TLS records it was sent in
  size_t hello_writes = 0;   // send() calls it was written with
  size_t ack_waits_timed_out = 0;  // HelloShaping::wait_acked waits that gave up
};

class TlsClient {
public:
  TlsClient();
  TlsClient(TlsClient&&) noexcept;
  TlsClient& operator=(TlsClient&&) noexcept;
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;
  ~TlsClient();

  // Connects to `addr` and runs the handshake. Never throws for network or TLS failures:
  // check handshake().ok / error. The socket stays open after a failed handshake (so a test
  // can still watch how the server closes it) unless the connect itself failed.
  static TlsClient connect(const SockAddr& addr, const TlsClientOptions& options);
  // Same with "IP:PORT" / "[V6]:PORT"; a malformed endpoint is a failed handshake.
  static TlsClient connect(std::string_view endpoint, const TlsClientOptions& options);

  const TlsHandshake& handshake() const { return hs_; }
  bool ok() const { return hs_.ok; }
  int fd() const { return fd_.get(); }

  // Encrypts and sends all of `data`. Does not read meanwhile, so keep what is unread by
  // the peer small (an echo server stops reading once its own output backs up).
  IoStatus write(std::string_view data, Deadline deadline);
  // Reads exactly `n` plaintext bytes and appends them to `*out`. Eof when the server
  // closes first (with or without close_notify; see closeNotifyReceived()).
  IoStatus read(size_t n, std::string* out, Deadline deadline);
  // Reads up to and including the next '\n'; `*line` gets the line without it.
  IoStatus readLine(std::string* line, Deadline deadline);
  // Reads until the server closes; appends everything to `*out`. Ok at EOF.
  IoStatus readToEof(std::string* out, Deadline deadline);
  // Sends close_notify, then shuts down the socket's sending side.
  IoStatus shutdown(Deadline deadline);

  // The session to resume on a later connection. TLS 1.2 has it once the handshake is done;
  // TLS 1.3 servers send tickets after it, so this reads (keeping any application data for
  // later reads) until a ticket arrives. Null at the deadline or if the server sent none.
  TlsSession session(Deadline deadline);

  // True once the server's close_notify alert was read; false at an EOF without one.
  bool closeNotifyReceived() const { return close_notify_; }
  // The last I/O failure in words ("" if none).
  const std::string& lastError() const { return last_error_; }

  // The first flight OpenSSL would send for `options` (the ClientHello records, after
  // record_bytes re-cutting and pad_to padding), without connecting. For tests that send a
  // hello by hand, truncated or byte-shaped. Empty on failure, with the reason in `*error`.
  static std::string clientHelloBytes(const TlsClientOptions& options,
                                      std::string* error = nullptr);

private:
  struct State;

  IoStatus fillIn(Deadline deadline);
  IoStatus flushOut(Deadline deadline);
  IoStatus readSome(Deadline deadline);
  void runHandshake(const TlsClientOptions& options, Deadline deadline);

  Fd fd_;
  TlsHandshake hs_;
  std::unique_ptr<State> st_;  // OpenSSL objects
  std::string in_;             // plaintext read but not yet returned
  bool sock_eof_ = false;
  bool close_notify_ = false;
  std::string last_error_;
};

}  // namespace weir::test
