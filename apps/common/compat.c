/* compat.c: POSIX calls with a Windows counterpart (see compat.h). */
#include "compat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#endif

#ifdef _WIN32
/* The errno of a failed Win32 file call. */
static int win_errno(DWORD e) {
  switch (e) {
  case ERROR_FILE_NOT_FOUND:
  case ERROR_PATH_NOT_FOUND:
  case ERROR_INVALID_NAME:
  case ERROR_BAD_NETPATH:
    return ENOENT;
  case ERROR_ACCESS_DENIED:
  case ERROR_SHARING_VIOLATION:
    return EACCES;
  case ERROR_FILENAME_EXCED_RANGE:
    return ENAMETOOLONG;
  case ERROR_NOT_ENOUGH_MEMORY:
  case ERROR_OUTOFMEMORY:
    return ENOMEM;
  default:
    return EIO;
  }
}

char *app_realpath(const char *path) {
  /* FILE_FLAG_BACKUP_SEMANTICS opens directories too; no access is asked
   * for, only the name. */
  HANDLE h = CreateFileA(path, 0,
                         FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                         NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
  if (h == INVALID_HANDLE_VALUE) {
    errno = win_errno(GetLastError());
    return NULL;
  }
  DWORD flags = FILE_NAME_NORMALIZED | VOLUME_NAME_DOS;
  /* The size asked for counts the NUL; one byte more, since Wine 8's ANSI
   * call refuses a buffer of exactly that size. */
  DWORD need = GetFinalPathNameByHandleA(h, NULL, 0, flags);
  char *buf = need > 0 ? malloc(need + 1) : NULL;
  DWORD got =
      buf != NULL ? GetFinalPathNameByHandleA(h, buf, need + 1, flags) : 0;
  DWORD e = GetLastError();
  CloseHandle(h);
  if (got == 0 || got > need) {
    errno = need > 0 && buf == NULL ? ENOMEM : win_errno(e);
    free(buf);
    return NULL;
  }
  /* "\\?\C:\dir" becomes "C:\dir", "\\?\UNC\host\share" "\\host\share". */
  if (strncmp(buf, "\\\\?\\UNC\\", 8) == 0) {
    memmove(buf + 2, buf + 8, got - 8 + 1);
  } else if (strncmp(buf, "\\\\?\\", 4) == 0) {
    memmove(buf, buf + 4, got - 4 + 1);
  }
  return buf;
}

int app_path_separator(char c) { return c == '/' || c == '\\'; }

int app_is_directory(const char *path) {
  DWORD a = GetFileAttributesA(path);
  return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY);
}

FILE *app_fopen(const char *path, const char *mode) {
  FILE *f = fopen(path, mode);
  struct stat st;
  if (f == NULL && errno == EACCES && stat(path, &st) == 0 &&
      S_ISDIR(st.st_mode))
    errno = EISDIR;
  return f;
}

void app_gmtime(time_t t, struct tm *tm) { gmtime_s(tm, &t); }

time_t app_timegm(struct tm *tm) { return _mkgmtime(tm); }

#else

FILE *app_fopen(const char *path, const char *mode) {
  return fopen(path, mode);
}

char *app_realpath(const char *path) { return realpath(path, NULL); }

int app_path_separator(char c) { return c == '/'; }

int app_is_directory(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void app_gmtime(time_t t, struct tm *tm) { gmtime_r(&t, tm); }

time_t app_timegm(struct tm *tm) { return timegm(tm); }

#endif

int app_path_inside(const char *resolved, const char *root) {
  size_t n = strlen(root);
  if (strncmp(resolved, root, n) != 0) return 0;
  /* A root that ends in a separator ("/", "C:\") holds whatever it
   * prefixes. */
  if (n > 0 && app_path_separator(root[n - 1])) return 1;
  return resolved[n] == '\0' || app_path_separator(resolved[n]);
}
