#!/usr/bin/env bash
# Installs the .deb that package_test.sh made on THIS machine with dpkg, then removes and
# purges it, as an operator would (without systemd running: CI is a container, and the
# maintainer scripts must work there too):
#   1. refuses to run where weir is already present in any form (a package, files, the user),
#      saying what it found: the purge at the end would take it away;
#   2. install: the user and group weir (system ids, no login), every file of the package
#      where the table says, the conffiles, /var/log/weir (root, 0755), the unit enabled the
#      Debian way (deb-systemd-helper), `systemd-analyze verify` accepts the installed unit,
#      the installed `weir -t` accepts the installed config, running the workers as weir; with
#      weirctl, the config names the control socket weirctl then looks for;
#      then runs the installed weir on it (listens, logs as weir, answers weirctl, QUIT);
#   3. reinstall (an upgrade to the same version): an edit of /etc/weir/weir.toml is kept;
#   4. remove: the programs are gone, the config stays;
#   5. purge: nothing is left: no /etc/weir, /var/log/weir (with weir's logs), no file of
#      the package, no user or group weir, no enablement state, no unit.
# A trap purges whatever a failed step left installed.
# Usage: dpkg_test.sh DEB_DIR UNIT_DIR SYSUSERS_DIR HAVE_WEIRCTL(0|1)
# Exit 0 pass, 1 fail, 77 skip (with the reason).
set -euo pipefail
debdir="$1" unitdir="$2" sysusersdir="$3" have_weirctl="$4"

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "installs a package on this machine: needs root"
command -v dpkg >/dev/null || skip "needs dpkg (a Debian machine)"
shopt -s nullglob
debs=("$debdir"/weir_*.deb)
[ ${#debs[@]} -eq 1 ] || fail "expected one weir_*.deb in $debdir (made by packaging_packages): ${debs[*]}"
deb="${debs[0]}"

# What weir puts on a machine besides the package's own files.
leftovers=(/etc/weir /var/log/weir /run/weir "$unitdir/weir.service" /etc/systemd/system/weir.service
           /etc/systemd/system/multi-user.target.wants/weir.service
           /var/lib/systemd/deb-systemd-helper-enabled/weir.service.dsh-also
           /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/weir.service
           /var/lib/systemd/deb-systemd-helper-masked/weir.service)
package_files="$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $6 }' | sed 's|^\./|/|')"

# 1. A machine without weir.
state="$(dpkg-query -W -f='${db:Status-Status}' weir 2>/dev/null || true)"
[ -z "$state" ] || [ "$state" = not-installed ] ||
  fail "refusing to run: the package weir is on this machine (dpkg status: $state); dpkg -P weir first"
for f in $package_files "${leftovers[@]}"; do
  if [ -e "$f" ] || [ -L "$f" ]; then
    fail "refusing to run: $f exists and is not from a weir package (cmake --install?); the purge would remove it"
  fi
done
for db in passwd group; do
  if getent "$db" weir >/dev/null; then
    fail "refusing to run: $db has an entry weir; the purge would delete it"
  fi
done
# A weir started by another test (or by hand) without global.user runs its workers as weir
# once the package made that user, and holds the user when the purge deletes it.
# Only processes under this machine's root count: one in a chroot (a fresh-Debian check) has
# its own /etc/passwd.
others=""
for pid in $(pgrep -f '^weir: ' || true); do
  if [ "$(stat -L -c %d:%i "/proc/$pid/root/" 2>/dev/null)" = "$(stat -c %d:%i /)" ]; then
    others+=" $pid"
  fi
done
if [ -n "$others" ]; then
  fail "refusing to run: weir processes are running (${others# }); they would take the user weir this test creates"
fi

installed=0 made_run=0 weir_pid=""
tmp_out="$(mktemp /tmp/weir-dpkg-test.XXXXXX)"
purge() {
  local rc=$?
  if [ -n "$weir_pid" ]; then
    kill -TERM "$weir_pid" 2>/dev/null || true
    wait "$weir_pid" 2>/dev/null || true
  fi
  if [ "$made_run" = 1 ]; then rm -rf /run/weir; fi
  rm -f "$tmp_out"
  if [ "$installed" = 1 ]; then
    echo "dpkg_test.sh: purging weir after a failed step" >&2
    dpkg -P weir >/dev/null 2>&1 || echo "dpkg_test.sh: dpkg -P weir failed too" >&2
  fi
  exit "$rc"
}
trap purge EXIT

# 2. Install.
installed=1
dpkg -i "$deb" || fail "dpkg -i $(basename "$deb") failed"
[ "$(dpkg-query -W -f='${db:Status-Status}' weir)" = installed ] || fail "weir is not installed"
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd weir) || fail "no user weir"
[ "$uid" -lt 1000 ] || fail "weir is not a system user (uid $uid)"
[ "$(getent group weir | cut -d: -f3)" = "$gid" ] || fail "the primary group of weir is not group weir"
[ "$shell" = /usr/sbin/nologin ] && [ "$home" = /nonexistent ] || fail "weir has home $home, shell $shell"
for f in $package_files; do
  [ -e "$f" ] || fail "$f was not installed"
done
[ -x /usr/sbin/weir ] && [ -x /usr/sbin/weir-netsetup ] || fail "the programs are not executable"
[ -f "$unitdir/weir.service" ] && [ -f /etc/logrotate.d/weir ] && [ -f "$sysusersdir/weir.conf" ] &&
  [ -f /usr/share/man/man8/weir.8.gz ] && [ -f /usr/share/doc/weir/copyright ] ||
  fail "the unit, logrotate hook, sysusers.d file, man page or copyright is missing"
if [ "$have_weirctl" = 1 ]; then
  [ -x /usr/bin/weirctl ] && [ -f /usr/share/man/man8/weirctl.8.gz ] || fail "weirctl or its man page is missing"
  # weirctl finds the master through the installed config; no master runs here: exit 3.
  grep -q '^control_socket = "/run/weir/weir.sock"$' /etc/weir/weir.toml ||
    fail "the installed config sets no control_socket = \"/run/weir/weir.sock\": weirctl finds no master"
  rc=0
  /usr/bin/weirctl status >/dev/null 2>&1 || rc=$?
  [ "$rc" = 3 ] || fail "weirctl status without a running weir exits $rc, not 3"
fi
[ "$(dpkg-query -W -f='${Conffiles}' weir | awk 'NF { print $1 }' | sort)" = \
  "$(printf '%s\n' /etc/logrotate.d/weir /etc/weir/weir.toml)" ] || fail "dpkg's conffiles of weir"
[ "$(stat -c '%U:%G %a' /var/log/weir)" = "root:root 755" ] ||
  fail "/var/log/weir is $(stat -c '%U:%G %a' /var/log/weir)"
[ -L /etc/systemd/system/multi-user.target.wants/weir.service ] ||
  fail "the unit is not enabled (no multi-user.target.wants link)"
if command -v systemd-analyze >/dev/null; then
  if ! verify="$(systemd-analyze verify "$unitdir/weir.service" 2>&1)" || [ -n "$verify" ]; then
    echo "$verify" >&2
    fail "systemd-analyze verify is not clean on the installed unit"
  fi
fi
if ! out="$(/usr/sbin/weir -t -c /etc/weir/weir.toml 2>&1)"; then
  echo "$out" >&2
  fail "the installed weir -t rejects the installed /etc/weir/weir.toml"
fi
grep -q "will run as user weir" <<<"$out" || fail "weir -t does not run the workers as weir: $out"
grep -q "warning" <<<"$out" && fail "weir -t warns about the installed config: $out"

# 2b. The installed weir runs on the installed config, as weir.service would start it
# (systemd makes /run/weir; here the test does, and removes it after): it binds the example
# listener, logs to /var/log/weir as the workers' user, answers weirctl, and stops on QUIT.
# The example listener's port is fixed by the config: 127.0.0.1:7080.
wait_for() {  # wait_for SECONDS COMMAND...: polls COMMAND until it succeeds or time is up
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
listening() { (exec 3<>/dev/tcp/127.0.0.1/7080) 2>/dev/null; }
if listening; then
  fail "something already listens on 127.0.0.1:7080, the installed config's example listener"
fi
mkdir /run/weir
made_run=1
/usr/sbin/weir -c /etc/weir/weir.toml >"$tmp_out" 2>&1 &
weir_pid=$!
if ! wait_for 20 listening; then
  cat "$tmp_out" /var/log/weir/error.log >&2 2>/dev/null || true
  fail "the installed weir does not listen on 127.0.0.1:7080 within 20 s"
fi
[ "$(cat /run/weir/weir.pid)" = "$weir_pid" ] || fail "/run/weir/weir.pid does not hold the master's pid"
[ "$(stat -c %U /var/log/weir/error.log)" = weir ] || fail "/var/log/weir/error.log is not weir's"
if [ "$have_weirctl" = 1 ]; then
  wait_for 20 /usr/bin/weirctl status >/dev/null 2>&1 || fail "weirctl status fails against the running weir"
  /usr/bin/weirctl backends example | grep -q "127.0.0.1:7081" ||
    fail "weirctl backends example does not list 127.0.0.1:7081"
fi
/usr/sbin/weir -s quit -c /etc/weir/weir.toml || fail "weir -s quit failed"
rc=0
wait "$weir_pid" || rc=$?
weir_pid=""
[ "$rc" = 0 ] || fail "the installed weir exited $rc after QUIT: $(cat "$tmp_out")"
rm -rf /run/weir
made_run=0

# 3. An upgrade keeps the admin's edit.
echo "# the admin's edit" >>/etc/weir/weir.toml
dpkg -i "$deb" >/dev/null || fail "reinstalling failed"
grep -q "^# the admin's edit$" /etc/weir/weir.toml || fail "reinstalling overwrote /etc/weir/weir.toml"
getent passwd weir >/dev/null || fail "reinstalling lost user weir"

# 4. Remove.
dpkg -r weir || fail "dpkg -r weir failed"
[ ! -e /usr/sbin/weir ] && [ ! -e "$unitdir/weir.service" ] || fail "dpkg -r left the programs or the unit"
[ -f /etc/weir/weir.toml ] || fail "dpkg -r removed the config (only purge does)"
[ "$(dpkg-query -W -f='${db:Status-Status}' weir)" = config-files ] || fail "weir not in state config-files"

# 5. Purge.
dpkg -P weir || fail "dpkg -P weir failed"
installed=0
state="$(dpkg-query -W -f='${db:Status-Status}' weir 2>/dev/null || true)"
[ -z "$state" ] || [ "$state" = not-installed ] || fail "dpkg still knows weir: $state"
for f in $package_files "${leftovers[@]}"; do
  if [ -e "$f" ] || [ -L "$f" ]; then
    fail "the purge left $f"
  fi
done
for db in passwd group shadow gshadow; do
  if getent "$db" weir >/dev/null; then
    fail "the purge left weir in $db"
  fi
done
echo "PASS: dpkg -i (user, files, conffiles, enabled, weir -t), the installed weir ran, upgrade keeps edits, -r, -P leaves nothing"
