#!/usr/bin/env bash
# Configures and builds weir (and its tests) into build/ at the top of the source tree. Extra
# arguments go to cmake's configure step (packaging/test.sh passes its compile flags).
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$top/build" -j"$(nproc)"
