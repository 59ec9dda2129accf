#include "engine/engine.h"
#include "engine/epoll_engine.h"
#include "engine/uring_engine.h"

namespace weir::engine {

const char* toString(Kind kind) {
  switch (kind) {
    case Kind::Epoll:
      return "epoll";
    case Kind::IoUring:
      return "io_uring";
  }
  return "?";
}

std::unique_ptr<Engine> make(Kind wanted, std::string& fallback_reason) {
  fallback_reason.clear();
  if (wanted == Kind::IoUring) {
    if (auto uring = UringEngine::create(fallback_reason)) {
      return uring;
    }
  }
  return std::make_unique<EpollEngine>();
}

}  // namespace weir::engine
