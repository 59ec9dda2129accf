#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "config/config.h"
#include "shm/backend_map.h"
#include "shm/region.h"

namespace weir::shm {

// A parsed config, a fresh region for kWorkers workers and the map of the config's backends in
// it, as worker 0 sees it (its traffic goes to row 1). `pools` is TOML defining at least
// [pools.p] (a listener on 127.0.0.1:1 uses it).
class ShmFixture {
public:
  static constexpr uint32_t kWorkers = 4;

  explicit ShmFixture(std::string_view pools)
      : cfg(parseConfig(pools)), region(newRegion(cfg)), map(newMap(region, cfg)) {
    map.setWorker(0);
  }

  // config.pools is sorted by name: "p" is at index 0 when it sorts first.
  const PoolSlots& pool(size_t i = 0) const { return map.pool(i); }

  static config::Config parseConfig(std::string_view pools) {
    std::string text = "[listeners.l]\nbind = \"127.0.0.1:1\"\npool = \"p\"\n";
    text += pools;
    return config::parse(text, "test.toml");
  }
  static ShmRegion newRegion(const config::Config& cfg) {
    auto region = ShmRegion::create(ShmRegion::capacityFor(cfg), kWorkers);
    EXPECT_TRUE(region.ok());
    return std::move(*region);
  }
  static BackendMap newMap(ShmRegion& region, const config::Config& cfg) {
    auto map = BackendMap::create(region, cfg);
    EXPECT_TRUE(map.ok()) << map.error().message();
    return std::move(*map);
  }

  config::Config cfg;
  ShmRegion region;
  BackendMap map;
};

// "backends = [{ address = "10.0.0.1:80" }, ...]" for n backends on 10.0.0.1.. port 80.
inline std::string backendList(int n, std::string_view extra = "") {
  std::string out = "backends = [";
  for (int i = 0; i < n; ++i) {
    out += "{ address = \"10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) +
           ":80\"";
    if (!extra.empty()) {
      out += ", ";
      out += extra;
    }
    out += " },";
  }
  return out + "]\n";
}

}  // namespace weir::shm
