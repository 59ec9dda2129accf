#!/usr/bin/env bash
# Builds uring-proto (proto/uring/build/uring-proto). It is not part of weir's build, so weir's
# packaging/deps.sh does not install its one extra package: this script does (liburing-dev,
# plus cmake, g++ and pkg-config on a machine that has not run deps.sh), as root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
need=()
for pkg in liburing-dev cmake g++ pkg-config; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "build.sh: missing ${need[*]}; run as root to install them" >&2
    exit 1
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi
cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$here/build" -j"$(nproc)"
