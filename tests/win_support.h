/* win_support.h: what the tests take from POSIX, on Windows (mingw-w64).
 *
 * Included instead of <netinet/in.h>, <sys/socket.h> and <arpa/inet.h>
 * under _WIN32: Winsock gives the same sockaddr types and inet_pton(); mkdtemp()
 * is made of _mktemp_s() and _mkdir(). windows.h's `near` and `far` macros
 * are undone, since tests use them as names.
 */
#ifndef WEFT_TEST_WIN_SUPPORT_H
#define WEFT_TEST_WIN_SUPPORT_H

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#include <direct.h>
#include <io.h>
#include <stdlib.h>
#include <string.h>

#undef near
#undef far

/* mkdtemp(3): replaces the trailing XXXXXX of tmpl and makes the directory. */
static inline char *mkdtemp(char *tmpl) {
  if (_mktemp_s(tmpl, strlen(tmpl) + 1) != 0) return NULL;
  return _mkdir(tmpl) == 0 ? tmpl : NULL;
}
#endif

#if defined(__cplusplus)
#include <string>
/* The shell command that removes a test's temporary directory tree: rm -rf,
 * or cmd.exe's rmdir on Windows. */
inline std::string weft_test_rm_rf_command(const std::string &path) {
#if defined(_WIN32)
  std::string p = path;
  for (char &ch : p)
    if (ch == '/') ch = '\\';
  return "rmdir /s /q \"" + p + "\"";
#else
  return "rm -rf '" + path + "'";
#endif
}
#endif

#endif /* WEFT_TEST_WIN_SUPPORT_H */
