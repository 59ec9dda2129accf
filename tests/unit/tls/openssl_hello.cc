#include "openssl_hello.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <memory>

namespace weir::tls::testing {
namespace {

constexpr unsigned kPaddingExtension = 0xfde8;  // private use; OpenSSL knows nothing of it

struct Padding {
  std::vector<uint8_t> bytes;
};

int addPadding(SSL*, unsigned, unsigned, const unsigned char** out, size_t* outlen, X509*,
               size_t, int*, void* arg) {
  const auto* padding = static_cast<const Padding*>(arg);
  *out = padding->bytes.data();
  *outlen = padding->bytes.size();
  return 1;
}

struct CtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

}  // namespace

std::vector<uint8_t> opensslClientHello(const ClientOptions& options) {
  std::unique_ptr<SSL_CTX, CtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    ADD_FAILURE() << "SSL_CTX_new failed";
    return {};
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (options.tls12_only) {
    SSL_CTX_set_max_proto_version(ctx.get(), TLS1_2_VERSION);
  }
  Padding padding{std::vector<uint8_t>(options.padding, 0x5a)};
  if (options.padding > 0 &&
      SSL_CTX_add_custom_ext(ctx.get(), kPaddingExtension, SSL_EXT_CLIENT_HELLO, addPadding,
                             nullptr, &padding, nullptr, nullptr) != 1) {
    ADD_FAILURE() << "SSL_CTX_add_custom_ext failed";
    return {};
  }
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), in, out);  // ssl owns both now
  SSL_set_connect_state(ssl.get());
  if (!options.sni.empty() && SSL_set_tlsext_host_name(ssl.get(), options.sni.c_str()) != 1) {
    ADD_FAILURE() << "SSL_set_tlsext_host_name failed";
    return {};
  }
  if (!options.alpn.empty()) {
    std::vector<uint8_t> wire;
    for (const std::string& name : options.alpn) {
      wire.push_back(static_cast<uint8_t>(name.size()));
      wire.insert(wire.end(), name.begin(), name.end());
    }
    // 0 on success, unlike the rest of OpenSSL.
    if (SSL_set_alpn_protos(ssl.get(), wire.data(), static_cast<unsigned>(wire.size())) != 0) {
      ADD_FAILURE() << "SSL_set_alpn_protos failed";
      return {};
    }
  }
  if (options.max_fragment > 0 &&
      SSL_set_max_send_fragment(ssl.get(), options.max_fragment) != 1) {
    ADD_FAILURE() << "SSL_set_max_send_fragment failed";
    return {};
  }
  // No server answers: the client writes its hello and then wants to read.
  int rc = SSL_connect(ssl.get());
  if (rc > 0 || SSL_get_error(ssl.get(), rc) != SSL_ERROR_WANT_READ) {
    ADD_FAILURE() << "SSL_connect did not stop to wait for the server";
    return {};
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(out, &data);
  return std::vector<uint8_t>(data, data + size);
}

std::vector<uint8_t> handshakeMessage(const std::vector<uint8_t>& stream) {
  std::vector<uint8_t> message;
  for (size_t off = 0; off + 5 <= stream.size();) {
    size_t len = size_t{stream[off + 3]} << 8 | stream[off + 4];
    message.insert(message.end(), stream.begin() + off + 5, stream.begin() + off + 5 + len);
    off += 5 + len;
  }
  return message;
}

std::vector<uint8_t> intoRecords(const std::vector<uint8_t>& message,
                                 const std::vector<size_t>& sizes) {
  std::vector<uint8_t> stream;
  size_t i = 0;
  for (size_t off = 0; off < message.size(); ++i) {
    size_t len = std::min(sizes[std::min(i, sizes.size() - 1)], message.size() - off);
    stream.insert(stream.end(), {22, 3, static_cast<uint8_t>(i == 0 ? 1 : 3),
                                 static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)});
    stream.insert(stream.end(), message.begin() + off, message.begin() + off + len);
    off += len;
  }
  return stream;
}

}  // namespace weir::tls::testing
