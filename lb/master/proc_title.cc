#include "master/proc_title.h"

#include <sys/prctl.h>

#include <algorithm>
#include <cstring>

namespace weir::master {
namespace {

char* g_area = nullptr;  // argv[0]
size_t g_area_len = 0;   // bytes from argv[0] to the end of the last contiguous argument

}  // namespace

std::vector<std::string> initProcessTitle(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  if (argc > 0 && argv[0] != nullptr) {
    g_area = argv[0];
    char* end = argv[0] + std::strlen(argv[0]) + 1;
    // The kernel lays the arguments out back to back; stop at the first one that is not.
    for (int i = 1; i < argc && argv[i] == end; ++i) {
      end = argv[i] + std::strlen(argv[i]) + 1;
    }
    g_area_len = static_cast<size_t>(end - g_area);
  }
  return args;
}

void setProcessTitle(const std::string& title) {
  if (g_area != nullptr && g_area_len > 1) {
    const size_t n = std::min(title.size(), g_area_len - 1);
    std::memcpy(g_area, title.data(), n);
    std::memset(g_area + n, 0, g_area_len - n);
  }
  ::prctl(PR_SET_NAME, title.substr(0, 15).c_str(), 0, 0, 0);
}

}  // namespace weir::master
