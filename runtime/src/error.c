/* Error names and messages for weft's own codes and libuv's. */
#include "internal.h"

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
  if (err > -30000 && err < 0) return uv_strerror(err);
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
  if (err > -30000 && err < 0) {
    const char *name = uv_err_name(err);
    /* libuv says "Unknown system error N" for codes it does not know. */
    if (name != NULL && name[0] == 'E') return name;
  }
  return "UNKNOWN";
}
