/* weft/error.h: error codes and their names.
 *
 * Every weft call reports success as 0 (or a non-negative count) and failure
 * as a negative number. libuv's UV_E* codes are weft errors as they are;
 * weft's own codes lie below libuv's range so the two never collide.
 */
#ifndef WEFT_ERROR_H
#define WEFT_ERROR_H

#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/** weft's own errors, one XX(name, value, message) each: the one table
 * the enum below, weft_err_name() and weft_strerror() are made from. */
#define WEFT_ERRNO_MAP(XX)                                                    \
  XX(ECLOSED, -30001, "channel or stream closed")                             \
  XX(ENOTASK, -30002, "called outside a weft task")                           \
  XX(ESTACKSIZE, -30003, "invalid stack size")                                \
  XX(EGROUP, -30004, "group belongs to another task or was already joined") \
  XX(EHANDLES, -30005, "handles left open when the runtime ended")

/** weft's own error codes, all below libuv's range. */
typedef enum {
#define WEFT__ERRNO_ENUM(name, value, msg) WEFT_##name = (value),
  WEFT_ERRNO_MAP(WEFT__ERRNO_ENUM)
#undef WEFT__ERRNO_ENUM
  WEFT__ERRNO_MAX_ = -30000
} weft_errno_t;

/**
 * Returns a message for any weft or libuv error code. Never NULL; an unknown
 * code gives "unknown error". The string is static.
 */
const char *weft_strerror(int err);

/**
 * Returns the symbolic name of an error code ("ECANCELED", "ECLOSED"), or
 * "UNKNOWN". The string is static.
 */
const char *weft_err_name(int err);

/** Names the errors of a module's own range (see weft_error_register()). */
typedef const char *(*weft_error_namer)(int err);

/**
 * Lets an optional module name the errors of its own range [lo, hi], which
 * must lie below weft's (below -30999): weft_strerror() and weft_err_name()
 * then ask message(err) and name(err) for a code in it (either may be NULL:
 * "unknown error", "UNKNOWN"). Registering the same range again does
 * nothing. Any thread. Returns 0, UV_EINVAL for a bad range or one that
 * overlaps another, or UV_ENOSPC when 8 ranges are registered already.
 */
int weft_error_register(int lo, int hi, weft_error_namer message, weft_error_namer name);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_ERROR_H */
