/* io_dns.c: name resolution on libuv's thread pool.
 *
 * Numeric addresses never leave the calling task. Names go through
 * uv_getaddrinfo() without AI_ADDRCONFIG, so that "localhost" resolves on a
 * machine whose only interface is the loopback.
 */
#include <string.h>

#ifndef _WIN32
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif

#include "internal.h"

typedef struct dns_op {
  uv_getaddrinfo_t req;
  weft__task *task;
  struct addrinfo *res;       /* the answer, freed by the caller */
} dns_op;

static void dns_on_done(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  dns_op *op = req->data;
  op->res = res;
  weft__wake(op->task, status);
}

/* A lookup still queued is dropped; one already running is waited for (its
 * answer is then freed unused). */
static void dns_cancel(weft__task *t, void *data) {
  (void)t;
  uv_cancel((uv_req_t *)data);
}

static void dns_set_port(struct sockaddr_storage *a, int port) {
  if (a->ss_family == AF_INET)
    ((struct sockaddr_in *)a)->sin_port = htons((uint16_t)port);
  else if (a->ss_family == AF_INET6)
    ((struct sockaddr_in6 *)a)->sin6_port = htons((uint16_t)port);
}

int weft_dns_lookup(const char *host, int port, struct sockaddr_storage *addrs,
                    int max) {
  if (host == NULL || addrs == NULL || max <= 0 || port < 0 || port > 65535)
    return UV_EINVAL;
  int r = weft__check_cancel();
  if (r != 0) return r;

  memset(&addrs[0], 0, sizeof(addrs[0]));
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addrs[0]) == 0) return 1;
  memset(&addrs[0], 0, sizeof(addrs[0]));
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addrs[0]) == 0) return 1;
  if (weft__self() == NULL) return WEFT_ENOTASK;

  struct addrinfo hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  dns_op op;
  op.req.data = &op;
  op.task = weft__self();
  op.res = NULL;
  r = uv_getaddrinfo(&weft__current_exec->loop, &op.req, dns_on_done, host,
                     NULL, &hints);
  if (r < 0) return r;
  r = weft__park(dns_cancel, &op.req);

  int n = 0;
  if (r == 0) {
    for (struct addrinfo *ai = op.res; ai != NULL && n < max; ai = ai->ai_next) {
      if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
      if (ai->ai_addrlen > sizeof(addrs[n])) continue;
      memset(&addrs[n], 0, sizeof(addrs[n]));
      memcpy(&addrs[n], ai->ai_addr, ai->ai_addrlen);
      dns_set_port(&addrs[n], port);
      n++;
    }
    if (n == 0) r = UV_EAI_NODATA;
  }
  uv_freeaddrinfo(op.res);
  return r < 0 ? r : n;
}
