# weir's %post (.rpm), as Fedora's %systemd_post: on first install the unit follows the
# system's preset policy (Fedora's default: disabled, and nothing is started). The log
# directory exists also for weir started by hand.
if [ ! -d /var/log/weir ]; then
  install -d -m 0755 -o root -g root /var/log/weir
fi
if [ "$1" -eq 1 ] && command -v systemctl >/dev/null 2>&1; then
  systemctl --no-reload preset weir.service >/dev/null 2>&1 || :
fi
exit 0
