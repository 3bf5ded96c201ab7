# weftPlatform.cmake: the calls that only some systems have, found at
# configure time. Each check defines a WEFT_HAVE_* macro that the code tests
# with #ifdef; without it the code takes the portable way. docs/PORTING.md
# lists each call, where it exists, and what is done without it.
#
# WEFT_PLATFORM_RUNTIME_DEFS: for libweft's own sources (runtime/src).
# WEFT_PLATFORM_APP_DEFS: for the applications (weft_app_common passes them
# on to every application that links it).
include(CheckSymbolExists)
include(CheckStructHasMember)
include(CMakePushCheckState)

cmake_push_check_state(RESET)
set(CMAKE_REQUIRED_DEFINITIONS -D_GNU_SOURCE)
set(CMAKE_REQUIRED_QUIET ON)

# sendfile(2) with Linux's signature (out, in, off_t *offset, count), which
# Solaris shares; the BSDs and macOS have another one in <sys/socket.h>, and
# there weft_tcp_sendfile() reads and writes the file instead.
check_symbol_exists(sendfile "sys/sendfile.h" WEFT_HAVE_SENDFILE_LINUX)
# A listening option that spreads one port's connections over the sockets
# bound to it: SO_REUSEPORT_LB on FreeBSD 12 and later; SO_REUSEPORT itself
# balances on Linux 3.9+ and DragonFly only (on macOS, OpenBSD and NetBSD it
# just lets sockets share the port, and one of them gets every connection).
check_symbol_exists(SO_REUSEPORT_LB "sys/types.h;sys/socket.h" WEFT_HAVE_SO_REUSEPORT_LB)
check_symbol_exists(SO_REUSEPORT "sys/types.h;sys/socket.h" WEFT_HAVE_SO_REUSEPORT)
if(WEFT_HAVE_SO_REUSEPORT AND CMAKE_SYSTEM_NAME MATCHES "^(Linux|Android|DragonFly)$")
  set(WEFT_REUSEPORT_BALANCES ON)
else()
  set(WEFT_REUSEPORT_BALANCES OFF)
endif()
# The running thread's stack bounds (for AddressSanitizer's stack switches).
check_symbol_exists(pthread_getattr_np "pthread.h" WEFT_HAVE_PTHREAD_GETATTR_NP)

# The applications'.
check_symbol_exists(getrandom "sys/random.h" WEFT_HAVE_GETRANDOM)
check_symbol_exists(getentropy "sys/random.h" WEFT_HAVE_GETENTROPY)
check_symbol_exists(posix_fadvise "fcntl.h" WEFT_HAVE_POSIX_FADVISE)
check_symbol_exists(fdatasync "unistd.h" WEFT_HAVE_FDATASYNC)
check_struct_has_member("struct stat" st_mtim "sys/stat.h" WEFT_HAVE_STAT_ST_MTIM LANGUAGE C)
check_struct_has_member("struct stat" st_mtimespec "sys/stat.h" WEFT_HAVE_STAT_ST_MTIMESPEC
                        LANGUAGE C)
cmake_pop_check_state()

set(WEFT_PLATFORM_RUNTIME_DEFS "")
foreach(_v WEFT_HAVE_SENDFILE_LINUX WEFT_HAVE_SO_REUSEPORT_LB WEFT_REUSEPORT_BALANCES
           WEFT_HAVE_PTHREAD_GETATTR_NP)
  if(${_v})
    list(APPEND WEFT_PLATFORM_RUNTIME_DEFS ${_v})
  endif()
endforeach()
set(WEFT_PLATFORM_APP_DEFS "")
foreach(_v WEFT_HAVE_GETRANDOM WEFT_HAVE_GETENTROPY WEFT_HAVE_POSIX_FADVISE
           WEFT_HAVE_FDATASYNC WEFT_HAVE_STAT_ST_MTIM WEFT_HAVE_STAT_ST_MTIMESPEC)
  if(${_v})
    list(APPEND WEFT_PLATFORM_APP_DEFS ${_v})
  endif()
endforeach()
message(STATUS "weft: platform calls: ${WEFT_PLATFORM_RUNTIME_DEFS};${WEFT_PLATFORM_APP_DEFS}")
