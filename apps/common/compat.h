/* compat.h: the few POSIX calls the applications use that Windows
 * (mingw-w64) lacks or names differently, behind one name each.
 *
 * On Linux and the other POSIX systems each function is the POSIX call
 * itself, so behaviour there is unchanged; only a Windows build takes the
 * other branch. See docs/PORTING.md for what differs.
 *
 *   char *real = app_realpath(root);         // malloc'd; NULL and errno
 *   if (app_path_inside(real_file, real)) ...
 *   long long ns = app_stat_mtime_ns(&st);
 */
#ifndef APP_COMPAT_H
#define APP_COMPAT_H

#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/** open() flag that keeps bytes as they are: O_BINARY on Windows (whose
 * C runtime opens files in text mode by default), 0 elsewhere. */
#ifdef _WIN32
#define APP_O_BINARY O_BINARY
#else
#define APP_O_BINARY 0
#endif

/** fopen(), except that a directory fails with errno EISDIR on Windows
 * too (whose fopen() says EACCES); POSIX systems open one, and its first
 * read fails with EISDIR. */
FILE *app_fopen(const char *path, const char *mode);

/** Whether path names a directory (links followed). Windows's stat()
 * refuses a directory named with a trailing separator ("dir/"); this does
 * not. */
int app_is_directory(const char *path);

/** The canonical absolute path of path, links resolved, malloc'd; NULL
 * with errno set when it cannot be resolved (ENOENT, EACCES, ...).
 * realpath(path, NULL) on POSIX systems; on Windows the final path of an
 * open handle (GetFinalPathNameByHandle: links resolved, long names), with
 * backslashes and a drive letter. */
char *app_realpath(const char *path);

/** Whether c separates path segments: '/', and '\\' on Windows too. */
int app_path_separator(char c);

/** Whether resolved (from app_realpath()) names root (also resolved) or
 * something below it. */
int app_path_inside(const char *resolved, const char *root);

/** The broken-down UTC time of t (gmtime_r; gmtime_s on Windows). */
void app_gmtime(time_t t, struct tm *tm);

/** The inverse of app_gmtime(): tm as UTC, -1 when out of range (timegm;
 * _mkgmtime on Windows). */
time_t app_timegm(struct tm *tm);

/** A file's modification time in nanoseconds since the epoch: st_mtim
 * (Linux, the BSDs), st_mtimespec (macOS), whole seconds where struct stat
 * has neither (Windows). Inline: struct stat is the caller's, whose layout
 * on mingw-w64 depends on _FILE_OFFSET_BITS. */
static inline long long app_stat_mtime_ns(const struct stat *st) {
#if defined(WEFT_HAVE_STAT_ST_MTIM)
  return (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
#elif defined(WEFT_HAVE_STAT_ST_MTIMESPEC)
  return (long long)st->st_mtimespec.tv_sec * 1000000000LL +
         st->st_mtimespec.tv_nsec;
#else
  return (long long)st->st_mtime * 1000000000LL;
#endif
}

#ifdef __cplusplus
}
#endif

#endif
