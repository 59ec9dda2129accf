#pragma once

#include <openssl/types.h>
#include <sys/types.h>

#include <cstddef>
#include <string>

#include "support/testsrv/conn.h"

namespace weir::testsrv {

// The OpenSSL side of one non-blocking TLS connection (OpenSSL reads and writes the socket
// itself). read() and write() behave like recv() and send() so the server loop treats both
// kinds of connection alike.
//
// Level-triggered epoll stays correct because OpenSSL's read-ahead is off (the default): it
// takes from the socket only the record it is decoding, and read() is given room for a whole
// record's plaintext, so no decoded data waits inside OpenSSL while the socket looks idle.
class TlsStream {
public:
  enum class Step { Done, Again, Failed };

  // Borrows `fd` (the Conn owns it). Check valid().
  TlsStream(SSL_CTX* ctx, int fd);
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;
  ~TlsStream();

  bool valid() const { return ssl_ != nullptr; }
  // Advances the handshake. Again: wait for the socket (wantsWrite() says which way).
  // Failed: the reason is in `*error`.
  Step handshake(std::string* error);
  // Like recv(): > 0 bytes, 0 at the client's close_notify or TCP EOF, -1 with errno
  // EAGAIN (try again when the socket is ready) or ECONNRESET (a TLS error: give up).
  ssize_t read(char* buf, size_t len);
  // Like send(): bytes taken (one record at most), or -1 with errno EAGAIN or EPIPE.
  // Retries after EAGAIN must pass the same bytes again (at least as many).
  ssize_t write(const char* buf, size_t len);
  // Queues our close_notify; best effort (a full socket drops it, the TCP FIN still follows).
  void sendCloseNotify();
  // True if the last call stopped because the socket could not take more.
  bool wantsWrite() const { return want_write_; }
  // What the handshake settled; call once handshake() returned Done.
  TlsInfo info() const;

  // For TlsContext's callbacks.
  void setSni(std::string sni) { sni_ = std::move(sni); }
  void setAlpnOffered(std::string offered) { alpn_offered_ = std::move(offered); }

private:
  // Maps a failed SSL call's result to errno; returns -1.
  ssize_t fail(int rc, int hard_errno);

  SSL* ssl_ = nullptr;
  bool want_write_ = false;
  std::string sni_;
  std::string alpn_offered_;
};

}  // namespace weir::testsrv
