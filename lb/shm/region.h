#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "net/unique_fd.h"
#include "shm/layout.h"
#include "util/result.h"

namespace weir::shm {

// Owns one shared mapping laid out as in layout.h: a sealed memfd ("weir-shm", so that
// /proc/PID/maps names it) mapped MAP_SHARED. Created by the master before it forks: children
// inherit the mapping (not a copy: MAP_SHARED pages stay shared across fork), so every process
// sees every other's updates at once. The memfd stays open in the master (close-on-exec) so a
// binary upgrade can hand the region to the new master, which carries health state over.
//
// The layout (sizes, counts, offsets) and the backend keys live in this object, in the
// owning process's private memory; nothing here is ever read back from the shared pages, which
// every worker can write. Every backend is added before the first fork, so children inherit a
// complete private copy. Move-only; the destructor unmaps (in this process only).
class ShmRegion {
public:
  // Maps a zeroed region with room for `backends` backend slots and `workers` worker slots (1 +
  // workers traffic rows) and writes the header. Fails with the errno of memfd_create,
  // ftruncate or mmap, or EINVAL for zero backends or workers or too many of either.
  static util::Result<ShmRegion> create(uint32_t backends, uint32_t workers);
  // Maps read-only a region another master created and handed over (binary upgrade), after
  // checking what it can: the memfd is sealed against shrinking (a shrunk file would fault
  // this process), the header carries weir's magic and this build's layout version, and its
  // layout numbers are in range and add up to the file's size. Copies the keys into private
  // memory (a key that is not NUL-terminated in its field is dropped: it matches nothing).
  // Fails with EINVAL (or the errno of fstat/mmap) and a message saying what did not check out.
  static util::Result<ShmRegion> attach(int fd);
  // Backend slots for `cfg`: one per configured backend (at least one).
  static uint32_t capacityFor(const config::Config& cfg);

  ShmRegion(ShmRegion&& other) noexcept;
  ShmRegion& operator=(ShmRegion&& other) noexcept;
  ShmRegion(const ShmRegion&) = delete;
  ShmRegion& operator=(const ShmRegion&) = delete;
  ~ShmRegion();

  // True while the header still says what this process knows: weir's magic, this layout
  // version and this process's own layout numbers. False once something overwrote it.
  bool intact() const;
  // The memfd (-1 for an attached region): what a binary upgrade hands over.
  int fd() const { return fd_.get(); }
  bool readOnly() const { return read_only_; }

  Header& header() const { return *header_; }
  uint32_t backendCount() const { return static_cast<uint32_t>(keys_.size()); }
  uint32_t backendCapacity() const { return backends_; }
  uint32_t workerSlots() const { return workers_; }
  // Traffic rows: row 0 is the carried totals, row 1 + w worker slot w's.
  uint32_t trafficRows() const { return workers_ + 1; }
  // i < backendCapacity().
  BackendSlot& backend(uint32_t i) const;
  // i < workerSlots().
  WorkerSlot& worker(uint32_t i) const;
  // row < trafficRows(), i < backendCapacity().
  Traffic& traffic(uint32_t row, uint32_t i) const;
  // Bytes from one traffic row to the next.
  size_t trafficRowStride() const { return layout_.row_stride; }

  // The slot keyed (pool, address), or -1. Looks in this process's copy of the keys.
  int find(std::string_view pool, std::string_view address) const;
  std::string_view poolOf(uint32_t i) const { return keys_[i].pool; }
  std::string_view addressOf(uint32_t i) const { return keys_[i].address; }
  // The slot keyed (pool, address), allocated (state Up, counters zero) if there is none.
  // Only the master calls this, and only before it forks the region's children. Returns -1 if
  // the region is full, read-only, or a key part is too long for its field.
  int findOrAdd(std::string_view pool, std::string_view address);

  // The master: sets the admin state of the backend keyed (pool, address) and bumps the
  // health generation so that workers see it. Returns false (nothing written) if the region
  // has no such backend or is read-only.
  bool setAdmin(std::string_view pool, std::string_view address, AdminState state);
  // The master, on `weirctl enable`: if the backend keyed (pool, address) is up, its state
  // counts as changed at now_ms, so that a pool with slow_start ramps it from there as it
  // ramps a backend coming up (a down one keeps its time: its hold-down counts from it).
  // Returns whether it wrote.
  bool restartRamp(std::string_view pool, std::string_view address, int64_t now_ms);

  // The master, after worker slot w's process died: zeroes what it held (its active counts in
  // its traffic row and in its WorkerSlot, any reservation lock it held) and marks the slot
  // empty; its totals stay. Bounded
  // by this process's own layout; nothing read from the region is trusted.
  void retireWorker(uint32_t w);

private:
  struct Key {
    std::string pool;
    std::string address;
  };
  struct Layout {
    size_t workers_at;
    size_t backends_at;
    size_t traffic_at;
    size_t row_stride;
    size_t size;
  };
  static Layout layoutFor(uint32_t backends, uint32_t workers);
  ShmRegion(net::UniqueFd fd, void* base, uint32_t backends, uint32_t workers, bool read_only);

  net::UniqueFd fd_;
  void* base_ = nullptr;
  uint32_t backends_ = 0;
  uint32_t workers_ = 0;
  Layout layout_{};
  bool read_only_ = false;
  Header* header_ = nullptr;
  std::vector<Key> keys_;
};

}  // namespace weir::shm
