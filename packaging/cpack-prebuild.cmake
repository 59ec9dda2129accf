# Run by cpack after it staged the files and before it makes each package
# (CPACK_PRE_BUILD_SCRIPTS). For the .deb: corrections to the installed libraries' shlibs
# files (packaging/deb/shlibs.local), where dpkg-shlibdeps, which CPack runs in the staging
# directory, reads them. CPack removes that debian/ directory again before it packs.
if(CPACK_GENERATOR STREQUAL "DEB")
  file(COPY ${CMAKE_CURRENT_LIST_DIR}/deb/shlibs.local
       DESTINATION ${CPACK_TEMPORARY_DIRECTORY}/debian)
endif()
