/* Error names and messages for weft's own codes and libuv's, and for the
 * ranges that optional modules register. */
#include "internal.h"

/* Registered ranges: written once each, under the lock, before the count
 * that publishes them; readers take no lock. */
#define WEFT__ERROR_RANGES 8
typedef struct weft__error_range {
  int lo, hi;
  weft_error_namer message;
  weft_error_namer name;
} weft__error_range;
static weft__error_range weft__ranges[WEFT__ERROR_RANGES];
static int weft__n_ranges;
static uv_once_t weft__ranges_once = UV_ONCE_INIT;
static uv_mutex_t weft__ranges_lock;

static void weft__ranges_init(void) { uv_mutex_init(&weft__ranges_lock); }

static const weft__error_range *weft__range_of(int err) {
  int n = __atomic_load_n(&weft__n_ranges, __ATOMIC_ACQUIRE);
  for (int i = 0; i < n; i++)
    if (err >= weft__ranges[i].lo && err <= weft__ranges[i].hi) return &weft__ranges[i];
  return NULL;
}

int weft_error_register(int lo, int hi, weft_error_namer message, weft_error_namer name) {
  if (lo > hi || hi > -31000) return UV_EINVAL;
  uv_once(&weft__ranges_once, weft__ranges_init);
  uv_mutex_lock(&weft__ranges_lock);
  int r = 0;
  int n = weft__n_ranges;
  for (int i = 0; i < n && r == 0; i++) {
    const weft__error_range *g = &weft__ranges[i];
    if (g->lo == lo && g->hi == hi) {
      uv_mutex_unlock(&weft__ranges_lock);
      return 0;
    }
    if (lo <= g->hi && hi >= g->lo) r = UV_EINVAL;
  }
  if (r == 0 && n == WEFT__ERROR_RANGES) r = UV_ENOSPC;
  if (r == 0) {
    weft__ranges[n] = (weft__error_range){lo, hi, message, name};
    __atomic_store_n(&weft__n_ranges, n + 1, __ATOMIC_RELEASE);
  }
  uv_mutex_unlock(&weft__ranges_lock);
  return r;
}

/* Whether libuv knows err. Asking libuv about a code it does not know makes
 * it allocate a message that nobody frees. */
static int weft__uv_known(int err) {
  switch (err) {
#define WEFT__UV_KNOWN(name, msg) case UV_##name:
    UV_ERRNO_MAP(WEFT__UV_KNOWN)
#undef WEFT__UV_KNOWN
    return 1;
  default:
    return 0;
  }
}

const char *weft_strerror(int err) {
  switch (err) {
#define WEFT__STRERROR(name, value, msg) \
  case WEFT_##name:                      \
    return msg;
    WEFT_ERRNO_MAP(WEFT__STRERROR)
#undef WEFT__STRERROR
  case 0:
    return "success";
  default:
    break;
  }
  if (weft__uv_known(err)) return uv_strerror(err);
  const weft__error_range *g = weft__range_of(err);
  const char *m = g && g->message ? g->message(err) : NULL;
  return m ? m : "unknown error";
}

const char *weft_err_name(int err) {
  switch (err) {
#define WEFT__ERRNAME(name, value, msg) \
  case WEFT_##name:                     \
    return #name;
    WEFT_ERRNO_MAP(WEFT__ERRNAME)
#undef WEFT__ERRNAME
  case 0:
    return "OK";
  default:
    break;
  }
  if (weft__uv_known(err)) return uv_err_name(err);
  const weft__error_range *g = weft__range_of(err);
  const char *m = g && g->name ? g->name(err) : NULL;
  return m ? m : "UNKNOWN";
}
