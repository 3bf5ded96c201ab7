/* fuzz_replay_main.c: the main of every fuzz target outside libFuzzer.
 *
 * A fuzz target is a file defining LLVMFuzzerTestOneInput() (and, if it
 * needs one, LLVMFuzzerInitialize()). Built with -DWEFT_FUZZ=ON under
 * clang, libFuzzer supplies main(); in every build (normal and sanitizer)
 * the target is also linked with this file, a program that replays every
 * file of the directories or files it is given, by default the seed corpus
 * (WEFT_FUZZ_CORPUS_DIR, set by weft_fuzz_target() in cmake/weftFuzz.cmake),
 * so that ctest runs each corpus on every build:
 *
 *   ./NAME_fuzz_replay [DIR|FILE]...
 *
 * A target that keeps state across inputs frees it in
 * weft_fuzz_replay_done(), called once after the last input (the default
 * does nothing), so that the leak checker sees a clean exit.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef WEFT_FUZZ_CORPUS_DIR
#define WEFT_FUZZ_CORPUS_DIR "."
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void weft_fuzz_replay_done(void);

/* Targets without an initializer or state get these. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

__attribute__((weak)) void weft_fuzz_replay_done(void) {}

static const char *fuzz_prog = "fuzz_replay";

/* Reads a whole file; returns its bytes (malloc'ed) or NULL. */
static uint8_t *fuzz_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  uint8_t *buf = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n == cap) {
      cap = cap ? cap * 2 : 4096;
      uint8_t *grown = realloc(buf, cap);
      if (grown == NULL) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = grown;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

/* Replays one file; returns 0, or -1 when it cannot be read. */
static int fuzz_replay_file(const char *path) {
  size_t len = 0;
  uint8_t *data = fuzz_read_file(path, &len);
  if (data == NULL) {
    fprintf(stderr, "%s: cannot read %s\n", fuzz_prog, path);
    return -1;
  }
  LLVMFuzzerTestOneInput(data, len);
  free(data);
  return 0;
}

static int fuzz_compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays every regular file of dir, in name order (so that a failure is
 * reported the same way every run). Returns the number replayed, or -1. */
static int fuzz_replay_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    fprintf(stderr, "%s: cannot open %s\n", fuzz_prog, dir);
    return -1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 32;
      char **grown = realloc(names, cap * sizeof *names);
      if (grown == NULL) {
        rc = -1;
        break;
      }
      names = grown;
    }
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    if ((names[n] = malloc(len)) == NULL) {
      rc = -1;
      break;
    }
    snprintf(names[n++], len, "%s/%s", dir, e->d_name);
  }
  closedir(d);
  if (n > 0) qsort(names, n, sizeof *names, fuzz_compare_names);
  int replayed = 0;
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
      if (fuzz_replay_file(names[i]) < 0)
        rc = -1;
      else
        replayed++;
    }
    free(names[i]);
  }
  free(names);
  return rc < 0 ? -1 : replayed;
}

/* Replays the corpus directories and files named on the command line, or
 * the seed corpus. Exits 0 when every input ran (a crash aborts). */
int main(int argc, char **argv) {
  const char *slash = strrchr(argv[0], '/');
  fuzz_prog = slash ? slash + 1 : argv[0];
  LLVMFuzzerInitialize(&argc, &argv);
  const char *fallback[] = {WEFT_FUZZ_CORPUS_DIR};
  const char **paths = argc > 1 ? (const char **)argv + 1 : fallback;
  int n_paths = argc > 1 ? argc - 1 : 1;
  int total = 0, failed = 0;
  for (int i = 0; i < n_paths; i++) {
    struct stat st;
    if (stat(paths[i], &st) != 0) {
      fprintf(stderr, "%s: no such file or directory: %s\n", fuzz_prog,
              paths[i]);
      failed = 1;
    } else if (S_ISDIR(st.st_mode)) {
      int n = fuzz_replay_dir(paths[i]);
      if (n < 0)
        failed = 1;
      else
        total += n;
    } else if (fuzz_replay_file(paths[i]) < 0) {
      failed = 1;
    } else {
      total++;
    }
  }
  weft_fuzz_replay_done();
  printf("%s: replayed %d input%s\n", fuzz_prog, total, total == 1 ? "" : "s");
  if (total == 0) failed = 1;
  return failed ? 1 : 0;
}

