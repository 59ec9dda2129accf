#include "balance/least_conn.h"

namespace weir::balance {

int LeastConn::choose(const PickInput&) {
  const size_t n = size();
  const size_t start = rotate_++ % n;
  int best = -1;
  for (size_t k = 0; k < n; ++k) {
    size_t i = (start + k) % n;
    if (allowed(i) && (best < 0 || lessLoaded(i, static_cast<size_t>(best)))) {
      best = static_cast<int>(i);
    }
  }
  return best;
}

}  // namespace weir::balance
