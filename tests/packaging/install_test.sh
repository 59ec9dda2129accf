#!/usr/bin/env bash
# What `cmake --install` puts on a machine, checked in a staged tree (DESTDIR), never in the
# real / (which would hide a missing install step):
#   1. exactly the expected files, where the unit and logrotate expect them (/usr/sbin, /etc,
#      /lib/systemd/system for the default prefix /usr), with the man pages, Debian's copyright
#      and changelog, and weirctl where the build has it;
#   2. the installed unit and logrotate hook name the installed binary and config;
#   3. `systemd-analyze verify` accepts the installed unit and prints nothing;
#   4. a second install keeps an /etc/weir/weir.toml that is already there;
#   5. the installed default config passes `weir -t`, with user weir as the installed
#      sysusers.d file creates it (systemd-sysusers --root into a scratch /etc, seen by weir
#      through nss_wrapper: this machine's user database is never touched). On a machine
#      without that user, `weir -t` fails and names it.
# Usage: install_test.sh BUILD_DIR SBINDIR CONFIG UNIT_DIR SYSUSERS_DIR DOCDIR PREFIX MANDIR
#                        BINDIR HAVE_WEIRCTL(0|1)
# Exit 0 pass, 1 fail, 77 skip (with the reason).
set -euo pipefail
build="$1" sbindir="$2" config="$3" unitdir="$4" sysusersdir="$5" docdir="$6" prefix="$7"
mandir="$8" bindir="$9" have_weirctl="${10}"
sysconfdir="$(dirname "$(dirname "$config")")"
cmake="${CMAKE:-cmake}"

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
for tool in systemd-analyze systemd-sysusers; do
  command -v "$tool" >/dev/null || skip "needs $tool (Debian: systemd, which packaging/deps.sh installs)"
done
nss_wrapper=""
for lib in /usr/lib/x86_64-linux-gnu/libnss_wrapper.so /usr/lib/aarch64-linux-gnu/libnss_wrapper.so \
           /usr/lib64/libnss_wrapper.so /usr/lib/libnss_wrapper.so; do
  [ -r "$lib" ] && nss_wrapper="$lib" && break
done
[ -n "$nss_wrapper" ] || skip "needs libnss_wrapper (Debian: libnss-wrapper, which packaging/deps.sh installs)"

tmp="$(mktemp -d /tmp/weir-install-test.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
root="$tmp/root"
install_tree() { DESTDIR="$root" "$cmake" --install "$build" >"$tmp/install.log" 2>&1 ||
                   { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }; }

# 1. The file set.
install_tree
if [ "$prefix" = /usr ]; then
  [ "$sbindir" = /usr/sbin ] || fail "prefix /usr but sbindir $sbindir"
  [ "$config" = /etc/weir/weir.toml ] || fail "prefix /usr but config $config"
  case "$unitdir" in
    /lib/systemd/system | /usr/lib/systemd/system) ;;
    *) fail "prefix /usr but unit dir $unitdir" ;;
  esac
fi
expected="$(
  printf '%s\n' "$sbindir/weir" "$sbindir/weir-netsetup" "$config" \
    "$unitdir/weir.service" "$sysconfdir/logrotate.d/weir" "$sysusersdir/weir.conf" \
    "$docdir/README.md" "$docdir/examples/weir.toml" "$docdir/examples/weir.default.toml" \
    "$docdir/examples/bird/weir.conf" "$docdir/examples/frr/weir.frr.conf" "$docdir/copyright" "$docdir/changelog.gz" \
    "$mandir/man8/weir.8.gz" "$mandir/man5/weir.toml.5.gz" "$mandir/man8/weir-netsetup.8.gz"
  for doc in "$(dirname "$0")"/../../docs/*.md; do echo "$docdir/$(basename "$doc")"; done
  if [ "$have_weirctl" = 1 ]; then
    printf '%s\n' "$bindir/weirctl" "$mandir/man8/weirctl.8.gz"
  fi
)"
actual="$(cd "$root" && find . -type f -o -type l | sed 's|^\.||')"
if [ "$(sort <<<"$expected")" != "$(sort <<<"$actual")" ]; then
  diff <(sort <<<"$expected") <(sort <<<"$actual") >&2 || true
  fail "installed files differ from the expected set (< expected, > installed)"
fi
[ -x "$root$sbindir/weir" ] && [ -x "$root$sbindir/weir-netsetup" ] || fail "binaries not executable"
grep -q "^Keeping" "$tmp/install.log" && fail "first install kept a config that was not there"
grep -q "Not creating user weir under DESTDIR" "$tmp/install.log" ||
  fail "a staged install should say it leaves creating user weir to the machine"

# 2. The unit and the logrotate hook name what was installed.
unit="$root$unitdir/weir.service"
for key in ExecStartPre ExecStart; do
  grep -qx "$key=$sbindir/weir \(-t \)\?-c $config" "$unit" || fail "$key does not run $sbindir/weir -c $config"
done
grep -qx "ExecReload=$sbindir/weir -t -c $config" "$unit" || fail "ExecReload does not check the config"
grep -q "^ *$sbindir/weir -s reopen -c $config " "$root$sysconfdir/logrotate.d/weir" ||
  fail "the logrotate hook does not run $sbindir/weir -s reopen -c $config"
grep -q '@[A-Z_]*@' "$unit" "$root$sysconfdir/logrotate.d/weir" && fail "unsubstituted @VAR@ left"

# 3. systemd-analyze verify. It checks that each Exec binary exists on this machine, so it
# reads a copy whose weir paths point into the staged tree; every other line is the unit's.
sed "s|$sbindir/weir|$root$sbindir/weir|g" "$unit" >"$tmp/weir.service"
if ! out="$(systemd-analyze verify "$tmp/weir.service" 2>&1)" || [ -n "$out" ]; then
  echo "$out" >&2
  fail "systemd-analyze verify is not clean"
fi

# 4. A second install keeps the admin's config.
echo "# the admin's own" >"$root$config"
install_tree
[ "$(cat "$root$config")" = "# the admin's own" ] || fail "a second install overwrote $config"
grep -q "^-- Keeping: $root$config" "$tmp/install.log" || fail "the second install did not say it kept $config"
cmp -s "$root$docdir/examples/weir.default.toml" "$(dirname "$0")/../../packaging/weir.toml" ||
  fail "examples/weir.default.toml is not packaging/weir.toml"
cp "$root$docdir/examples/weir.default.toml" "$root$config"

# 5. weir -t on the installed config, with the user the installed sysusers.d file makes.
mkdir -p "$tmp/sys/etc"
systemd-sysusers --root="$tmp/sys" "$root$sysusersdir/weir.conf" >/dev/null 2>&1 ||
  fail "systemd-sysusers rejects $sysusersdir/weir.conf"
grep -q '^weir:x:[0-9]*:[0-9]*:.*:/nonexistent:/usr/sbin/nologin$' "$tmp/sys/etc/passwd" ||
  fail "sysusers made no system user weir: $(cat "$tmp/sys/etc/passwd")"
if ! out="$(env LD_PRELOAD="$nss_wrapper" NSS_WRAPPER_PASSWD="$tmp/sys/etc/passwd" \
              NSS_WRAPPER_GROUP="$tmp/sys/etc/group" "$root$sbindir/weir" -t -c "$root$config" 2>&1)"; then
  echo "$out" >&2
  fail "the installed default config fails weir -t"
fi
grep -q "will run as user weir" <<<"$out" || fail "weir -t does not run the workers as weir: $out"
grep -q "warning" <<<"$out" && fail "weir -t warns about the installed default config: $out"
if ! getent passwd weir >/dev/null; then
  out="$("$root$sbindir/weir" -t -c "$root$config" 2>&1)" && fail "weir -t passed without a user weir"
  grep -q '"weir"' <<<"$out" || fail "weir -t without user weir does not name it: $out"
fi
echo "PASS: install layout, unit verified, config kept, default config passes weir -t"
