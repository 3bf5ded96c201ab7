/* fuzz_websocket: WebSocket frame parsing under a fuzzer.
 *
 * An input is the bytes a client sends after its upgrade request (which
 * offers permessage-deflate, so that compressed frames are inflated too):
 * frames, masked or not, fragmented, control frames, closes. A server
 * connection (weft_http_serve_conn, weft_ws_upgrade and an echo loop of
 * weft_ws_recv/weft_ws_send, with small limits) reads them from a
 * loopback socket, since a WebSocket reads its socket directly; the
 * client sends the input, ends its side and reads until the server
 * closes. Every input must end in bounded time without a crash or a leak.
 * See cmake/weftFuzz.cmake for the builds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>
#include <weft_http.h>
#include <weft_ws.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_upgrade[] =
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

typedef struct fuzz_run {
  const uint8_t *data;
  size_t size;
  weft_tcp *listener;
  int port;
} fuzz_run;

static int fuzz_handler(const weft_http_request *req, weft_http_response *res,
                        void *ctx) {
  (void)ctx;
  weft_ws_limits lim;
  weft_ws_limits_default(&lim);
  lim.max_frame_bytes = 64 * 1024;
  lim.max_message_bytes = 64 * 1024;
  lim.ping_interval_ms = 1000;
  lim.idle_timeout_ms = 2000;
  lim.close_timeout_ms = 200;
  lim.write_timeout_ms = 1000;
  weft_ws *ws = NULL;
  if (weft_ws_upgrade(req, res, &lim, &ws) != 0) return 0;
  weft_ws_msg m;
  while (weft_ws_recv(ws, &m) == 0) {
    if (m.type == WEFT_WS_TEXT && memchr(m.data, '\0', m.len) == NULL &&
        ((const char *)m.data)[m.len] != '\0') {
      fprintf(stderr, "fuzz_websocket: message without its NUL\n");
      abort();
    }
    if (weft_ws_send(ws, m.type, m.data, m.len) != 0) break;
  }
  (void)weft_ws_close_code(ws);
  weft_ws_free(ws);
  return 0;
}

static int fuzz_server(void *arg) {
  fuzz_run *run = arg;
  weft_tcp *conn = NULL;
  int r = weft_tcp_accept(run->listener, &conn);
  if (r != 0) return r;
  weft_http_limits lim;
  weft_http_limits_default(&lim);
  (void)weft_http_serve_conn(conn, &lim, fuzz_handler, NULL);
  weft_tcp_close(conn);
  return 0;
}

static int fuzz_client(void *arg) {
  fuzz_run *run = arg;
  weft_tcp *c = NULL;
  int r = weft_tcp_connect("127.0.0.1", run->port, &c);
  if (r != 0) return r;
  r = weft_tcp_write(c, fuzz_upgrade, sizeof fuzz_upgrade - 1);
  if (r == 0 && run->size > 0) r = weft_tcp_write(c, run->data, run->size);
  if (r == 0) (void)weft_tcp_shutdown(c);
  char *buf = malloc(16384);
  if (buf != NULL) {
    while (weft_tcp_read(c, buf, 16384) > 0) {
    }
    free(buf);
  }
  weft_tcp_close(c);
  return 0;
}

static int fuzz_task(void *arg) {
  fuzz_run *run = arg;
  int r = weft_tcp_listen("127.0.0.1", 0, 0, 0, &run->listener);
  if (r != 0) return r;
  run->port = weft_tcp_local_port(run->listener);
  /* Nothing may take long: a stuck connection is a bug. */
  weft_scope s;
  weft_scope_enter(&s, 10000);
  weft_group *g = weft_group_open(WEFT_COLLECT);
  if (g == NULL) {
    r = UV_ENOMEM;
  } else {
    weft_spawn(g, fuzz_server, run);
    weft_spawn(g, fuzz_client, run);
    r = weft_group_join(g);
  }
  int left = weft_scope_leave(&s);
  weft_tcp_close(run->listener);
  if (left != 0) {
    fprintf(stderr, "fuzz_websocket: the connection did not end in 10 s\n");
    abort();
  }
  return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_run run = {.data = data, .size = size};
  fuzz_run_input("fuzz_websocket", fuzz_task, &run);
  return 0;
}
