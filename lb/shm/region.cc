#include "shm/region.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <new>
#include <optional>
#include <utility>

namespace weir::shm {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kLine = 64;

size_t roundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

// The part of a key field before its first NUL, or nullopt when the field has none (a key
// written by weir always has one; anything else was scribbled over).
std::optional<std::string> fieldText(const char* field, size_t len) {
  const size_t n = strnlen(field, len);
  if (n == len) {
    return std::nullopt;
  }
  return std::string(field, n);
}

}  // namespace

ShmRegion::Layout ShmRegion::layoutFor(uint32_t backends, uint32_t workers) {
  Layout l{};
  l.workers_at = sizeof(Header);
  l.backends_at = l.workers_at + size_t{workers} * sizeof(WorkerSlot);
  l.traffic_at = roundUp(l.backends_at + size_t{backends} * sizeof(BackendSlot), kLine);
  // Each worker's row starts on its own cache line: no two writers share one.
  l.row_stride = roundUp(size_t{backends} * sizeof(Traffic), kLine);
  l.size = roundUp(l.traffic_at + (size_t{workers} + 1) * l.row_stride, kPage);
  return l;
}

util::Result<ShmRegion> ShmRegion::create(uint32_t backends, uint32_t workers) {
  if (backends == 0 || workers == 0 || backends > kMaxBackendSlots ||
      workers > kMaxWorkerSlots) {
    return util::SysError{EINVAL, "shm region for " + std::to_string(backends) +
                                      " backends and " + std::to_string(workers) + " workers"};
  }
  const Layout l = layoutFor(backends, workers);
  net::UniqueFd fd(::memfd_create("weir-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) {
    return util::lastError("memfd_create");
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(l.size)) != 0) {
    return util::lastError("ftruncate shared memory to " + std::to_string(l.size) + " bytes");
  }
  // Nobody can change the size any more: a process that maps the region can never fault on
  // a page that was cut off behind its back.
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return util::lastError("seal shared memory");
  }
  void* base = ::mmap(nullptr, l.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (base == MAP_FAILED) {
    return util::lastError("mmap " + std::to_string(l.size) + " bytes of shared memory");
  }
  // The pages are zero, which is every field's initial value; constructing the objects in
  // place makes that official for the atomics.
  auto* bytes = static_cast<char*>(base);
  auto* header = new (base) Header{};
  header->magic = kMagic;
  header->version = kVersion;
  header->size = l.size;
  header->worker_slots = workers;
  header->backend_slots = backends;
  for (uint32_t i = 0; i < workers; ++i) {
    new (bytes + l.workers_at + i * sizeof(WorkerSlot)) WorkerSlot{};
  }
  for (uint32_t i = 0; i < backends; ++i) {
    new (bytes + l.backends_at + i * sizeof(BackendSlot)) BackendSlot{};
  }
  for (uint32_t row = 0; row <= workers; ++row) {
    for (uint32_t i = 0; i < backends; ++i) {
      new (bytes + l.traffic_at + row * l.row_stride + i * sizeof(Traffic)) Traffic{};
    }
  }
  return ShmRegion(std::move(fd), base, backends, workers, false);
}

util::Result<ShmRegion> ShmRegion::attach(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return util::lastError("fstat inherited shared memory");
  }
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
    return util::SysError{EINVAL, "inherited shared memory is not sealed against resizing"};
  }
  if (st.st_size < static_cast<off_t>(sizeof(Header))) {
    return util::SysError{EINVAL, "inherited shared memory is too small for a header"};
  }
  const auto size = static_cast<size_t>(st.st_size);
  void* base = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    return util::lastError("mmap inherited shared memory");
  }
  const auto* h = static_cast<const Header*>(base);
  std::string why;
  if (h->magic != kMagic || h->version != kVersion) {
    why = "its header is not weir's layout version " + std::to_string(kVersion);
  } else if (h->worker_slots == 0 || h->worker_slots > kMaxWorkerSlots ||
             h->backend_slots == 0 || h->backend_slots > kMaxBackendSlots) {
    why = "its layout numbers are out of range";
  } else if (h->size != size || layoutFor(h->backend_slots, h->worker_slots).size != size) {
    why = "its layout does not add up to its size";
  }
  if (!why.empty()) {
    ::munmap(base, size);
    return util::SysError{EINVAL, "inherited shared memory: " + why};
  }
  const uint32_t backends = h->backend_slots;
  const uint32_t workers = h->worker_slots;
  ShmRegion region(net::UniqueFd(), base, backends, workers, true);
  // Keys in use form a prefix; the first empty or broken one ends it.
  for (uint32_t i = 0; i < backends; ++i) {
    const BackendSlot& s = region.backend(i);
    auto pool = fieldText(s.pool, kPoolKeyLen);
    auto address = fieldText(s.address, kAddressKeyLen);
    if (!pool || !address || pool->empty() || address->empty()) {
      break;
    }
    region.keys_.push_back({std::move(*pool), std::move(*address)});
  }
  return region;
}

uint32_t ShmRegion::capacityFor(const config::Config& cfg) {
  size_t backends = 0;
  for (const auto& pool : cfg.pools) {
    backends += pool.backends.size();
  }
  return static_cast<uint32_t>(std::clamp<size_t>(backends, 1, kMaxBackendSlots));
}

ShmRegion::ShmRegion(net::UniqueFd fd, void* base, uint32_t backends, uint32_t workers,
                     bool read_only)
    : fd_(std::move(fd)),
      base_(base),
      backends_(backends),
      workers_(workers),
      layout_(layoutFor(backends, workers)),
      read_only_(read_only),
      header_(static_cast<Header*>(base)) {}

ShmRegion::ShmRegion(ShmRegion&& other) noexcept
    : fd_(std::move(other.fd_)),
      base_(std::exchange(other.base_, nullptr)),
      backends_(std::exchange(other.backends_, 0)),
      workers_(std::exchange(other.workers_, 0)),
      layout_(std::exchange(other.layout_, Layout{})),
      read_only_(other.read_only_),
      header_(std::exchange(other.header_, nullptr)),
      keys_(std::move(other.keys_)) {}

ShmRegion& ShmRegion::operator=(ShmRegion&& other) noexcept {
  ShmRegion moved(std::move(other));
  std::swap(fd_, moved.fd_);
  std::swap(base_, moved.base_);
  std::swap(backends_, moved.backends_);
  std::swap(workers_, moved.workers_);
  std::swap(layout_, moved.layout_);
  std::swap(read_only_, moved.read_only_);
  std::swap(header_, moved.header_);
  std::swap(keys_, moved.keys_);
  return *this;  // `moved` unmaps what this object held before
}

ShmRegion::~ShmRegion() {
  if (base_ != nullptr) {
    ::munmap(base_, layout_.size);
  }
}

bool ShmRegion::intact() const {
  return header_ != nullptr && header_->magic == kMagic && header_->version == kVersion &&
         header_->size == layout_.size && header_->worker_slots == workers_ &&
         header_->backend_slots == backends_;
}

BackendSlot& ShmRegion::backend(uint32_t i) const {
  assert(i < backends_);
  return *reinterpret_cast<BackendSlot*>(static_cast<char*>(base_) + layout_.backends_at +
                                         size_t{i} * sizeof(BackendSlot));
}

WorkerSlot& ShmRegion::worker(uint32_t i) const {
  assert(i < workers_);
  return *reinterpret_cast<WorkerSlot*>(static_cast<char*>(base_) + layout_.workers_at +
                                        size_t{i} * sizeof(WorkerSlot));
}

Traffic& ShmRegion::traffic(uint32_t row, uint32_t i) const {
  assert(row <= workers_ && i < backends_);
  return *reinterpret_cast<Traffic*>(static_cast<char*>(base_) + layout_.traffic_at +
                                     size_t{row} * layout_.row_stride +
                                     size_t{i} * sizeof(Traffic));
}

int ShmRegion::find(std::string_view pool, std::string_view address) const {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i].pool == pool && keys_[i].address == address) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

int ShmRegion::findOrAdd(std::string_view pool, std::string_view address) {
  if (int found = find(pool, address); found >= 0) {
    return found;
  }
  const size_t count = keys_.size();
  if (read_only_ || count >= backends_ || pool.empty() || address.empty() ||
      pool.size() >= kPoolKeyLen || address.size() >= kAddressKeyLen) {
    return -1;
  }
  // The shared copy is for readers outside this process tree (and a binary upgrade).
  BackendSlot& slot = backend(static_cast<uint32_t>(count));
  std::memcpy(slot.pool, pool.data(), pool.size());
  slot.pool[pool.size()] = '\0';
  std::memcpy(slot.address, address.data(), address.size());
  slot.address[address.size()] = '\0';
  keys_.push_back({std::string(pool), std::string(address)});
  return static_cast<int>(count);
}

bool ShmRegion::restartRamp(std::string_view pool, std::string_view address, int64_t now_ms) {
  const int i = find(pool, address);
  if (read_only_ || i < 0) {
    return false;
  }
  BackendSlot& b = backend(static_cast<uint32_t>(i));
  // The state is shared memory any worker can write: a wrong value here starts a ramp or
  // skips one, nothing more.
  if (b.state.load(std::memory_order_acquire) != static_cast<uint32_t>(BackendState::Up)) {
    return false;
  }
  b.changed_ms.store(now_ms, std::memory_order_relaxed);
  header_->health_generation.fetch_add(1, std::memory_order_release);
  return true;
}

void ShmRegion::retireWorker(uint32_t w) {
  if (read_only_ || w >= workers_) {
    return;
  }
  WorkerSlot& stats = worker(w);
  stats.pid.store(0, std::memory_order_relaxed);
  stats.active.store(0, std::memory_order_relaxed);
  for (auto& l : stats.listeners) {
    l.active.store(0, std::memory_order_relaxed);
  }
  for (uint32_t i = 0; i < backends_; ++i) {
    traffic(w + 1, i).active.store(0, std::memory_order_relaxed);
    // A worker killed while it held a reservation lock: free it (1 + its row, see layout.h).
    uint32_t held = w + 2;
    (void)backend(i).reserving.compare_exchange_strong(held, 0);
  }
}

bool ShmRegion::setAdmin(std::string_view pool, std::string_view address, AdminState state) {
  const int i = find(pool, address);
  if (read_only_ || i < 0) {
    return false;
  }
  backend(static_cast<uint32_t>(i)).admin.store(static_cast<uint32_t>(state),
                                                std::memory_order_release);
  header_->health_generation.fetch_add(1, std::memory_order_release);
  return true;
}

}  // namespace weir::shm
