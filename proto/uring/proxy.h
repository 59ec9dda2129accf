#pragma once

#include <netinet/in.h>

#include <cstdint>

// What both engines share, so that a comparison between them measures the engine alone.
namespace proto {

// One flow's copy buffer, as weir's CopyBuffer::kSize.
inline constexpr size_t kBufferSize = 16 * 1024;

struct Options {
  sockaddr_in backend{};
  int max_seconds = 10;
  // io_uring only: which sockets live in the ring's fixed-file table (direct descriptors).
  enum class Direct { None, Upstream, All } direct = Direct::None;
};

// Each engine runs one worker's loop on its own reuseport listener until max_seconds passed.
// Returns the process exit code.
int runEpoll(const Options& opts, int listen_fd);
int runUring(const Options& opts, int listen_fd);

// A nonblocking, unconnected TCP socket for the backend side with TCP_NODELAY set, as weir's
// upstream sockets: -1 with errno on failure.
int upstreamSocket();

}  // namespace proto
