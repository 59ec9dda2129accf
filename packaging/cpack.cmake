# The .deb and the .rpm, both made by CPack from one build tree:
#   cpack --config build/CPackConfig.cmake -B OUTDIR      (or packaging/make-packages.sh)
# Both hold what `cmake --install` installs (packaging/CMakeLists.txt and the install(TARGETS)
# rules), staged into a DESTDIR, plus the maintainer scripts of packaging/deb and
# packaging/rpm. docs/packaging.md describes the result.

# The maintainer scripts and the unit's place assume the system layout of prefix /usr.
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "Packages (.deb, .rpm) are made with prefix /usr only; this tree has "
                 "${CMAKE_INSTALL_PREFIX}")
  return()
endif()

# For tests/packaging, which makes and checks the packages of this tree.
set(WEIR_PACKAGES ON PARENT_SCOPE)
set(CPACK_GENERATOR DEB RPM)
set(CPACK_PACKAGE_NAME weir)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${WEIR_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_VENDOR "the weir authors")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "layer-4 TCP and TLS load balancer")
set(CPACK_PACKAGE_DESCRIPTION
    "weir balances TCP connections and TLS (passed through by server name,
terminated, or re-encrypted) over pools of backends with active and passive
health checks. A root master binds the listen addresses and reloads without
dropping a connection; unprivileged workers splice the bytes, and a BPF
program spreads new connections over them in the kernel.")
set(CPACK_RPM_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_PACKAGE_RELOCATABLE OFF)
# Absolute destinations (/etc, /lib/systemd/system) are staged under DESTDIR, never written to
# this machine; packaging/CMakeLists.txt refuses a package build without DESTDIR.
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
# Makes the install of the default config put it into the payload (packaging/CMakeLists.txt).
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_CURRENT_SOURCE_DIR}/cpack-project.cmake)
set(CPACK_PRE_BUILD_SCRIPTS ${CMAKE_CURRENT_SOURCE_DIR}/cpack-prebuild.cmake)

# Where the scripts and the conffile list find what the install put down.
set(WEIR_LOGROTATE "${CMAKE_INSTALL_FULL_SYSCONFDIR}/logrotate.d/weir")
set(_scripts ${CMAKE_CURRENT_BINARY_DIR}/package-scripts)

# --- .deb ----------------------------------------------------------------------------------
# weir_VERSION_ARCH.deb (dpkg's architecture name). Native version (no Debian revision).
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The shared libraries the binaries link (libssl3, libbpf1, liburing2, libc-ares2,
# libspdlog1.10, libfmt9, libtomlplusplus3, libsystemd0, libc6, libstdc++6, ...) as
# dpkg-shlibdeps finds them, with the versions their symbols need; adduser for the postinst
# without systemd-sysusers.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "logrotate")
# weir-netsetup runs nft and ip, for transparent mode only.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "nftables, iproute2")
configure_file(deb/postinst.in ${_scripts}/deb/postinst @ONLY)
configure_file(deb/prerm ${_scripts}/deb/prerm COPYONLY)
configure_file(deb/postrm ${_scripts}/deb/postrm COPYONLY)
configure_file(deb/conffiles.in ${_scripts}/deb/conffiles @ONLY)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${_scripts}/deb/postinst ${_scripts}/deb/prerm ${_scripts}/deb/postrm
    ${_scripts}/deb/conffiles)
# 0755 scripts and 0644 conffiles, whatever the umask of the checkout.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# --- .rpm ----------------------------------------------------------------------------------
# weir-VERSION.ARCH.rpm (rpm's architecture name, uname -m).
execute_process(COMMAND uname -m OUTPUT_VARIABLE _rpm_arch OUTPUT_STRIP_TRAILING_WHITESPACE)
set(CPACK_RPM_PACKAGE_ARCHITECTURE ${_rpm_arch})
set(CPACK_RPM_FILE_NAME "weir-${PROJECT_VERSION}.${_rpm_arch}.rpm")
set(CPACK_RPM_PACKAGE_RELEASE 1)
set(CPACK_RPM_PACKAGE_LICENSE "LicenseRef-not-declared")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
# rpm's find-requires gives the sonames (libssl.so.3()(64bit), ...); these are the programs
# the scripts run.
set(CPACK_RPM_PACKAGE_AUTOREQ ON)
set(CPACK_RPM_PACKAGE_REQUIRES_PRE "shadow-utils")
set(CPACK_RPM_PACKAGE_REQUIRES_POST "systemd")
set(CPACK_RPM_PACKAGE_REQUIRES_PREUN "systemd")
set(CPACK_RPM_PACKAGE_REQUIRES_POSTUN "systemd")
# The same payload as the .deb: no /usr/lib/.build-id links, no compression of the man pages
# (already compressed) or other rewriting by rpm's post-install scripts.
set(CPACK_RPM_SPEC_MORE_DEFINE "%define _build_id_links none")
set(CPACK_RPM_SPEC_INSTALL_POST "/bin/true")
# Directories other packages own; the rpm owns only /etc/weir and /usr/share/doc/weir.
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
    /usr/sbin /usr/share/man /usr/share/man/man5 /usr/share/man/man8
    ${CMAKE_INSTALL_FULL_SYSCONFDIR}/logrotate.d ${WEIR_SYSUSERS_DIR}
    ${WEIR_SYSTEMD_UNIT_DIR})
get_filename_component(_unit_parent ${WEIR_SYSTEMD_UNIT_DIR} DIRECTORY)
get_filename_component(_unit_grandparent ${_unit_parent} DIRECTORY)
list(APPEND CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION ${_unit_parent} ${_unit_grandparent})
# The config and the logrotate hook keep the admin's edits over upgrades (the new one lands
# as .rpmnew). CPack would make every file installed to an absolute path %config: the unit and
# the sysusers.d file are listed here as plain files (with the mode they have: CPack needs a
# directive before each path of this list).
set(CPACK_RPM_USER_FILELIST
    "%config(noreplace) ${WEIR_CONFIG}" "%config(noreplace) ${WEIR_LOGROTATE}"
    "%attr(0644,root,root) ${WEIR_SYSTEMD_UNIT_DIR}/weir.service"
    "%attr(0644,root,root) ${WEIR_SYSUSERS_DIR}/weir.conf")
# The user: the lines of the sysusers.d file the package ships, for %pre.
file(STRINGS weir.sysusers WEIR_SYSUSERS_LINES REGEX "^[^#]")
string(REPLACE ";" "\n" WEIR_SYSUSERS_LINES "${WEIR_SYSUSERS_LINES}")
configure_file(rpm/pre.sh.in ${_scripts}/rpm/pre.sh @ONLY)
set(CPACK_RPM_PRE_INSTALL_SCRIPT_FILE ${_scripts}/rpm/pre.sh)
set(CPACK_RPM_POST_INSTALL_SCRIPT_FILE ${CMAKE_CURRENT_SOURCE_DIR}/rpm/post.sh)
set(CPACK_RPM_PRE_UNINSTALL_SCRIPT_FILE ${CMAKE_CURRENT_SOURCE_DIR}/rpm/preun.sh)
set(CPACK_RPM_POST_UNINSTALL_SCRIPT_FILE ${CMAKE_CURRENT_SOURCE_DIR}/rpm/postun.sh)

include(CPack)
