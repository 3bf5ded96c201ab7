/* pool_saturation.h: occupying every thread of libuv's pool, so that work
 * queued after that waits; for the tests of cancelling queued work. */
#ifndef WEFT_TEST_POOL_SATURATION_H
#define WEFT_TEST_POOL_SATURATION_H

#include <stdlib.h>

#include <atomic>

#include "weft.h"

namespace {

// libuv's thread pool has UV_THREADPOOL_SIZE threads, 4 by default.
inline int pool_size() {
  const char *s = getenv("UV_THREADPOOL_SIZE");
  int n = s ? atoi(s) : 4;
  return n > 0 ? n : 4;
}

// Occupies every thread of the pool until released.
struct Saturation {
  uv_sem_t release;
  std::atomic<int> started{0};
  int n = 0;
  weft_group *group = nullptr;
};

inline int blocker_fn(void *arg) {
  auto *s = static_cast<Saturation *>(arg);
  s->started++;
  uv_sem_wait(&s->release);
  return 0;
}

inline int blocker_task(void *arg) { return weft_blocking(blocker_fn, arg); }

// Starts the blockers and waits until each holds a thread. Returns 0 or an
// error.
inline int saturate(Saturation *s) {
  s->n = pool_size();
  if (uv_sem_init(&s->release, 0) != 0) return UV_ENOMEM;
  s->group = weft_group_open(WEFT_COLLECT);
  for (int i = 0; i < s->n; i++) weft_spawn(s->group, blocker_task, s);
  for (int i = 0; i < 2000 && s->started.load() < s->n; i++) weft_sleep(1);
  return s->started.load() == s->n ? 0 : UV_ETIMEDOUT;
}

// Releases the blockers and waits for them. Idempotent.
inline void unsaturate(Saturation *s) {
  if (s->group == nullptr) return;
  for (int i = 0; i < s->n; i++) uv_sem_post(&s->release);
  weft_group_join(s->group);
  s->group = nullptr;
  uv_sem_destroy(&s->release);
}

}  // namespace

#endif
