#!/usr/bin/env bash
# Builds the .deb and the .rpm from a clean tree: configures and builds weir in OUTDIR/build
# (a fresh directory, without the tests; with Debian's hardening flags from dpkg-buildflags),
# then makes both packages into OUTDIR and prints their paths:
#   packaging/build-packages.sh OUTDIR
#   apt install ./OUTDIR/weir_*.deb
# Needs what packaging/deps.sh installs.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
top="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
build="$out/build"
rm -rf "$build"

# What Debian builds its packages with: -O2, fortified glibc calls, stack protector, full
# RELRO, PIE. CMake reads CFLAGS, CXXFLAGS and LDFLAGS (not CPPFLAGS) when it configures.
flags() { DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get "$1"; }
CFLAGS="$(flags CPPFLAGS) $(flags CFLAGS)" CXXFLAGS="$(flags CPPFLAGS) $(flags CXXFLAGS)" \
  LDFLAGS="$(flags LDFLAGS)" \
  cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
        -DWEIR_BUILD_TESTS=OFF >"$out/build.log"
cmake --build "$build" -j"$(nproc)" >>"$out/build.log" 2>&1 ||
  { tail -50 "$out/build.log" >&2; echo "build-packages.sh: build failed (all in $out/build.log)" >&2; exit 1; }
"$top/packaging/make-packages.sh" "$build" "$out"
