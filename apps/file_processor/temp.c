/* temp.c: temporary outputs, written beside their final name and renamed.
 *
 * Every output goes to ".NAME.fp-tmp-XXXXXX" in the folder of NAME (hidden,
 * and never ending in the output's suffix, so no tool takes it for a
 * finished .gz or .zst), is fsynced and then renamed over NAME: after a
 * SIGKILL a final name holds either nothing or a whole file. Each
 * temporary file is recorded in the journal before it is created and kept
 * in a registry while it exists, so that a signal or an error removes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(WEFT_HAVE_GETRANDOM) || defined(WEFT_HAVE_GETENTROPY)
#include <sys/random.h>
#endif
#include <unistd.h>

#include "fp.h"

static pthread_mutex_t temp_lock = PTHREAD_MUTEX_INITIALIZER;
static char **temps;
static size_t n_temps, cap_temps;
static _Atomic int64_t bytes_written;

static void temp_register(const char *tmp) {
  pthread_mutex_lock(&temp_lock);
  if (n_temps == cap_temps) {
    size_t cap = cap_temps ? 2 * cap_temps : 16;
    char **more = realloc(temps, cap * sizeof *more);
    if (more != NULL) temps = more, cap_temps = cap;
  }
  if (n_temps < cap_temps) {
    char *copy = strdup(tmp);
    if (copy) temps[n_temps++] = copy;
  }
  pthread_mutex_unlock(&temp_lock);
}

void fp_temp_forget(const char *tmp) {
  pthread_mutex_lock(&temp_lock);
  for (size_t i = 0; i < n_temps; i++) {
    if (strcmp(temps[i], tmp) == 0) {
      free(temps[i]);
      temps[i] = temps[--n_temps];
      break;
    }
  }
  pthread_mutex_unlock(&temp_lock);
}

void fp_temp_remove_all(void) {
  pthread_mutex_lock(&temp_lock);
  for (size_t i = 0; i < n_temps; i++) {
    unlink(temps[i]);
    free(temps[i]);
  }
  free(temps);
  temps = NULL;
  n_temps = cap_temps = 0;
  pthread_mutex_unlock(&temp_lock);
}

char *fp_temp_create(fp_run *r, const char *final_path, int *fd) {
  const char *slash = strrchr(final_path, '/');
  size_t dir_len = slash ? (size_t)(slash - final_path) + 1 : 0;
  const char *base = final_path + dir_len;
  size_t len = dir_len + strlen(base) + 32;
  char *tmp = malloc(len);
  if (tmp == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  static const char letters[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  for (int attempt = 0; attempt < 100; attempt++) {
    unsigned char rnd[6];
    /* getrandom (Linux, FreeBSD), getentropy (macOS), or rand(): O_EXCL
     * below makes a guessed name harmless, only a retry. */
#if defined(WEFT_HAVE_GETRANDOM)
    int got = getrandom(rnd, sizeof rnd, 0) == (ssize_t)sizeof rnd;
#elif defined(WEFT_HAVE_GETENTROPY)
    int got = getentropy(rnd, sizeof rnd) == 0;
#else
    int got = 0;
#endif
    if (!got) {
      for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = (unsigned char)rand(); /* NOLINT(cert-msc30-c,cert-msc50-cpp): the name only avoids collisions; O_EXCL guards it */
    }
    char suffix[7];
    for (int i = 0; i < 6; i++) suffix[i] = letters[rnd[i] % 62];
    suffix[6] = '\0';
    snprintf(tmp, len, "%.*s.%s.fp-tmp-%s", (int)dir_len, final_path, base,
             suffix);
    /* Recorded first: a crash right after the open leaves no file that
     * --resume does not know of. */
    fp_journal_temp(r->journal, tmp);
    *fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (*fd >= 0) {
      temp_register(tmp);
      return tmp;
    }
    if (errno != EEXIST) break;
  }
  int saved = errno;
  free(tmp);
  errno = saved;
  return NULL;
}

static int fsync_dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, (size_t)(slash - path) + 1) : strdup(".");
  if (dir == NULL) return UV_ENOMEM;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(dir);
  if (fd < 0) return -errno;
  int err = fsync(fd) == 0 ? 0 : -errno;
  close(fd);
  return err;
}

int fp_temp_commit(fp_run *r, int fd, char *tmp, const char *final_path) {
  int err = 0;
  if (fsync(fd) != 0) err = -errno;
  if (close(fd) != 0 && err == 0) err = -errno;
  if (err == 0 && rename(tmp, final_path) != 0) err = -errno;
  if (err != 0) unlink(tmp);
  fp_temp_forget(tmp);
  free(tmp);
  if (err == 0 && r->cfg->fsync) err = fsync_dir_of(final_path);
  return err;
}

int fp_write_all(fp_run *r, int fd, const void *buf, size_t len) {
  int64_t limit = r->cfg->fail_writes_after;
  if (limit >= 0 &&
      atomic_fetch_add(&bytes_written, (int64_t)len) + (int64_t)len > limit)
    return UV_ENOSPC;
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}
