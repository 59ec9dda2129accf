#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.h"
#include "shm/layout.h"
#include "util/result.h"

namespace weir::shm {

// Owns one anonymous MAP_SHARED mapping laid out as in layout.h. Created by the master before
// it forks: children inherit the mapping (not a copy: MAP_SHARED pages stay shared across
// fork), so every process sees every other's updates at once. The capacity is fixed at
// creation; a reload that needs more slots creates a new region and carries state over
// (carry_over.h). Move-only; the destructor unmaps (in this process only).
class ShmRegion {
public:
  // Maps a zeroed region with room for `backends` backend slots and `workers` worker slots and
  // writes the header. Fails with the errno of mmap (ENOMEM), or EINVAL for zero backends.
  static util::Result<ShmRegion> create(uint32_t backends, uint32_t workers = kWorkerSlots);
  // Backend slots for `cfg`: twice its backends (so reloads can add backends to the same
  // region), at least 64.
  static uint32_t capacityFor(const config::Config& cfg);

  ShmRegion(ShmRegion&& other) noexcept;
  ShmRegion& operator=(ShmRegion&& other) noexcept;
  ShmRegion(const ShmRegion&) = delete;
  ShmRegion& operator=(const ShmRegion&) = delete;
  ~ShmRegion();

  // True if the header carries weir's magic, this build's version and the mapped size.
  bool valid() const;

  Header& header() const { return *header_; }
  uint32_t backendCount() const {
    return header_->backend_count.load(std::memory_order_acquire);
  }
  uint32_t backendCapacity() const { return header_->backend_capacity; }
  uint32_t workerCapacity() const { return header_->worker_capacity; }
  // i < backendCount() (any slot below capacity is addressable; unused ones are zero).
  BackendSlot& backend(uint32_t i) const { return backends_[i]; }
  // i < workerCapacity().
  WorkerSlot& worker(uint32_t i) const { return workers_[i]; }

  // The slot keyed (pool, address), or -1.
  int find(std::string_view pool, std::string_view address) const;
  // The slot keyed (pool, address), allocated (state Up, counters zero) if there is none.
  // Only the master calls this, never concurrently with itself. Returns -1 if the region is
  // full or a key part is too long for its field.
  int findOrAdd(std::string_view pool, std::string_view address);

private:
  ShmRegion(void* base, size_t size);

  void* base_ = nullptr;
  size_t size_ = 0;
  Header* header_ = nullptr;
  WorkerSlot* workers_ = nullptr;
  BackendSlot* backends_ = nullptr;
};

}  // namespace weir::shm
