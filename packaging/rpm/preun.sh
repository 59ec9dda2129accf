# weir's %preun (.rpm), as Fedora's %systemd_preun: on erase (not upgrade) disable the unit
# and stop it (gracefully: weir.service drains) if systemd runs.
if [ "$1" -eq 0 ] && command -v systemctl >/dev/null 2>&1; then
  if [ -d /run/systemd/system ]; then
    systemctl --no-reload disable --now weir.service >/dev/null 2>&1 || :
  else
    systemctl --no-reload disable weir.service >/dev/null 2>&1 || :
  fi
fi
exit 0
