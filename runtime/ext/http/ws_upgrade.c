/* ws_upgrade.c: the WebSocket handshake (RFC 6455 section 4.2): the
 * request is checked, a subprotocol chosen and permessage-deflate
 * negotiated (RFC 7692 section 7.1), the weft_ws made and the 101 written.
 * The framing that follows is websocket.c's.
 */
#include "sha1.h"
#include "ws_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


/* ---- Header fields and the key ------------------------------------------- */

/* ch in lower case, for ASCII letters only (header tokens are ASCII). */
static int ascii_lower(int ch) {
  return ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch;
}

/* Compares len bytes of a with the NUL-terminated b without regard to case. */
static int token_equal(const char *a, size_t len, const char *b) {
  size_t i = 0;
  for (; i < len && b[i] != '\0'; i++)
    if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
      return 0;
  return i == len && b[i] == '\0';
}

/* Calls fn on each comma-separated, whitespace-trimmed element of list
 * until fn returns non-zero; returns that value, or 0. */
static int list_each(const char *list,
                     int (*fn)(const char *tok, size_t len, void *arg),
                     void *arg) {
  const char *p = list;
  while (*p != '\0') {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    const char *start = p;
    while (*p != '\0' && *p != ',') p++;
    const char *end = p;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if (end > start) {
      int r = fn(start, (size_t)(end - start), arg);
      if (r != 0) return r;
    }
  }
  return 0;
}

/* list_each() callback: non-zero when tok is the token want. */
static int token_is(const char *tok, size_t len, void *want) {
  return token_equal(tok, len, want);
}

/* Non-zero when some header named name holds token in its list. */
static int header_has_token(const weft_http_request *req, const char *name,
                            const char *token) {
  size_t n = weft_http_request_header_count(req);
  for (size_t i = 0; i < n; i++) {
    const char *hn, *hv;
    if (weft_http_request_header_at(req, i, &hn, &hv) != 0) break;
    if (token_equal(hn, strlen(hn), name) &&
        list_each(hv, token_is, (void *)token))
      return 1;
  }
  return 0;
}

/* The number of headers named name; the first one's value in *value. */
static size_t header_count(const weft_http_request *req, const char *name,
                           const char **value) {
  size_t n = weft_http_request_header_count(req), count = 0;
  *value = NULL;
  for (size_t i = 0; i < n; i++) {
    const char *hn, *hv;
    if (weft_http_request_header_at(req, i, &hn, &hv) != 0) break;
    if (!token_equal(hn, strlen(hn), name)) continue;
    if (count++ == 0) *value = hv;
  }
  return count;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes the base64 form (RFC 4648, padded) of len bytes to out, which has
 * room for 4 * ((len + 2) / 3) + 1 characters. */
static void base64_encode(const uint8_t *in, size_t len, char *out) {
  size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    *out++ = b64_alphabet[v >> 18];
    *out++ = b64_alphabet[(v >> 12) & 63];
    *out++ = b64_alphabet[(v >> 6) & 63];
    *out++ = b64_alphabet[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    *out++ = b64_alphabet[v >> 18];
    *out++ = b64_alphabet[(v >> 12) & 63];
    *out++ = '=';
    *out++ = '=';
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    *out++ = b64_alphabet[v >> 18];
    *out++ = b64_alphabet[(v >> 12) & 63];
    *out++ = b64_alphabet[(v >> 6) & 63];
    *out++ = '=';
  }
  *out = '\0';
}

/* Non-zero when key is the padded base64 form of exactly 16 bytes: 22
 * characters of the alphabet, the last of which carries only 2 bits of
 * data (the other 4 must be 0, as an encoder writes them), then "==". */
static int ws_key_valid(const char *key) {
  if (key == NULL || strlen(key) != 24 || key[22] != '=' || key[23] != '=')
    return 0;
  for (int i = 0; i < 22; i++)
    if (key[i] == '\0' || strchr(b64_alphabet, key[i]) == NULL) return 0;
  size_t last = (size_t)(strchr(b64_alphabet, key[21]) - b64_alphabet);
  return (last & 15) == 0;
}

void weft_ws_accept_key(const char *key, char out[29]) {
  weft__sha1 s;
  uint8_t digest[WEFT__SHA1_DIGEST_BYTES];
  weft__sha1_init(&s);
  weft__sha1_update(&s, key, strlen(key));
  weft__sha1_update(&s, WS_GUID, sizeof WS_GUID - 1);
  weft__sha1_final(&s, digest);
  base64_encode(digest, sizeof digest, out);
}

/* ---- Limits -------------------------------------------------------------- */

void weft_ws_limits_default(weft_ws_limits *limits) {
  limits->max_frame_bytes = (size_t)1 << 20;
  limits->max_message_bytes = (size_t)1 << 20;
  limits->ping_interval_ms = 30000;
  limits->idle_timeout_ms = 75000;
  limits->close_timeout_ms = 5000;
  limits->write_timeout_ms = 30000;
  limits->read_buffer_bytes = 16 * 1024;
  limits->deflate = 1;
  limits->deflate_level = 6;
  limits->deflate_min_bytes = 128;
  limits->deflate_window_bits = 15;
  limits->deflate_context_takeover = -1;
}

/* Fills *out from in (may be NULL), a default for every field left 0, and
 * brings sizes that make no sense back into range. */
static void limits_resolve(weft_ws_limits *out, const weft_ws_limits *in) {
  weft_ws_limits_default(out);
  if (in == NULL) return;
  if (in->max_frame_bytes) out->max_frame_bytes = in->max_frame_bytes;
  if (in->max_message_bytes) out->max_message_bytes = in->max_message_bytes;
  if (in->ping_interval_ms) out->ping_interval_ms = in->ping_interval_ms;
  if (in->idle_timeout_ms) out->idle_timeout_ms = in->idle_timeout_ms;
  if (in->close_timeout_ms) out->close_timeout_ms = in->close_timeout_ms;
  if (in->write_timeout_ms) out->write_timeout_ms = in->write_timeout_ms;
  if (in->read_buffer_bytes) out->read_buffer_bytes = in->read_buffer_bytes;
  if (in->deflate) out->deflate = in->deflate;
  if (in->deflate_level) out->deflate_level = in->deflate_level;
  if (in->deflate_min_bytes) out->deflate_min_bytes = in->deflate_min_bytes;
  if (in->deflate_window_bits)
    out->deflate_window_bits = in->deflate_window_bits;
  if (in->deflate_context_takeover)
    out->deflate_context_takeover = in->deflate_context_takeover;
  if (out->deflate_level < 1) out->deflate_level = 1;
  if (out->deflate_level > 9) out->deflate_level = 9;
  /* zlib's raw deflate cannot keep to a window of 8 (it uses 9). */
  if (out->deflate_window_bits < 9) out->deflate_window_bits = 9;
  if (out->deflate_window_bits > 15) out->deflate_window_bits = 15;
  if (out->read_buffer_bytes < WS_MIN_READ_BUFFER)
    out->read_buffer_bytes = WS_MIN_READ_BUFFER;
  /* Past this a size is a mistake (and max + 1 would overflow). */
  if (out->max_message_bytes > SIZE_MAX / 4)
    out->max_message_bytes = SIZE_MAX / 4;
  /* A message is at least one frame; a larger frame limit means nothing. */
  if (out->max_frame_bytes > out->max_message_bytes)
    out->max_frame_bytes = out->max_message_bytes;
}

/* ---- The object: made by the upgrade, freed by weft_ws_free() ------------ */

const char *weft_ws_protocol(const weft_ws *ws) {
  return ws != NULL ? ws->protocol : "";
}

const char *weft_ws_extensions(const weft_ws *ws) {
  return ws != NULL ? ws->extensions : "";
}

void weft_ws_free(weft_ws *ws) {
  if (ws == NULL) return;
  if (ws->calls > 0) {
    /* Other tasks are inside calls (a sender blocked by a slow peer, a
     * receiver, a close waiting for the answer): end their waits, and let
     * them return before the memory goes. The wait is shielded, since a
     * cancelled caller must still not free ws under them. */
    if (ws->left == NULL) ws->left = weft_event_new(); /* NULL: leaked */
    ws->freeing = 1;
    for (ws_wait *w = ws->waits; w != NULL; w = w->next)
      weft_scope_cancel(&w->scope);
    weft_scope s;
    weft_scope_enter_shielded(&s, WS_FREE_WAIT_MS);
    while (ws->left != NULL && ws->calls > 0 && weft_event_wait(ws->left) == 0) {
    }
    weft_scope_leave(&s);
    if (ws->calls > 0) {
      /* Leaking is the only safe choice left; it needs a task that is
       * stuck outside every wait of ws, which should not happen. */
      weft_log(WEFT_LOG_ERROR, "websocket not freed", "calls=%u", ws->calls);
      return;
    }
  }
  weft_mutex_free(ws->wlock);
  weft_event_free(ws->ended);
  weft_event_free(ws->left);
  weft__ws_tx_drop(ws);
  weft__ws_rx_drop(ws);
  free(ws->zmsg);
  free(ws->msg);
  free(ws->rbuf);
  free(ws->close_reason);
  free(ws);
}

/* ---- The upgrade --------------------------------------------------------- */

/* Sets res to a refusal of the upgrade with status and why. */
static int refuse(weft_http_response *res, int status, const char *why) {
  weft_http_response_status(res, status);
  if (status == 426)
    weft_http_response_header(res, "Sec-WebSocket-Version", "13");
  weft_http_response_header(res, "Content-Type", "text/plain; charset=utf-8");
  weft_http_response_body(res, why, strlen(why));
  weft_http_response_append(res, "\n", 1);
  weft_http_response_close(res);
  return UV_EPROTO;
}

/* What the subprotocol choice looks through. */
typedef struct proto_pick {
  const char *const *protocols;
  const char *chosen;
} proto_pick;

/* list_each() callback: chooses tok if the server speaks it. */
static int proto_match(const char *tok, size_t len, void *arg) {
  proto_pick *pick = arg;
  for (const char *const *p = pick->protocols; *p != NULL; p++) {
    if (strlen(*p) == len && memcmp(*p, tok, len) == 0) {
      pick->chosen = *p;
      return 1;
    }
  }
  return 0;
}

/* ---- permessage-deflate negotiation (RFC 7692 section 7.1) -------------- */

/* One offer's parameters; a window of 0 was not named, -1 was named with
 * no value (client_max_window_bits alone). */
typedef struct pmd_offer {
  int server_no_takeover, client_no_takeover;
  int server_bits, client_bits;
} pmd_offer;

/* What the negotiation looks through: the server's settings in, the
 * answer out. */
typedef struct pmd_pick {
  const weft_ws_limits *lim;
  int accepted;
  int tx_bits, rx_bits, tx_takeover, rx_takeover;
  char answer[WS_EXT_MAX];
} pmd_pick;

/* Parses a window size: 8..15 in decimal without leading zeros, maybe in
 * quotes (section 7.1.2). Returns it, or 0 when it is not one. */
static int pmd_bits(const char *v, size_t len) {
  if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
    v++;
    len -= 2;
  }
  if (len == 1 && v[0] == '8') return 8;
  if (len == 1 && v[0] == '9') return 9;
  if (len == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
    return 10 + (v[1] - '0');
  return 0;
}

/* Parses one extension element "name; param[=value]; ...". Returns 1 when
 * it is a permessage-deflate offer whose parameters are all known, each
 * named once, with valid values (section 7.1: anything else makes the
 * offer one to decline), with them in *o; 0 otherwise. */
static int pmd_parse(const char *tok, size_t len, pmd_offer *o) {
  memset(o, 0, sizeof *o);
  const char *end = tok + len, *p = tok;
  int first = 1;
  while (p <= end) {
    const char *semi = memchr(p, ';', (size_t)(end - p));
    const char *stop = semi != NULL ? semi : end;
    const char *a = p, *b = stop;
    while (a < b && (*a == ' ' || *a == '\t')) a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
    const char *eq = memchr(a, '=', (size_t)(b - a));
    const char *nend = eq != NULL ? eq : b;
    while (nend > a && (nend[-1] == ' ' || nend[-1] == '\t')) nend--;
    size_t nlen = (size_t)(nend - a);
    const char *v = NULL;
    size_t vlen = 0;
    if (eq != NULL) {
      v = eq + 1;
      while (v < b && (*v == ' ' || *v == '\t')) v++;
      vlen = (size_t)(b - v);
    }
    if (first) {
      if (eq != NULL || !token_equal(a, nlen, "permessage-deflate")) return 0;
      first = 0;
    } else if (token_equal(a, nlen, "server_no_context_takeover")) {
      if (eq != NULL || o->server_no_takeover) return 0;
      o->server_no_takeover = 1;
    } else if (token_equal(a, nlen, "client_no_context_takeover")) {
      if (eq != NULL || o->client_no_takeover) return 0;
      o->client_no_takeover = 1;
    } else if (token_equal(a, nlen, "server_max_window_bits")) {
      if (eq == NULL || o->server_bits != 0) return 0;
      if ((o->server_bits = pmd_bits(v, vlen)) == 0) return 0;
    } else if (token_equal(a, nlen, "client_max_window_bits")) {
      if (o->client_bits != 0) return 0;
      o->client_bits = eq == NULL ? -1 : pmd_bits(v, vlen);
      if (o->client_bits == 0) return 0;
    } else {
      return 0;
    }
    if (semi == NULL) break;
    p = semi + 1;
  }
  return 1;
}

/* list_each() callback: accepts the offer in tok if it is one the server
 * can take, and writes the answer (section 7.1.1, 7.1.2). */
static int pmd_consider(const char *tok, size_t len, void *arg) {
  pmd_pick *pick = arg;
  pmd_offer o;
  if (!pmd_parse(tok, len, &o)) return 0;
  int own = pick->lim->deflate_window_bits;
  /* zlib cannot compress within a window of 8: decline, and let the
   * client's next offer (if any) be considered. */
  if (o.server_bits == 8) return 0;
  pick->tx_bits =
      o.server_bits != 0 && o.server_bits < own ? o.server_bits : own;
  pick->tx_takeover =
      !o.server_no_takeover && pick->lim->deflate_context_takeover > 0;
  pick->rx_takeover = !o.client_no_takeover;
  /* The client may be told a smaller window only if it said it can take
   * one (client_max_window_bits in the offer). */
  pick->rx_bits = 15;
  if (o.client_bits != 0) {
    int offered = o.client_bits > 0 ? o.client_bits : 15;
    pick->rx_bits = offered < own ? offered : own;
  }
  char *a = pick->answer;
  size_t cap = sizeof pick->answer, n;
  n = (size_t)snprintf(a, cap, "permessage-deflate");
  if (!pick->tx_takeover)
    n += (size_t)snprintf(a + n, cap - n, "; server_no_context_takeover");
  if (!pick->rx_takeover)
    n += (size_t)snprintf(a + n, cap - n, "; client_no_context_takeover");
  /* The server may name its own window even when it was not asked. */
  if (o.server_bits != 0 || pick->tx_bits < 15)
    n += (size_t)snprintf(a + n, cap - n, "; server_max_window_bits=%d",
                          pick->tx_bits);
  if (o.client_bits != 0)
    snprintf(a + n, cap - n, "; client_max_window_bits=%d", pick->rx_bits);
  pick->accepted = 1;
  return 1;
}

/* Looks through the client's Sec-WebSocket-Extensions offers, in order,
 * for the first permessage-deflate offer the server accepts. Fills *pick;
 * pick->accepted is 0 when there is none (or deflate is off). */
static void pmd_negotiate(const weft_http_request *req,
                          const weft_ws_limits *lim, pmd_pick *pick) {
  memset(pick, 0, sizeof *pick);
  pick->lim = lim;
  if (lim->deflate < 0) return;
  size_t n = weft_http_request_header_count(req);
  for (size_t i = 0; i < n && !pick->accepted; i++) {
    const char *hn, *hv;
    if (weft_http_request_header_at(req, i, &hn, &hv) != 0) break;
    if (token_equal(hn, strlen(hn), "Sec-WebSocket-Extensions"))
      list_each(hv, pmd_consider, pick);
  }
}

/* Checks the handshake of section 4.2.1. Returns 0, or sets res to the
 * refusal and returns UV_EPROTO. */
static int check_handshake(const weft_http_request *req,
                           weft_http_response *res, const char **key) {
  const char *v;
  if (strcmp(weft_http_request_method(req), "GET") != 0)
    return refuse(res, 400, "a WebSocket handshake is a GET");
  if (weft_http_request_version(req) < 11)
    return refuse(res, 400, "a WebSocket handshake needs HTTP/1.1");
  if (weft_http_request_header(req, "Host") == NULL)
    return refuse(res, 400, "no Host header");
  if (!header_has_token(req, "Upgrade", "websocket"))
    return refuse(res, 400, "no \"Upgrade: websocket\" header");
  if (!header_has_token(req, "Connection", "upgrade"))
    return refuse(res, 400, "no \"upgrade\" in the Connection header");
  if (header_count(req, "Sec-WebSocket-Version", &v) != 1 ||
      strcmp(v, "13") != 0)
    return refuse(res, 426, "only WebSocket version 13 is spoken here");
  if (header_count(req, "Sec-WebSocket-Key", key) != 1 || !ws_key_valid(*key))
    return refuse(res, 400, "Sec-WebSocket-Key is not 16 bytes in base64");
  size_t body_len = 0;
  weft_http_request_body(req, &body_len);
  if (body_len != 0)
    return refuse(res, 400, "a WebSocket handshake has no body");
  return 0;
}

/* The first of the client's subprotocols that the server speaks, or "". */
static const char *pick_protocol(const weft_http_request *req,
                                 const char *const *protocols) {
  proto_pick pick = {protocols, NULL};
  if (protocols != NULL) {
    size_t n = weft_http_request_header_count(req);
    for (size_t i = 0; i < n && pick.chosen == NULL; i++) {
      const char *hn, *hv;
      if (weft_http_request_header_at(req, i, &hn, &hv) != 0) break;
      if (token_equal(hn, strlen(hn), "Sec-WebSocket-Protocol"))
        list_each(hv, proto_match, &pick);
    }
  }
  return pick.chosen ? pick.chosen : "";
}

/* Makes the weft_ws of the connection req arrived on, with subprotocol
 * proto, the extensions negotiated, and the client's first frames if they
 * came in with the request. Returns 0 with it in *out, or UV_ENOMEM. */
static int ws_new(const weft_http_request *req, const weft_ws_limits *limits,
                  const char *proto, weft_ws **out) {
  size_t rest_len = 0;
  const void *rest = weft__http_request_rest(req, &rest_len);
  size_t plen = strlen(proto);
  weft_ws_limits lim;
  limits_resolve(&lim, limits);
  pmd_pick pmd;
  pmd_negotiate(req, &lim, &pmd);
  const char *ext = pmd.accepted ? pmd.answer : "";
  size_t elen = strlen(ext);
  /* The names at the end of the struct: one block, as small as they. */
  weft_ws *ws = calloc(1, sizeof *ws + plen + 1 + elen + 1);
  if (ws == NULL) return UV_ENOMEM;
  ws->lim = lim;
  memcpy(ws->protocol, proto, plen + 1);
  memcpy(ws->protocol + plen + 1, ext, elen + 1);
  ws->extensions = ws->protocol + plen + 1;
  if (pmd.accepted) {
    ws->pmd = 1;
    ws->tx_bits = pmd.tx_bits;
    ws->rx_bits = pmd.rx_bits;
    ws->tx_takeover = pmd.tx_takeover;
    ws->rx_takeover = pmd.rx_takeover;
  }
  ws->tcp = weft__http_request_tcp(req);
  ws->executor = weft_executor_id();
  ws->state = WS_OPEN;
  ws->close_deadline = -1;
  ws->last_rx = ws->last_ping = weft_now();
  /* The client's first frames may have come in with the request. */
  ws->rsize = rest_len > ws->lim.read_buffer_bytes ? rest_len
                                                   : ws->lim.read_buffer_bytes;
  ws->rbuf = malloc(ws->rsize);
  ws->wlock = weft_mutex_new();
  if (ws->rbuf == NULL || ws->wlock == NULL) {
    weft_ws_free(ws);
    return UV_ENOMEM;
  }
  if (rest_len > 0) memcpy(ws->rbuf, rest, rest_len);
  ws->rlen = rest_len;
  *out = ws;
  return 0;
}

/* Takes the connection over from the HTTP loop and writes the 101 that
 * accepts the client's key. Returns 0, UV_ENOMEM (the connection is then
 * not taken over), or the write's error. */
static int send_switching(weft_ws *ws, const weft_http_request *req,
                          weft_http_response *res, const char *key) {
  size_t plen = strlen(ws->protocol);
  char accept[29];
  weft_ws_accept_key(key, accept);
  size_t cap = 200 + plen + WS_EXT_MAX + 40;
  char *head = malloc(cap);
  if (head == NULL) return UV_ENOMEM;
  int hlen =
      snprintf(head, cap,
               "HTTP/1.1 101 Switching Protocols\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Accept: %s\r\n"
               "%s%s%s"
               "%s%s%s"
               "\r\n",
               accept, plen ? "Sec-WebSocket-Protocol: " : "", ws->protocol,
               plen ? "\r\n" : "", ws->pmd ? "Sec-WebSocket-Extensions: " : "",
               ws->extensions, ws->pmd ? "\r\n" : "");
  /* From here on the bytes on the connection are ours: the HTTP loop must
   * not answer this request, even if the 101 cannot be written. */
  weft__http_hijack(res);
  /* The request's buffers are of no more use (its first frames are
   * copied): a connection that lives for hours does not keep them. */
  weft__http_request_release(req);
  weft_tcp_nodelay(ws->tcp, 1);
  ws_wait w;
  weft__ws_wait_enter(ws, &w, ws->lim.write_timeout_ms);
  int r = weft_tcp_write(ws->tcp, head, (size_t)hlen);
  int left = weft__ws_wait_leave(ws, &w);
  free(head);
  if (r != 0 && weft__ws_wait_was_ours(ws, left)) r = UV_ETIMEDOUT;
  return r;
}

int weft_ws_upgrade_protocols(const weft_http_request *req,
                              weft_http_response *res,
                              const weft_ws_limits *limits,
                              const char *const *protocols, weft_ws **out) {
  if (out != NULL) *out = NULL;
  if (req == NULL || res == NULL || out == NULL || !weft_in_task())
    return UV_EINVAL;
  const char *key = NULL;
  int r = check_handshake(req, res, &key);
  if (r != 0) return r;
  const char *proto = pick_protocol(req, protocols);
  /* A subprotocol goes into a header line: refuse one that would break it. */
  if (strpbrk(proto, "\r\n") != NULL) return UV_EINVAL;
  weft_ws *ws;
  r = ws_new(req, limits, proto, &ws);
  if (r != 0) return r;
  r = send_switching(ws, req, res, key);
  if (r != 0) goto fail_free;
  *out = ws;
  return 0;
fail_free:
  weft_ws_free(ws);
  return r;
}

int weft_ws_upgrade(const weft_http_request *req, weft_http_response *res,
                    const weft_ws_limits *limits, weft_ws **out) {
  return weft_ws_upgrade_protocols(req, res, limits, NULL, out);
}
