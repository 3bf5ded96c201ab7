# weftLibuv.cmake: defines the imported target weft::libuv.
#
# Used by weft's own build and, installed next to weftConfig.cmake, by the
# CMake package, so that the exported targets name the same libuv target in
# both places. pkg-config is tried first (it knows libuv's flags and its
# private dependencies); a plain search for uv.h and libuv is the fallback for
# systems without pkg-config.
if(TARGET weft::libuv)
  return()
endif()

find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(WEFT_LIBUV QUIET IMPORTED_TARGET libuv>=1.30)
endif()

if(TARGET PkgConfig::WEFT_LIBUV)
  add_library(weft::libuv INTERFACE IMPORTED)
  set_property(TARGET weft::libuv PROPERTY
               INTERFACE_LINK_LIBRARIES PkgConfig::WEFT_LIBUV)
else()
  find_path(WEFT_LIBUV_INCLUDE_DIR uv.h)
  find_library(WEFT_LIBUV_LIBRARY NAMES uv libuv)
  if(WEFT_LIBUV_INCLUDE_DIR AND WEFT_LIBUV_LIBRARY)
    add_library(weft::libuv UNKNOWN IMPORTED)
    set_target_properties(weft::libuv PROPERTIES
      IMPORTED_LOCATION "${WEFT_LIBUV_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${WEFT_LIBUV_INCLUDE_DIR}")
  endif()
endif()
