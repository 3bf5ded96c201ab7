/* curl_support.h: a libcurl client module client next to a loopback server,
 * for the tests of runtime/ext/curl. C++ only; needs weft_curl.h. */
#ifndef WEFT_TEST_CURL_SUPPORT_H
#define WEFT_TEST_CURL_SUPPORT_H

#include <functional>
#include <utility>

#include "net_support.h"
#include "weft.h"
#include "weft_curl.h"

namespace {

// Starts srv with serve (see LoopbackServer::start) and a client with the
// default options, runs body(client) on the calling task, then frees the
// client and stops srv. Returns the first setup error, else body's result.
inline int with_curl_client(LoopbackServer &srv, std::function<void(weft_tcp *)> serve,
                            const std::function<int(weft_curl *)> &body) {
  int r = srv.start(std::move(serve));
  weft_curl *c = weft_curl_new(nullptr);
  if (r == 0 && c == nullptr) r = UV_ENOMEM;
  if (r == 0) r = body(c);
  weft_curl_free(c);
  srv.stop();
  return r;
}

}  // namespace

#endif
