# CMake toolchain file: AArch64 Linux, cross-built on a Debian or Ubuntu
# machine with multiarch (scripts/setup-aarch64.sh installs everything):
#
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#   ctest --test-dir build-aarch64
#
# The compilers are Debian's gcc-aarch64-linux-gnu and g++-aarch64-linux-gnu;
# the libraries are the arm64 packages of multiarch (libuv1-dev:arm64, ...)
# in /usr/lib/aarch64-linux-gnu, with their headers in /usr/include. ctest
# runs every test program under qemu-aarch64 (Debian qemu-user), with the
# AArch64 loader and C library of multiarch (below); the applications'
# integration tests start the binaries through the same emulator
# (WEFT_TEST_EMULATOR, see cmake/weftTesting.cmake).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_ASM_COMPILER aarch64-linux-gnu-gcc)

# Programs (python3, the code generators) are the build machine's; libraries
# and headers are the target's, which multiarch keeps apart by directory.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

# pkg-config must see the arm64 .pc files only.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# The emulator's sysroot (-L) is the machine's root: multiarch's libc6:arm64
# puts the AArch64 loader at /lib/ld-linux-aarch64.so.1, next to the C
# library in /lib/aarch64-linux-gnu that the programs load with libuv and
# the rest. Not /usr/aarch64-linux-gnu: that is the cross compiler's own
# copy of glibc, possibly another build of it (2.36-8cross1 against
# 2.36-9+deb12u14 in Debian 12 today), and its loader with multiarch's
# libc.so.6 hangs in the first pthread_create().
find_program(WEFT_QEMU_AARCH64 qemu-aarch64)
if(WEFT_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${WEFT_QEMU_AARCH64};-L;/")
endif()
