#!/usr/bin/env bash
# Makes the .deb and the .rpm from a configured and built tree (CPack, packaging/cpack.cmake)
# and prints their paths, the .deb first:
#   make-packages.sh BUILD_DIR OUTDIR   ->  OUTDIR/weir_VERSION_ARCH.deb
#                                           OUTDIR/weir-VERSION.ARCH.rpm
# CPack first runs the build's preinstall step (an up-to-date check of everything), then
# installs it into a staging DESTDIR of its own. Needs dpkg-dev (dpkg-shlibdeps) and rpm
# (rpmbuild): packaging/deps.sh installs them.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR OUTDIR" >&2
  exit 2
fi
build="$(cd "$1" && pwd)"
mkdir -p "$2"
out="$(cd "$2" && pwd)"
[ -f "$build/CPackConfig.cmake" ] ||
  { echo "make-packages.sh: $build has no CPackConfig.cmake (configure it with prefix /usr)" >&2; exit 1; }

work="$(mktemp -d "$out/.cpack.XXXXXX")"
trap 'rm -rf "$work"' EXIT
if ! cpack --config "$build/CPackConfig.cmake" -B "$work" >"$work/cpack.log" 2>&1; then
  cat "$work/cpack.log" >&2
  echo "make-packages.sh: cpack failed" >&2
  exit 1
fi
shopt -s nullglob
debs=("$work"/weir_*.deb)
rpms=("$work"/weir-*.rpm)
if [ ${#debs[@]} -ne 1 ] || [ ${#rpms[@]} -ne 1 ]; then
  cat "$work/cpack.log" >&2
  echo "make-packages.sh: expected one .deb and one .rpm, got: ${debs[*]} ${rpms[*]}" >&2
  exit 1
fi
mv -f "${debs[0]}" "${rpms[0]}" "$out/"
echo "$out/$(basename "${debs[0]}")"
echo "$out/$(basename "${rpms[0]}")"
