# weir's %postun (.rpm), as Fedora's %systemd_postun_with_restart: after an upgrade, restart
# the service if it runs. Fedora keeps users and logs on erase, and so does weir.
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || :
  if [ "$1" -ge 1 ]; then
    systemctl try-restart weir.service >/dev/null 2>&1 || :
  fi
fi
exit 0
