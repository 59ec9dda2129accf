#!/usr/bin/env bash
# Installs everything weir needs to build and test, from Debian 12's packages only.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: run as root (or install sudo)" >&2; exit 1; }
  SUDO="sudo"
fi

PACKAGES=(
  # Build: gcc for weir, clang for the BPF program and the fuzz targets.
  build-essential cmake pkg-config git
  clang llvm bpftool libbpf-dev linux-libc-dev
  libssl-dev libtomlplusplus-dev libspdlog-dev libfmt-dev libsystemd-dev
  # The workers' io_uring event engine (global.event_engine, lb/engine).
  liburing-dev
  # Backends by DNS name: c-ares resolves them in the health checker and in `weir -t`.
  libc-ares-dev
  # Tests: GoogleTest and GoogleMock; libFuzzer and clang's sanitizer runtimes (gcc's come
  # with gcc); llvm (above) gives llvm-symbolizer for readable sanitizer stacks.
  libgtest-dev libgmock-dev libclang-rt-14-dev
  # Programs the tests run: prlimit and setpriv (util-linux), sh and sleep (dash, coreutils);
  # nss_wrapper gives one test's weir a user database of its own.
  util-linux dash coreutils libnss-wrapper
  # The DNS backends' tests answer from a hosts file of their own with dnsmasq on 127.0.0.1
  # (tests/support/dns_server.h); the -base package has no service that would take port 53.
  dnsmasq-base
  # The install test (tests/packaging): systemd-analyze verify on the unit, systemd-sysusers
  # for the weir user; systemd.pc (same package) names Debian's unit directory for CMake.
  systemd
  # The packages (packaging/make-packages.sh, tests/packaging): CPack's DEB generator with
  # dpkg-shlibdeps (dpkg-dev), its RPM generator with rpmbuild (rpm); lintian on the .deb; man
  # (man-db) checks the man pages; adduser, which the .deb depends on, for its install test.
  dpkg-dev rpm lintian man-db adduser
  procps curl
  # Transparent mode: weir-netsetup (and the checks of `weir -t` and the master) run nft for
  # the nftables table inet weir and ip for the policy rules and routes; its integration
  # test runs both in a network namespace.
  nftables iproute2
  # Scale-out (docs/scale-out.md): the ECMP test runs BIRD 2 in every node and router namespace
  # it builds, to announce the VIP routes weir adds (tests/integration/ecmp_test.cc).
  bird2
  # The ECMP lab can run FRR (zebra, bgpd, vtysh) on a node instead, to check
  # packaging/frr/weir.frr.conf (tests/integration/ecmp_lab_test.cc, EcmpLabFrrTest). With
  # systemd this also starts frr.service (zebra only); the lab needs none of it.
  frr
  # PROXY protocol peers: the tests check that HAProxy and nginx read weir's headers.
  haproxy nginx
  # The benchmark's TLS workloads (tests/bench, which installs its other tools itself):
  # h2load for HTTP/1.1 and HTTP/2 over TLS, the openssl CLI for the run's certificate.
  nghttp2-client openssl
  # The status page test (tests/integration/metrics_test.cc) renders / in headless Chromium;
  # the metrics tests check /status.json and the Grafana dashboard with python3 -m json.tool.
  chromium python3
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps.sh: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
