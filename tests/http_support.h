/* http_support.h: what the tests of the HTTP server module share. C++ only.
 *
 * The module is optional: this header defines WEFT_TEST_HAVE_HTTP when
 * weft_http.h can be found, and only then includes it and declares the
 * helpers. A test file includes it after Catch2 and compiles its cases
 * under #ifdef WEFT_TEST_HAVE_HTTP, with one case that says the module was
 * not built in the #else branch.
 *
 * The helpers run inside weft tasks and never assert: they return weft's
 * codes and the tests check them after the runtime returns. */
#ifndef WEFT_TEST_HTTP_SUPPORT_H
#define WEFT_TEST_HTTP_SUPPORT_H

#if defined(__has_include)
#if __has_include(<weft_http.h>)
#define WEFT_TEST_HAVE_HTTP 1
#endif
#endif

#ifdef WEFT_TEST_HAVE_HTTP

#include <stdlib.h>
#include <string.h>

#include <string>

#include "support.h"
#include "weft.h"
#include "weft_http.h"

namespace {

// How many times what occurs in s, overlapping occurrences included.
inline size_t count(const std::string &s, const std::string &what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos;
       at = s.find(what, at + 1))
    n++;
  return n;
}

// The body of req as a string (empty when it has none).
inline std::string request_body(const weft_http_request *req) {
  size_t len = 0;
  const void *body = weft_http_request_body(req, &len);
  return std::string(static_cast<const char *>(body), len);
}

// Serves the bytes in with weft_http_serve_memory() (limits may be NULL
// for the defaults) and appends every byte of the reply to *out. Must run
// inside a weft task. Returns weft_http_serve_memory()'s result.
inline int serve_memory_into(const std::string &in,
                             const weft_http_limits *limits,
                             weft_http_handler handler, void *ctx,
                             std::string *out) {
  char *bytes = nullptr;
  size_t len = 0;
  int rc = weft_http_serve_memory(in.data(), in.size(), limits, handler, ctx,
                                  &bytes, &len);
  // The reply is malloc'ed and ours to free; a bad argument leaves it NULL.
  if (bytes != nullptr) out->append(bytes, len);
  free(bytes);
  return rc;
}

} // namespace

#endif // WEFT_TEST_HAVE_HTTP

#endif
