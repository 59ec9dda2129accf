#include "tls/ticket_keys.h"

#include <cstring>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace weir::tls {
namespace {

// HMAC-SHA256(key, label) into out (32 bytes).
void hmac(const uint8_t key[32], const char* label, uint8_t out[32]) {
  size_t len = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key, 32,
                reinterpret_cast<const unsigned char*>(label), std::strlen(label), out, 32,
                &len) == nullptr ||
      len != 32) {
    throw std::runtime_error("ticket keys: HMAC-SHA256 failed");
  }
}

}  // namespace

TicketKeys::TicketKeys(uint32_t rotation_s, time_t now)
    : rotation_s_(rotation_s == 0 ? 1 : rotation_s),
      epoch_(static_cast<int64_t>(now) / rotation_s_) {
  if (RAND_bytes(secret_, sizeof secret_) != 1) {
    throw std::runtime_error("ticket keys: no random bytes");
  }
  derive(secret_, keys_[1]);
  std::memset(&keys_[0], 0, sizeof keys_[0]);
}

TicketKeys::~TicketKeys() {
  OPENSSL_cleanse(secret_, sizeof secret_);
  OPENSSL_cleanse(keys_, sizeof keys_);
}

void TicketKeys::derive(const uint8_t secret[32], Key& key) {
  uint8_t name[32];
  hmac(secret, "weir ticket name", name);
  std::memcpy(key.name, name, sizeof key.name);
  hmac(secret, "weir ticket aes", key.aes);
  hmac(secret, "weir ticket hmac", key.hmac);
  OPENSSL_cleanse(name, sizeof name);
}

void TicketKeys::ratchet() {
  uint8_t next[32];
  hmac(secret_, "weir ticket next", next);
  std::memcpy(secret_, next, sizeof secret_);
  OPENSSL_cleanse(next, sizeof next);
  keys_[0] = keys_[1];
  have_previous_ = true;
  derive(secret_, keys_[1]);
  ++epoch_;
}

void TicketKeys::advance(time_t now) {
  const int64_t target = static_cast<int64_t>(now) / rotation_s_;
  while (epoch_ < target) {
    ratchet();  // one HMAC round per elapsed period: a process asleep for days catches up
  }
}

int TicketKeys::find(const uint8_t name[16], const Key** key) const {
  if (std::memcmp(name, keys_[1].name, sizeof keys_[1].name) == 0) {
    *key = &keys_[1];
    return 1;
  }
  if (have_previous_ && std::memcmp(name, keys_[0].name, sizeof keys_[0].name) == 0) {
    *key = &keys_[0];
    return 2;
  }
  return 0;
}

}  // namespace weir::tls
