/* Task stacks: mmap'ed with a guard page below, pooled per executor, and a
 * SIGSEGV handler that turns a hit on a guard page into a clear report.
 * On Windows a task's stack is its fiber's, and an exception handler makes
 * the report (the end of this file).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if !defined(_WIN32)
#include <sys/mman.h>
#include <unistd.h>
#endif

#if defined(WEFT_VALGRIND)
#include <valgrind/valgrind.h>
#endif

#include "internal.h"

#if !defined(_WIN32)

#ifndef MAP_STACK
#define MAP_STACK 0
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif
/* Linux 6.13+: a guard region that does not split the mapping, so stacks do
 * not count twice against vm.max_map_count. */
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static size_t weft__page_size(void) {
  static size_t page;
  if (page == 0) page = (size_t)sysconf(_SC_PAGESIZE);
  return page;
}

/* An advice no kernel has: Linux refuses it with EINVAL. */
#define WEFT__MADV_NONE_SUCH 0x7fffffff

static int weft__guard_install(void *addr, size_t len) {
#if defined(__linux__)
  /* 0: not known yet, 1: MADV_GUARD_INSTALL works, -1: use mprotect. */
  static int madv_guard;
  int state = __atomic_load_n(&madv_guard, __ATOMIC_RELAXED);
  if (state == 0) {
    /* qemu's user mode answers 0 to every advice it does not pass on, an
     * advice that does not exist included, and installs nothing: there
     * its 0 to MADV_GUARD_INSTALL would leave the stack unguarded. */
    state = madvise(addr, len, WEFT__MADV_NONE_SUCH) == 0 ? -1 : 1;
    __atomic_store_n(&madv_guard, state, __ATOMIC_RELAXED);
  }
  if (state == 1) {
    if (madvise(addr, len, MADV_GUARD_INSTALL) == 0) return 0;
    /* an older kernel: fall back to mprotect */
    __atomic_store_n(&madv_guard, -1, __ATOMIC_RELAXED);
  }
#endif
  return mprotect(addr, len, PROT_NONE);
}

static int weft__stack_map(size_t size, weft__stack **out) {
  size_t page = weft__page_size();
  size = (size + page - 1) & ~(page - 1);
  size_t map_size = size + page;
  void *map = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
  if (map == MAP_FAILED) return UV_ENOMEM;
  if (weft__guard_install(map, page) != 0) {
    int err = errno;
    munmap(map, map_size);
    return err == ENOMEM ? UV_ENOMEM : -err;
  }
  weft__stack *s = malloc(sizeof *s);
  if (s == NULL) {
    munmap(map, map_size);
    return UV_ENOMEM;
  }
  s->map = map;
  s->map_size = map_size;
  s->base = (char *)map + page;
  s->size = size;
  s->next = NULL;
  s->valgrind_id = 0;
#if defined(WEFT_VALGRIND)
  s->valgrind_id = VALGRIND_STACK_REGISTER(s->base, (char *)s->base + size);
#endif
  *out = s;
  return 0;
}

static void weft__stack_unmap(weft__stack *s) {
#if defined(WEFT_VALGRIND)
  VALGRIND_STACK_DEREGISTER(s->valgrind_id);
#endif
  munmap(s->map, s->map_size);
  free(s);
}

/* The bytes just below the frame that a trim leaves alone: the frames of
 * the wait that usually follows. */
#define WEFT__TRIM_KEEP 256

size_t weft__stack_trim(weft__stack *s, const void *frame) {
#if defined(__linux__)
  uintptr_t page = (uintptr_t)weft__page_size();
  uintptr_t base = (uintptr_t)s->base;
  uintptr_t top = (uintptr_t)frame;
  /* Not on this stack (a sanitizer's fake frame, say): leave it. */
  if (top <= base || top > base + s->size) return 0;
  if (top - base <= WEFT__TRIM_KEEP + page) return 0;
  uintptr_t end = (top - WEFT__TRIM_KEEP) & ~(page - 1);
  if (end <= base) return 0;
  if (madvise(s->base, end - base, MADV_DONTNEED) != 0) return 0;
  return end - base;
#else
  (void)s, (void)frame;
  return 0;
#endif
}

#else /* _WIN32 */

/* Windows: the stack is the fiber's own (arch/ctx_win64_fiber.c), reserved
 * by CreateFiberEx with the system's guard page below its committed part; a
 * weft__stack only records the size, and the pool keeps the records. */
static int weft__stack_map(size_t size, weft__stack **out) {
  weft__stack *s = calloc(1, sizeof *s);
  if (s == NULL) return UV_ENOMEM;
  s->size = size;
  *out = s;
  return 0;
}

static void weft__stack_unmap(weft__stack *s) { free(s); }

size_t weft__stack_trim(weft__stack *s, const void *frame) {
  (void)s, (void)frame;
  return 0;
}

#endif /* _WIN32 */

int weft__stack_get(weft__exec *e, size_t size, weft__stack **out) {
  if (size == e->stack_default && e->stack_pool != NULL) {
    weft__stack *s = e->stack_pool;
    e->stack_pool = s->next;
    e->stack_pool_len--;
    *out = s;
    return 0;
  }
  return weft__stack_map(size, out);
}

void weft__stack_put(weft__exec *e, weft__stack *s) {
  if (s->size == e->stack_default && e->stack_pool_len < e->stack_pool_max) {
    s->next = e->stack_pool;
    e->stack_pool = s;
    e->stack_pool_len++;
    return;
  }
  weft__stack_unmap(s);
}

void weft__stack_pool_drain(weft__exec *e) {
  while (e->stack_pool != NULL) {
    weft__stack *s = e->stack_pool;
    e->stack_pool = s->next;
    weft__stack_unmap(s);
  }
  e->stack_pool_len = 0;
}

/* ---- Overflow reports --------------------------------------------------- */

#if !defined(_WIN32)

static WEFT__TLS void *weft__altstack;
static struct sigaction weft__old_segv, weft__old_bus;
static uv_once_t weft__guard_once = UV_ONCE_INIT;

/* Formats an unsigned number into buf (async-signal-safe). */
static size_t weft__fmt_u(char *buf, size_t n) {
  char tmp[24];
  size_t len = 0;
  do {
    tmp[len++] = (char)('0' + n % 10);
    n /= 10;
  } while (n != 0);
  for (size_t i = 0; i < len; i++) buf[i] = tmp[len - 1 - i];
  return len;
}

static void weft__append(char *buf, size_t *len, size_t cap, const char *s) {
  while (*s && *len < cap) buf[(*len)++] = *s++;
}

static void weft__segv_handler(int sig, siginfo_t *info, void *uctx) {
  weft__task *t = weft__current_task;
  if (t != NULL && t->stack != NULL) {
    char *addr = info->si_addr;
    char *guard = t->stack->map;
    size_t page = weft__page_size();
    /* A fault in the guard page, or just below it from a large frame. */
    if (addr >= guard - 16 * page && addr < guard + page) {
      char msg[256];
      size_t len = 0, cap = sizeof msg - 1;
      weft__append(msg, &len, cap, "weft: stack overflow in task '");
      weft__append(msg, &len, cap, t->name[0] ? t->name : "(unnamed)");
      weft__append(msg, &len, cap, "' (stack size ");
      if (len + 24 < cap) len += weft__fmt_u(msg + len, t->stack->size);
      weft__append(msg, &len, cap,
                   " bytes); give it a larger stack with weft_spawn_opts()\n");
      msg[len] = '\0';
      ssize_t w = write(STDERR_FILENO, msg, len);
      (void)w;
      signal(SIGABRT, SIG_DFL);
      abort();
    }
  }
  /* Not ours: hand the fault to whoever was there before. */
  struct sigaction *old = sig == SIGBUS ? &weft__old_bus : &weft__old_segv;
  if (old->sa_flags & SA_SIGINFO) {
    if (old->sa_sigaction != NULL) {
      old->sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
    old->sa_handler(sig);
    return;
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

static void weft__guard_install_handler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = weft__segv_handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &weft__old_segv);
  sigaction(SIGBUS, &sa, &weft__old_bus);
}

void weft__stack_guard_init(void) {
  uv_once(&weft__guard_once, weft__guard_install_handler);
  if (weft__altstack != NULL) return;
  /* The handler runs on an alternate stack: the task's own is exhausted. */
  size_t size = 64 * 1024;
  stack_t ss, old;
  if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE)) return;
  void *mem = malloc(size);
  if (mem == NULL) return;
  ss.ss_sp = mem;
  ss.ss_size = size;
  ss.ss_flags = 0;
  if (sigaltstack(&ss, NULL) != 0) {
    free(mem);
    return;
  }
  weft__altstack = mem;
}

void weft__stack_guard_fini(void) {
  if (weft__altstack == NULL) return;
  stack_t ss;
  memset(&ss, 0, sizeof ss);
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, NULL);
  free(weft__altstack);
  weft__altstack = NULL;
}

#else /* _WIN32 */

#include <windows.h>

static uv_once_t weft__guard_once = UV_ONCE_INIT;

/* A stack overflow in a task: the report Linux gives, then abort(). Runs on
 * what is left of the fiber's stack past its guard page, so it only formats
 * into a small buffer. */
static LONG CALLBACK weft__overflow_handler(EXCEPTION_POINTERS *info) {
  weft__task *t = weft__current_task;
  if (info->ExceptionRecord->ExceptionCode != EXCEPTION_STACK_OVERFLOW ||
      t == NULL || t->stack == NULL)
    return EXCEPTION_CONTINUE_SEARCH;
  char msg[160];
  snprintf(msg, sizeof msg,
           "weft: stack overflow in task '%s' (stack size %lu bytes); give it "
           "a larger stack with weft_spawn_opts()\n",
           t->name[0] ? t->name : "(unnamed)", (unsigned long)t->stack->size);
  DWORD written;
  WriteFile(GetStdHandle(STD_ERROR_HANDLE), msg, (DWORD)strlen(msg), &written, NULL);
  abort();
}

static void weft__guard_install_handler(void) {
  AddVectoredExceptionHandler(1, weft__overflow_handler);
}

void weft__stack_guard_init(void) { uv_once(&weft__guard_once, weft__guard_install_handler); }

void weft__stack_guard_fini(void) {}

#endif /* _WIN32 */
