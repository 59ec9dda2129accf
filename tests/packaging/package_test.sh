#!/usr/bin/env bash
# The .deb and the .rpm, made from this build tree by packaging/make-packages.sh (CPack) into
# BUILD_DIR/packages-test, where dpkg_test.sh then finds the .deb:
#   1. their names: weir_VERSION_ARCH.deb, weir-VERSION.ARCH.rpm;
#   2. the same files in both, and the same as `cmake --install` puts down (which
#      install_test.sh checks against its table), the programs, man pages, copyright and
#      changelog among them; /etc/weir/weir.toml is packaging/weir.toml;
#   3. the .deb: conffiles (the config, the logrotate hook), maintainer scripts that parse,
#      Depends naming the package of every library the programs link, and apt able to
#      install it here (simulated);
#   4. the .rpm: %config(noreplace) for the same two files, the four scriptlets, a Requires
#      for every library soname;
#   5. the man pages render without a groff warning;
#   6. lintian reports no error and no warning (packaging/lintian.md);
#   7. systemd-analyze verify accepts the unit as packaged.
# Usage: package_test.sh BUILD_DIR VERSION UNIT_DIR SYSUSERS_DIR HAVE_WEIRCTL(0|1)
# Exit 0 pass, 1 fail, 77 skip (with the reason).
set -euo pipefail
build="$1" version="$2" unitdir="$3" sysusersdir="$4" have_weirctl="$5"
top="$(cd "$(dirname "$0")/../.." && pwd)"
cmake="${CMAKE:-cmake}"

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
for tool in cpack dpkg-deb dpkg-shlibdeps rpm rpmbuild lintian systemd-analyze man objdump; do
  command -v "$tool" >/dev/null || skip "needs $tool (packaging/deps.sh installs it)"
done

out="$build/packages-test"
rm -rf "$out"
mkdir -p "$out"
tmp="$(mktemp -d /tmp/weir-package-test.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

# 1. Names.
mapfile -t made < <("$top/packaging/make-packages.sh" "$build" "$out") || fail "make-packages.sh failed"
deb_arch="$(dpkg --print-architecture)"
rpm_arch="$(uname -m)"
[ "${made[0]:-}" = "$out/weir_${version}_${deb_arch}.deb" ] || fail "the .deb is ${made[0]:-missing}"
[ "${made[1]:-}" = "$out/weir-${version}.${rpm_arch}.rpm" ] || fail "the .rpm is ${made[1]:-missing}"
deb="${made[0]}" rpmfile="${made[1]}"
echo "made $(basename "$deb") and $(basename "$rpmfile")"

# 2. File sets (files and links; directories differ by design: the .rpm owns only its own).
deb_files="$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $6 }' | sed 's|^\./|/|' | sort)"
rpm_files="$(rpm -qplv "$rpmfile" | awk '$1 !~ /^d/ { print $NF }' | sort)"
if [ "$deb_files" != "$rpm_files" ]; then
  diff <(echo "$deb_files") <(echo "$rpm_files") >&2 || true
  fail "the .deb and the .rpm hold different files (< deb, > rpm)"
fi
DESTDIR="$tmp/install" "$cmake" --install "$build" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }
installed="$(cd "$tmp/install" && find . -type f -o -type l | sed 's|^\.||' | sort)"
if [ "$deb_files" != "$installed" ]; then
  diff <(echo "$deb_files") <(echo "$installed") >&2 || true
  fail "the packages hold other files than cmake --install puts down (< packages, > install)"
fi
must=(/usr/sbin/weir /usr/sbin/weir-netsetup /etc/weir/weir.toml "$unitdir/weir.service"
      /etc/logrotate.d/weir "$sysusersdir/weir.conf" /usr/share/man/man8/weir.8.gz
      /usr/share/man/man5/weir.toml.5.gz /usr/share/man/man8/weir-netsetup.8.gz
      /usr/share/doc/weir/copyright /usr/share/doc/weir/changelog.gz)
if [ "$have_weirctl" = 1 ]; then
  must+=(/usr/bin/weirctl /usr/share/man/man8/weirctl.8.gz)
fi
for f in "${must[@]}"; do
  grep -qx "$f" <<<"$deb_files" || fail "$f is not in the packages"
done
dpkg-deb -x "$deb" "$tmp/deb"
cmp -s "$tmp/deb/etc/weir/weir.toml" "$top/packaging/weir.toml" ||
  fail "/etc/weir/weir.toml in the .deb is not packaging/weir.toml"

# 3. The .deb's control data.
dpkg-deb -e "$deb" "$tmp/control"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "Version $(dpkg-deb -f "$deb" Version)"
[ "$(sort "$tmp/control/conffiles")" = "$(printf '%s\n' /etc/logrotate.d/weir /etc/weir/weir.toml)" ] ||
  fail "conffiles: $(cat "$tmp/control/conffiles")"
for script in postinst prerm postrm; do
  [ -x "$tmp/control/$script" ] || fail "no executable $script in the .deb"
  sh -n "$tmp/control/$script" || fail "$script does not parse"
done
grep -q "@[A-Z_]*@" "$tmp/control/postinst" && fail "unsubstituted @VAR@ in postinst"
depends="$(dpkg-deb -f "$deb" Depends)"
depends_names="$(sed 's/ *([^)]*)//g; s/ *| */\n/g; s/, */\n/g' <<<"$depends")"
grep -qFx adduser <<<"$depends_names" || fail "Depends lacks adduser: $depends"
# Every library the programs link, by the package that holds it here.
needed="$(for bin in "$tmp"/deb/usr/sbin/* "$tmp"/deb/usr/bin/*; do
            if [ -f "$bin" ]; then objdump -p "$bin" | awk '$1 == "NEEDED" { print $2 }'; fi
          done | sort -u)"
[ -n "$needed" ] || fail "objdump found no NEEDED library"
owner() { dpkg -S "$1" 2>/dev/null | awk -F: 'NR == 1 { print $1 }' || true; }
for lib in $needed; do
  path="$(ldconfig -p | awk -v lib="$lib" '!found && $1 == lib { print $NF; found = 1 }')"
  [ -n "$path" ] || fail "$lib is not known to ldconfig"
  # dpkg knows each file by the path its package ships, /lib or /usr/lib (merged /usr).
  real="$(readlink -f "$path")"
  pkg=""
  for candidate in "$path" "$real" "${real#/usr}" "/usr$path"; do
    [ -n "$pkg" ] || pkg="$(owner "$candidate")"
  done
  [ -n "$pkg" ] || fail "no package holds $path ($lib)"
  grep -qFx "$pkg" <<<"$depends_names" || fail "Depends lacks $pkg (for $lib): $depends"
done
# Installable from this machine's archives (a simulation: nothing is installed). dpkg-shlibdeps
# trusts the installed libraries' shlibs files, which may name packages the archive lacks.
if ! apt_out="$(apt-get install -s "$deb" 2>&1)"; then
  echo "$apt_out" >&2
  fail "apt cannot install the .deb here (its Depends)"
fi

# 4. The .rpm's metadata.
[ "$(rpm -qp --qf '%{VERSION}' "$rpmfile")" = "$version" ] || fail "rpm version"
[ "$(rpm -qpc "$rpmfile" | sort)" = "$(printf '%s\n' /etc/logrotate.d/weir /etc/weir/weir.toml)" ] ||
  fail "rpm config files: $(rpm -qpc "$rpmfile")"
[ "$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpmfile" | grep -c '^cn /etc/')" = 2 ] ||
  fail "the rpm config files are not %config(noreplace)"
scripts="$(rpm -qp --scripts "$rpmfile")"
for s in preinstall postinstall preuninstall postuninstall; do
  grep -q "^$s scriptlet" <<<"$scripts" || fail "the .rpm has no $s scriptlet"
done
for tag in PREIN POSTIN PREUN POSTUN; do
  rpm -qp --qf "%{$tag}" "$rpmfile" | sh -n || fail "the .rpm's $tag scriptlet does not parse"
done
grep -q "@[A-Z_]*@" <<<"$scripts" && fail "unsubstituted @VAR@ in the .rpm's scriptlets"
grep -q "systemd-sysusers --replace=$sysusersdir/weir.conf" <<<"$scripts" ||
  fail "%pre does not create the user from the sysusers.d lines"
requires="$(rpm -qpR "$rpmfile")"
for lib in $needed; do
  grep -q "^$lib()" <<<"$requires" || fail "the .rpm does not require $lib"
done

# 5. Man pages.
for page in "$tmp"/deb/usr/share/man/man*/*.gz; do
  warnings="$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)"
  [ -z "$warnings" ] || fail "$(basename "$page"): $warnings"
  grep -q "@[A-Z_]*@" <<<"$(zcat "$page")" && fail "unsubstituted @VAR@ in $(basename "$page")"
done

# 6. lintian: no error, no warning (overrides, each explained, in packaging/lintian.md).
lintian --fail-on none "$deb" >"$tmp/lintian.log" 2>&1 || true
cat "$tmp/lintian.log"
grep -Eq '^[EW]: ' "$tmp/lintian.log" && fail "lintian reports errors or warnings"

# 7. The unit as packaged. systemd-analyze checks that each Exec binary exists, so a copy
# names the ones of the extracted tree.
sed "s|/usr/sbin/weir|$tmp/deb/usr/sbin/weir|g" "$tmp/deb$unitdir/weir.service" >"$tmp/weir.service"
if ! verify="$(systemd-analyze verify "$tmp/weir.service" 2>&1)" || [ -n "$verify" ]; then
  echo "$verify" >&2
  fail "systemd-analyze verify is not clean on the packaged unit"
fi
echo "PASS: packages named, same files in .deb, .rpm and install, metadata, man pages, lintian, unit"
