/* flood: connection attempts from one source address, as fast as it can (or at a set rate), for
 * the benchmark's denied-flood workload. Built by the driver with `cc -O2`.
 *
 *   flood SRC DST PORT SECONDS MAX_ATTEMPTS IN_FLIGHT RATE
 *
 * Opens non-blocking TCP sockets bound to SRC (port chosen at connect: IP_BIND_ADDRESS_NO_PORT),
 * connects them to DST:PORT, keeps at most IN_FLIGHT connects pending, and counts how each
 * ends: refused (ECONNREFUSED: a RST answered the SYN), established (closed at once), reset
 * (ECONNRESET: established, then reset by the server before the flood looked: HAProxy refuses
 * so), timed out (no answer within 1 s: a SYN dropped, say because the accept queue is full)
 * or another error.
 * Every socket is closed with SO_LINGER 0: an established one is reset, so neither side keeps it
 * in TIME_WAIT and the ephemeral ports of SRC do not run out. RATE 0 is as fast as it can;
 * otherwise attempts are started at RATE per second at most.
 *
 * Prints "flooding" once the first attempt is under way, then, when SECONDS have passed or
 * MAX_ATTEMPTS were made (whichever comes first) and the last pending connects ended (at most
 * 1 s more), one JSON line of counts. Exit status 0, or 2 on bad arguments or if nothing could
 * be set up. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { kMaxInFlight = 4096, kTimeoutNs = 1000000000, kErrnoSlots = 160 };

static int64_t nowNs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct Slot {
  int fd;            /* -1: free */
  int64_t started;   /* nowNs() at connect() */
};

static struct Slot slots[kMaxInFlight];
static int free_list[kMaxInFlight];
static int free_count;
static uint64_t attempts, refused, established, reset, timed_out;
static uint64_t errors[kErrnoSlots]; /* by errno; the last slot holds any larger errno */

static void countError(int err) {
  errors[err > 0 && err < kErrnoSlots ? err : kErrnoSlots - 1]++;
}

static void finish(int epfd, int i, int err) {
  if (err == 0) {
    established++;
  } else if (err == ECONNREFUSED) {
    refused++;
  } else if (err == ECONNRESET) {
    reset++;
  } else if (err == ETIMEDOUT) {
    timed_out++;
  } else {
    countError(err);
  }
  epoll_ctl(epfd, EPOLL_CTL_DEL, slots[i].fd, NULL);
  close(slots[i].fd); /* SO_LINGER 0: a RST if established, no TIME_WAIT */
  slots[i].fd = -1;
  free_list[free_count++] = i;
}

/* Starts one attempt in a free slot. Returns 0, or the errno of the call that failed (the
 * attempt is counted under it: EADDRNOTAVAIL means SRC's ephemeral ports ran out, EMFILE the
 * open-file limit). */
static int start(int epfd, const struct sockaddr_in* src, const struct sockaddr_in* dst) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  attempts++;
  if (fd < 0) {
    countError(errno);
    return errno;
  }
  int one = 1;
  struct linger lin = {.l_onoff = 1, .l_linger = 0};
  if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof lin) != 0 ||
      bind(fd, (const struct sockaddr*)src, sizeof *src) != 0) {
    int err = errno;
    countError(err);
    close(fd);
    return err;
  }
  int i = free_list[--free_count];
  slots[i].fd = fd;
  slots[i].started = nowNs();
  struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};
  epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
  if (connect(fd, (const struct sockaddr*)dst, sizeof *dst) != 0 && errno != EINPROGRESS) {
    int err = errno; /* loopback may refuse at once, or ports may run out here */
    finish(epfd, i, err);
    return err == ECONNREFUSED ? 0 : err;
  }
  return 0;
}

static int parseAddr(const char* text, uint16_t port, struct sockaddr_in* out) {
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons(port);
  return inet_pton(AF_INET, text, &out->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char** argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: flood SRC DST PORT SECONDS MAX_ATTEMPTS IN_FLIGHT RATE\n");
    return 2;
  }
  long port = strtol(argv[3], NULL, 10);
  double seconds = strtod(argv[4], NULL);
  unsigned long long max_attempts = strtoull(argv[5], NULL, 10);
  long in_flight = strtol(argv[6], NULL, 10);
  double rate = strtod(argv[7], NULL);
  struct sockaddr_in src, dst;
  if (parseAddr(argv[1], 0, &src) != 0 || port <= 0 || port > 65535 ||
      parseAddr(argv[2], (uint16_t)port, &dst) != 0 || !(seconds > 0 && seconds <= 600) ||
      max_attempts == 0 || in_flight < 1 || in_flight > kMaxInFlight || !(rate >= 0)) {
    fprintf(stderr, "flood: bad arguments (SECONDS in (0, 600], IN_FLIGHT in [1, %d])\n",
            kMaxInFlight);
    return 2;
  }
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    perror("flood: epoll_create1");
    return 2;
  }
  for (int i = 0; i < in_flight; i++) {
    slots[i].fd = -1;
    free_list[free_count++] = (int)in_flight - 1 - i;
  }
  const int64_t began = nowNs();
  const int64_t stop_at = began + (int64_t)(seconds * 1e9);
  /* Stops waiting for the last connects 1 s after stop_at, whatever happens. */
  const int64_t give_up_at = stop_at + kTimeoutNs + 100000000;
  int announced = 0;
  int64_t opened_for = 0; /* ns from the first attempt to the last one started */
  int backoff = 0; /* after a failure to start one: wait for a slot to end before the next */
  struct epoll_event events[256];
  for (;;) {
    int64_t now = nowNs();
    int opening = now < stop_at && attempts < max_attempts;
    if (!opening && opened_for == 0) {
      opened_for = now - began;
    }
    if (!opening && free_count == in_flight) {
      break;
    }
    if (now >= give_up_at) {
      break;
    }
    if (opening && !backoff) {
      uint64_t allowed = max_attempts;
      if (rate > 0) {
        allowed = (uint64_t)((double)(now - began) / 1e9 * rate) + 1;
        if (allowed > max_attempts) {
          allowed = max_attempts;
        }
      }
      while (free_count > 0 && attempts < allowed) {
        if (start(epfd, &src, &dst) != 0) {
          backoff = 1;
          break;
        }
      }
      if (!announced && attempts > 0) {
        printf("flooding\n");
        fflush(stdout);
        announced = 1;
      }
    }
    /* Every slot is busy, the rate says wait, or starting failed: until a connect ends, or
     * 1 ms at most (the rate, the deadline and the 1 s connect timeout need a look). */
    int n = epoll_wait(epfd, events, 256, 1);
    for (int k = 0; k < n; k++) {
      int i = (int)events[k].data.u32;
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(slots[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
      }
      finish(epfd, i, err);
      backoff = 0;
    }
    now = nowNs();
    for (int i = 0; i < in_flight; i++) {
      if (slots[i].fd >= 0 && now - slots[i].started >= kTimeoutNs) {
        finish(epfd, i, ETIMEDOUT);
        backoff = 0;
      }
    }
    if (backoff && free_count == in_flight) {
      backoff = 0; /* nothing pending to wait for: try again at the next ms */
    }
  }
  uint64_t unfinished = 0;
  for (int i = 0; i < in_flight; i++) {
    if (slots[i].fd >= 0) {
      close(slots[i].fd);
      unfinished++;
    }
  }
  double elapsed = (double)(nowNs() - began) / 1e9;
  /* Its own CPU, kernel time included: on loopback the kernel answers each SYN (the RST of a
   * refusal too) mostly in the sender's context, so that work shows here, not in any server. */
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  printf("{\"attempts\": %llu, \"refused\": %llu, \"established\": %llu, \"reset\": %llu, "
         "\"timed_out\": %llu, "
         "\"unfinished\": %llu, \"seconds\": %.3f, \"opening_seconds\": %.3f, "
         "\"cpu_seconds\": %.3f, \"errors\": {",
         (unsigned long long)attempts, (unsigned long long)refused,
         (unsigned long long)established, (unsigned long long)reset,
         (unsigned long long)timed_out,
         (unsigned long long)unfinished, elapsed,
         (double)(opened_for ? opened_for : nowNs() - began) / 1e9, cpu);
  const char* sep = "";
  for (int e = 1; e < kErrnoSlots; e++) {
    if (errors[e]) {
      const char* name = strerrorname_np(e);
      printf("%s\"%s\": %llu", sep, name ? name : "other", (unsigned long long)errors[e]);
      sep = ", ";
    }
  }
  printf("}}\n");
  return 0;
}
