# Read by cpack before each package (CPACK_PROJECT_CONFIG_FILE). The install it then runs sees
# this variable and puts the default /etc/weir/weir.toml into the payload even where a staged
# tree already has one (packaging/CMakeLists.txt).
set(ENV{WEIR_PACKAGING} 1)
