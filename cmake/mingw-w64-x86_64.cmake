# Cross build for Windows x86-64 with mingw-w64 (Debian gcc-mingw-w64-x86-64
# and g++-mingw-w64-x86-64), tests run under Wine:
#
#   cmake -S . -B build-windows \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake \
#     -DWEFT_MINGW_PREFIX=build-windows/deps
#
# WEFT_MINGW_PREFIX holds libuv (and cJSON) built for Windows by
# scripts/build-mingw-deps.sh; `make test-windows` does all of it.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

# The -posix compilers: winpthreads behind <pthread.h> and std::thread, which
# the runtime's executors and the C++ tests use.
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc-posix)
set(CMAKE_CXX_COMPILER x86_64-w64-mingw32-g++-posix)
set(CMAKE_ASM_COMPILER x86_64-w64-mingw32-gcc-posix)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)

# Every program links libgcc, libstdc++ and winpthreads statically, so that
# Wine finds no DLL missing.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc -static-libstdc++")

set(WEFT_MINGW_PREFIX "" CACHE PATH "Where libuv and cJSON built for mingw-w64 are installed")
set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32 ${WEFT_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# zlib (Debian's libz-mingw-w64-dev) has an import library beside the static
# one: the static one, so that the programs need no zlib1.dll.
set(ZLIB_USE_STATIC_LIBS ON)
# llhttp is C sources, the same for every target (Debian's node-llhttp), off
# the find root: weft_http and web_framework compile them for Windows too.
if(EXISTS /usr/share/llhttp/llhttp.c)
  set(WEFT_LLHTTP_INCLUDE_DIR /usr/share/include/llhttp CACHE PATH "llhttp.h")
  set(WEFT_LLHTTP_SOURCE_DIR /usr/share/llhttp CACHE PATH "llhttp's C sources")
endif()
# pkg-config sees only the .pc files built for Windows.
if(WEFT_MINGW_PREFIX)
  set(ENV{PKG_CONFIG_LIBDIR} "${WEFT_MINGW_PREFIX}/lib/pkgconfig")
  set(ENV{PKG_CONFIG_SYSROOT_DIR} "")
endif()

# ctest (and catch_discover_tests) run the programs under Wine, in a prefix
# of the build tree. Debian 12 installs the 64-bit launcher off PATH.
find_program(WEFT_WINE NAMES wine64 wine PATHS /usr/lib/wine NO_CMAKE_FIND_ROOT_PATH)
if(WEFT_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR
      env WINEPREFIX=${CMAKE_BINARY_DIR}/wineprefix WINEDEBUG=-all ${WEFT_WINE})
endif()
