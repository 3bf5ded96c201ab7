/* uv_echo_server.c: the smallest fair echo server on libuv callbacks, the
 * floor for weft's overhead in bench/echo/run.sh.
 *
 *   uv_echo_server [--listen 127.0.0.1:0] [--threads N] [--buffer BYTES]
 *
 * It follows the same rules as apps/echo_server, so that the comparison is
 * about the runtime and not the policy: one buffer per connection (taken
 * when data first arrives, so an idle connection holds none), read, write
 * it all back, then read again; TCP_NODELAY; with --threads N, N loops each
 * with a listener of its own on the same port (SO_REUSEPORT). It logs
 * "listening on HOST:PORT" on stderr and exits on SIGINT or SIGTERM.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

typedef struct loop_ctx {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_signal_t sigint, sigterm;
  uv_thread_t tid;
} loop_ctx;

typedef struct conn {
  uv_tcp_t tcp;
  uv_write_t wreq;
  char *buf;
} conn;

static size_t buffer_size = 65536;
static struct sockaddr_storage listen_addr;

static void on_conn_close(uv_handle_t *h) {
  conn *c = h->data;
  free(c->buf);
  free(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  conn *c = h->data;
  (void)suggested;
  if (c->buf == NULL) c->buf = malloc(buffer_size);
  *buf = uv_buf_init(c->buf, c->buf ? (unsigned)buffer_size : 0);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status) {
  conn *c = req->data;
  if (status < 0) {
    uv_close((uv_handle_t *)&c->tcp, on_conn_close);
    return;
  }
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn *c = s->data;
  if (nread == 0) return;
  if (nread < 0) {
    uv_close((uv_handle_t *)&c->tcp, on_conn_close);
    return;
  }
  uv_buf_t out = uv_buf_init(buf->base, (unsigned)nread);
  int n = uv_try_write(s, &out, 1);
  if (n == nread) return;
  if (n < 0 && n != UV_EAGAIN) {
    uv_close((uv_handle_t *)&c->tcp, on_conn_close);
    return;
  }
  if (n < 0) n = 0;
  /* The client is slow: stop reading until what is left has gone out. */
  uv_read_stop(s);
  out = uv_buf_init(buf->base + n, (unsigned)(nread - n));
  c->wreq.data = c;
  if (uv_write(&c->wreq, s, &out, 1, on_write) < 0)
    uv_close((uv_handle_t *)&c->tcp, on_conn_close);
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) return;
  conn *c = calloc(1, sizeof *c);
  if (c == NULL) return;
  uv_tcp_init(server->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, on_conn_close);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void close_any(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, h->data == NULL || h->type != UV_TCP ? NULL : on_conn_close);
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  uv_walk(s->loop, close_any, NULL);
}

/* Opens a listener with SO_REUSEPORT on addr, in loop. Returns its port. */
static int open_listener(loop_ctx *l, int reuseport) {
  uv_tcp_init(&l->loop, &l->listener);
  l->listener.data = NULL;
  if (reuseport) {
    int fd = socket(listen_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
      perror("uv_echo_server: SO_REUSEPORT");
      exit(1);
    }
    uv_tcp_open(&l->listener, fd);
  }
  int r = uv_tcp_bind(&l->listener, (const struct sockaddr *)&listen_addr, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)&l->listener, 1024, on_connection);
  if (r < 0) {
    fprintf(stderr, "uv_echo_server: listen: %s\n", uv_strerror(r));
    exit(1);
  }
  struct sockaddr_storage name;
  int len = sizeof name;
  uv_tcp_getsockname(&l->listener, (struct sockaddr *)&name, &len);
  return ntohs(((struct sockaddr_in *)&name)->sin_port);
}

static void loop_main(void *arg) {
  loop_ctx *l = arg;
  uv_run(&l->loop, UV_RUN_DEFAULT);
}

int main(int argc, char **argv) {
  const char *listen = "127.0.0.1:0";
  int threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--listen") == 0)
      listen = argv[i + 1];
    else if (strcmp(argv[i], "--threads") == 0)
      threads = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--buffer") == 0)
      buffer_size = (size_t)atol(argv[i + 1]);
    else {
      fprintf(stderr, "usage: uv_echo_server [--listen HOST:PORT] [--threads "
                      "N] [--buffer BYTES]\n");
      return 2;
    }
  }
  if (threads < 1 || buffer_size == 0) return 2;
  char host[64];
  const char *colon = strrchr(listen, ':');
  if (colon == NULL || (size_t)(colon - listen) >= sizeof host) return 2;
  memcpy(host, listen, (size_t)(colon - listen));
  host[colon - listen] = '\0';
  int port = atoi(colon + 1);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&listen_addr) != 0) {
    fprintf(stderr, "uv_echo_server: IPv4 addresses only\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);

  loop_ctx *loops = calloc((size_t)threads, sizeof *loops);
  for (int i = 0; i < threads; i++) {
    uv_loop_init(&loops[i].loop);
    /* Every loop gets the signals, so that each closes its own handles. */
    uv_signal_init(&loops[i].loop, &loops[i].sigint);
    uv_signal_init(&loops[i].loop, &loops[i].sigterm);
    uv_signal_start(&loops[i].sigint, on_signal, SIGINT);
    uv_signal_start(&loops[i].sigterm, on_signal, SIGTERM);
    int p = open_listener(&loops[i], threads > 1);
    /* Port 0: the first listener's port is everyone's. */
    ((struct sockaddr_in *)&listen_addr)->sin_port = htons((uint16_t)p);
    if (i == 0) port = p;
  }
  fprintf(stderr, "listening on %s:%d\n", host, port);
  for (int i = 1; i < threads; i++)
    uv_thread_create(&loops[i].tid, loop_main, &loops[i]);
  loop_main(&loops[0]);
  for (int i = 1; i < threads; i++) uv_thread_join(&loops[i].tid);
  free(loops);
  return 0;
}
