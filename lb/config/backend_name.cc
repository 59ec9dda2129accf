#include "config/config.h"

namespace weir::config {

std::string backendName(const Backend& backend) {
  if (!backend.named()) {
    return backend.address.toString();
  }
  return backend.host + ":" + std::to_string(backend.port) + "#" +
         std::to_string(backend.name_slot + 1);
}

}  // namespace weir::config
