/* http_internal.h: what the HTTP module's other parts (the WebSocket
 * upgrade) need of a server connection. Not installed. */
#ifndef WEFT_HTTP_INTERNAL_H
#define WEFT_HTTP_INTERNAL_H

#include <stddef.h>

#include "weft_http.h"

/* The connection req arrived on. Valid during the handler call. */
weft_tcp *weft__http_request_tcp(const weft_http_request *req);

/* The bytes the connection has already read past the end of req when req
 * asked for an upgrade (a client may send its first frames right behind the
 * request); *len is 0 otherwise. Valid during the handler call. */
const void *weft__http_request_rest(const weft_http_request *req, size_t *len);

/* Takes the connection over from the HTTP loop: the handler has written
 * (or will write) everything itself, so nothing is written for res, and
 * weft_http_serve_conn() returns 0 once the handler returns. The socket is
 * still closed by weft_http_serve_conn()'s caller. */
void weft__http_hijack(weft_http_response *res);

/* Gives back every buffer of the request and its response once the
 * connection is taken over (a WebSocket keeps none of them for its whole
 * life): req's method, path and headers read as empty from here on, and
 * nothing is written for res. Call after weft__http_hijack() and after the
 * last use of weft__http_request_rest(). */
void weft__http_request_release(const weft_http_request *req);

#endif /* WEFT_HTTP_INTERNAL_H */
