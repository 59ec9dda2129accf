#include "config/config.h"

#include <algorithm>

namespace weir::config {

std::string backendName(const Backend& backend) {
  if (!backend.named()) {
    return backend.address.toString();
  }
  return backend.host + ":" + std::to_string(backend.port) + "#" +
         std::to_string(backend.name_slot + 1);
}

std::vector<NameSlots> nameSlots(const std::vector<Backend>& backends) {
  std::vector<NameSlots> names;
  for (size_t b = 0; b < backends.size(); ++b) {
    if (backends[b].named() && backends[b].name_slot == 0) {
      const size_t room = backends.size() - b;
      names.push_back({b, static_cast<uint32_t>(std::min<size_t>(backends[b].name_slots, room))});
    }
  }
  return names;
}

}  // namespace weir::config
