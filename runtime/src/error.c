/* Error names and messages for weft's own codes and libuv's. */
#include "internal.h"

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
  return "unknown error";
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
  return "UNKNOWN";
}
