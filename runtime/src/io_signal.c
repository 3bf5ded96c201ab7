/* io_signal.c: waiting for signals.
 *
 * Each executor keeps a registry (weft__exec.signals) with one uv_signal_t
 * per signal number that a task has waited for. The handle is started by the
 * first wait and stays, so that a signal arriving while no task waits is
 * counted rather than lost (or fatal, for SIGTERM) and returned by the next
 * wait. It is unreferenced whenever no task waits for its number, so it
 * never keeps the executor alive on its own; weft__signals_close() closes
 * the handles at shutdown.
 *
 * A delivery wakes every task waiting for that number at the time; it is
 * counted only when none waits.
 */
#include <stdlib.h>

#include "internal.h"

typedef struct sig_registry sig_registry;

typedef struct sig_entry {
  uv_signal_t handle;
  int signum;
  unsigned pending;           /* deliveries nobody has taken yet */
  unsigned waiters;           /* waits on this number (handle ref'd while > 0) */
  sig_registry *reg;
  struct sig_entry *next;
} sig_entry;

/* A parked waiter; lives on its task's stack. */
typedef struct sig_waiter {
  weft__task *task;
  sig_entry **entries;        /* one per signal number waited for */
  int n;
  struct sig_waiter *prev;
  struct sig_waiter *next;
} sig_waiter;

struct sig_registry {
  sig_entry *entries;
  sig_waiter *waiters;        /* in the order they started waiting */
  sig_waiter *waiters_tail;
};

static sig_registry *sig_get_registry(weft__exec *e) {
  if (e->signals == NULL) e->signals = calloc(1, sizeof(sig_registry));
  return e->signals;
}

static void sig_on_close(uv_handle_t *h) { free(h->data); }

static void sig_on_signal(uv_signal_t *h, int signum);

/* Finds or starts the handle for signum. */
static int sig_entry_get(sig_registry *reg, int signum, sig_entry **out) {
  for (sig_entry *en = reg->entries; en != NULL; en = en->next) {
    if (en->signum == signum) {
      *out = en;
      return 0;
    }
  }
  sig_entry *en = calloc(1, sizeof(*en));
  if (en == NULL) return UV_ENOMEM;
  int r = uv_signal_init(&weft__current_exec->loop, &en->handle);
  if (r < 0) {
    free(en);
    return r;
  }
  en->handle.data = en;
  r = uv_signal_start(&en->handle, sig_on_signal, signum);
  if (r < 0) {
    uv_close((uv_handle_t *)&en->handle, sig_on_close);
    return r;
  }
  uv_unref((uv_handle_t *)&en->handle);
  en->signum = signum;
  en->reg = reg;
  en->next = reg->entries;
  reg->entries = en;
  *out = en;
  return 0;
}

static void sig_waiter_add(sig_registry *reg, sig_waiter *w) {
  w->next = NULL;
  w->prev = reg->waiters_tail;
  if (reg->waiters_tail != NULL)
    reg->waiters_tail->next = w;
  else
    reg->waiters = w;
  reg->waiters_tail = w;
  for (int i = 0; i < w->n; i++) {
    if (w->entries[i]->waiters++ == 0) uv_ref((uv_handle_t *)&w->entries[i]->handle);
  }
}

static void sig_waiter_remove(sig_registry *reg, sig_waiter *w) {
  if (w->prev != NULL)
    w->prev->next = w->next;
  else
    reg->waiters = w->next;
  if (w->next != NULL)
    w->next->prev = w->prev;
  else
    reg->waiters_tail = w->prev;
  w->prev = w->next = NULL;
  for (int i = 0; i < w->n; i++) {
    if (--w->entries[i]->waiters == 0)
      uv_unref((uv_handle_t *)&w->entries[i]->handle);
  }
}

static int sig_waiter_wants(const sig_waiter *w, const sig_entry *en) {
  for (int i = 0; i < w->n; i++)
    if (w->entries[i] == en) return 1;
  return 0;
}

static void sig_on_signal(uv_signal_t *h, int signum) {
  sig_entry *en = h->data;
  sig_registry *reg = en->reg;
  int woken = 0;
  sig_waiter *w = reg->waiters;
  while (w != NULL) {
    sig_waiter *next = w->next;
    if (sig_waiter_wants(w, en)) {
      sig_waiter_remove(reg, w);
      weft__wake(w->task, signum);
      woken++;
    }
    w = next;
  }
  if (woken == 0) en->pending++;
}

static void sig_cancel(weft__task *t, void *data) {
  sig_waiter *w = data;
  sig_registry *reg = weft__current_exec->signals;
  /* A waiter still in the list has not been woken yet. */
  if (w->prev != NULL || reg->waiters == w) {
    sig_waiter_remove(reg, w);
    weft__wake(t, 0);
  }
}

/* The most signal numbers one wait takes (keeps the waiter on the stack). */
#define SIG_MAX_WAIT 64

int weft_signal_wait(const int *signums, int n) {
  if (weft__self() == NULL) return WEFT_ENOTASK;
  int r = weft__check_cancel();
  if (r != 0) return r;
  if (signums == NULL || n <= 0 || n > SIG_MAX_WAIT) return UV_EINVAL;
  sig_registry *reg = sig_get_registry(weft__current_exec);
  if (reg == NULL) return UV_ENOMEM;

  sig_entry *entries[SIG_MAX_WAIT];
  for (int i = 0; i < n; i++) {
    r = sig_entry_get(reg, signums[i], &entries[i]);
    if (r < 0) return r;
  }
  for (int i = 0; i < n; i++) {
    if (entries[i]->pending > 0) {
      entries[i]->pending--;
      return entries[i]->signum;
    }
  }
  sig_waiter w;
  w.task = weft__self();
  w.entries = entries;
  w.n = n;
  sig_waiter_add(reg, &w);
  return weft__park(sig_cancel, &w);
}

void weft__signals_close(weft__exec *e) {
  sig_registry *reg = e->signals;
  if (reg == NULL) return;
  sig_entry *en = reg->entries;
  while (en != NULL) {
    sig_entry *next = en->next;
    uv_close((uv_handle_t *)&en->handle, sig_on_close);
    en = next;
  }
  free(reg);
  e->signals = NULL;
}
