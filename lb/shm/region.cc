#include "shm/region.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

namespace weir::shm {
namespace {

constexpr size_t kPage = 4096;

size_t regionSize(uint32_t backends, uint32_t workers) {
  size_t bytes = sizeof(Header) + workers * sizeof(WorkerSlot) + backends * sizeof(BackendSlot);
  return (bytes + kPage - 1) / kPage * kPage;
}

bool keyEquals(const char* field, std::string_view key) {
  // Fields are NUL-terminated: keys longer than a field are never stored (findOrAdd).
  return std::strncmp(field, key.data(), key.size()) == 0 && field[key.size()] == '\0';
}

}  // namespace

util::Result<ShmRegion> ShmRegion::create(uint32_t backends, uint32_t workers) {
  if (backends == 0) {
    return util::SysError{EINVAL, "shm region with no backend slots"};
  }
  size_t size = regionSize(backends, workers);
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    return util::lastError("mmap " + std::to_string(size) + " bytes of shared memory");
  }
  // The pages are zero, which is every field's initial value; constructing the objects in
  // place makes that official for the atomics.
  auto* header = new (base) Header{};
  header->magic = kMagic;
  header->version = kVersion;
  header->size = size;
  header->worker_capacity = workers;
  header->backend_capacity = backends;
  auto* bytes = static_cast<char*>(base);
  for (uint32_t i = 0; i < workers; ++i) {
    new (bytes + sizeof(Header) + i * sizeof(WorkerSlot)) WorkerSlot{};
  }
  char* first_backend = bytes + sizeof(Header) + workers * sizeof(WorkerSlot);
  for (uint32_t i = 0; i < backends; ++i) {
    new (first_backend + i * sizeof(BackendSlot)) BackendSlot{};
  }
  return ShmRegion(base, size);
}

uint32_t ShmRegion::capacityFor(const config::Config& cfg) {
  size_t backends = 0;
  for (const auto& pool : cfg.pools) {
    backends += pool.backends.size();
  }
  return static_cast<uint32_t>(std::max<size_t>(64, 2 * backends));
}

ShmRegion::ShmRegion(void* base, size_t size) : base_(base), size_(size) {
  auto* bytes = static_cast<char*>(base);
  header_ = static_cast<Header*>(base);
  workers_ = reinterpret_cast<WorkerSlot*>(bytes + sizeof(Header));
  backends_ = reinterpret_cast<BackendSlot*>(bytes + sizeof(Header) +
                                             header_->worker_capacity * sizeof(WorkerSlot));
}

ShmRegion::ShmRegion(ShmRegion&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      header_(std::exchange(other.header_, nullptr)),
      workers_(std::exchange(other.workers_, nullptr)),
      backends_(std::exchange(other.backends_, nullptr)) {}

ShmRegion& ShmRegion::operator=(ShmRegion&& other) noexcept {
  ShmRegion moved(std::move(other));
  std::swap(base_, moved.base_);
  std::swap(size_, moved.size_);
  std::swap(header_, moved.header_);
  std::swap(workers_, moved.workers_);
  std::swap(backends_, moved.backends_);
  return *this;  // `moved` unmaps what this object held before
}

ShmRegion::~ShmRegion() {
  if (base_ != nullptr) {
    ::munmap(base_, size_);
  }
}

bool ShmRegion::valid() const {
  return header_ != nullptr && header_->magic == kMagic && header_->version == kVersion &&
         header_->size == size_ &&
         regionSize(header_->backend_capacity, header_->worker_capacity) == size_;
}

int ShmRegion::find(std::string_view pool, std::string_view address) const {
  if (pool.size() >= kPoolKeyLen || address.size() >= kAddressKeyLen) {
    return -1;
  }
  uint32_t count = backendCount();
  for (uint32_t i = 0; i < count; ++i) {
    if (keyEquals(backends_[i].pool, pool) && keyEquals(backends_[i].address, address)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

int ShmRegion::findOrAdd(std::string_view pool, std::string_view address) {
  if (int found = find(pool, address); found >= 0) {
    return found;
  }
  uint32_t count = backendCount();
  if (count >= header_->backend_capacity || pool.size() >= kPoolKeyLen ||
      address.size() >= kAddressKeyLen) {
    return -1;
  }
  BackendSlot& slot = backends_[count];
  std::memcpy(slot.pool, pool.data(), pool.size());
  slot.pool[pool.size()] = '\0';
  std::memcpy(slot.address, address.data(), address.size());
  slot.address[address.size()] = '\0';
  header_->backend_count.store(count + 1, std::memory_order_release);
  return static_cast<int>(count);
}

}  // namespace weir::shm
