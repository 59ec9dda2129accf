#pragma once

#include <cstdint>
#include <ctime>

namespace weir::tls {

// Session ticket keys shared by every worker of a listener, rotated, with forward secrecy.
//
// A chain of 32-byte secrets, one per period of `rotation` seconds of wall-clock time (epoch
// e = time / rotation). Each secret is derived from the one before by a one-way function, and
// the one before the previous is wiped: whoever reads a process's memory later learns today's
// and yesterday's keys, never older ones. The master makes the chain from random bytes and
// advances it; a worker inherits it at fork and advances its own copy the same way, so all
// workers (and later generations, forked from the master) agree on the key of every epoch
// without talking to each other. New tickets are encrypted under the current epoch's key;
// tickets of the previous epoch still decrypt (and are renewed), so a ticket lives between
// one and two periods. (A binary upgrade starts a new chain: tickets from before it no longer
// resume, clients just do a full handshake.)
class TicketKeys {
public:
  struct Key {
    uint8_t name[16];     // sent in the ticket: says which key encrypted it
    uint8_t aes[32];      // AES-256-CBC
    uint8_t hmac[32];     // HMAC-SHA256
  };

  // A fresh chain from the system's random source. Throws std::runtime_error if it fails.
  TicketKeys(uint32_t rotation_s, time_t now);
  ~TicketKeys();
  TicketKeys(const TicketKeys&) = default;
  TicketKeys& operator=(const TicketKeys&) = default;

  // Moves the chain to `now`'s epoch (never backwards: a clock that steps back keeps the
  // current key).
  void advance(time_t now);
  uint32_t rotation() const { return rotation_s_; }
  int64_t epoch() const { return epoch_; }
  // The key that encrypts new tickets.
  const Key& current() const { return keys_[1]; }
  // The key whose name is `name`: 1 = current, 2 = previous (decrypts, ticket to renew), 0 =
  // none (unknown or expired ticket: full handshake).
  int find(const uint8_t name[16], const Key** key) const;

private:
  void ratchet();
  static void derive(const uint8_t secret[32], Key& key);

  uint32_t rotation_s_;
  int64_t epoch_;
  uint8_t secret_[32];
  bool have_previous_ = false;
  Key keys_[2];  // [0] previous epoch, [1] current epoch
};

}  // namespace weir::tls
