/* loadgen.c: a load generator for TCP echo servers, written on libuv
 * directly so that it measures the server, not a runtime of its own.
 *
 *   echo_loadgen --port P [--mode echo] --connections 100 --size 64 --depth 1
 *                --duration 5 --warmup 1 --threads 1
 *       N connections each keep `depth` messages of `size` bytes in flight;
 *       reports messages per second and the latency of each message (from
 *       its send to the last byte of its echo) as JSON on stdout.
 *   echo_loadgen --port P --mode connect --connections 50 --size 64
 *       N workers each connect, send one message, read its echo and close,
 *       again and again; reports connections per second and their latency.
 *   echo_loadgen --port P --mode idle --connections 10000 --duration 30
 *       opens N connections, prints {"established": N, ...} once they are
 *       all up, holds them for the duration (or until SIGTERM), then closes.
 *
 * Each thread runs a loop of its own and takes every T-th connection.
 * Latencies go into a log-linear histogram (16 steps per power of two, so
 * a percentile is within about 6%).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

enum { MODE_ECHO, MODE_CONNECT, MODE_IDLE };
enum { PHASE_WARMUP, PHASE_MEASURE, PHASE_DONE };

/* Connects in flight per thread, so as not to overflow the server's backlog. */
#define CONNECTS_IN_FLIGHT 128
#define HIST_BUCKETS 1024
#define READ_BUFFER 65536

typedef struct hist {
  uint64_t counts[HIST_BUCKETS];
  uint64_t n, sum, max;
} hist;

static unsigned hist_index(uint64_t v) {
  if (v < 16) return (unsigned)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 4 */
  unsigned sub = (unsigned)(v >> (e - 4)) & 15u;
  return (e - 3) * 16 + sub;
}

static uint64_t hist_value(unsigned idx) {
  if (idx < 16) return idx;
  unsigned e = idx / 16 + 3, sub = idx % 16;
  return (uint64_t)(16 + sub) << (e - 4);
}

static void hist_add(hist *h, uint64_t v) {
  h->counts[hist_index(v)]++;
  h->n++;
  h->sum += v;
  if (v > h->max) h->max = v;
}

static void hist_merge(hist *into, const hist *h) {
  for (int i = 0; i < HIST_BUCKETS; i++) into->counts[i] += h->counts[i];
  into->n += h->n;
  into->sum += h->sum;
  if (h->max > into->max) into->max = h->max;
}

static double hist_percentile(const hist *h, double p) {
  if (h->n == 0) return 0;
  uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->n);
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= rank) {
      /* The middle of the bucket. */
      uint64_t lo = hist_value(i),
               hi = i + 1 < HIST_BUCKETS ? hist_value(i + 1) : lo;
      double v = ((double)lo + (double)hi) / 2;
      return v > (double)h->max ? (double)h->max : v;
    }
  }
  return (double)h->max;
}

/* ---- Options ------------------------------------------------------------ */

static struct {
  const char *host;
  int port;
  int mode;
  int connections;
  size_t size;
  int depth;
  double duration;
  double warmup;
  int threads;
  int sources; /* bind to 127.0.0.1 .. 127.0.0.N, for more ports */
} opt = {"127.0.0.1", 0, MODE_ECHO, 100, 64, 1, 5, 1, 1, 1};

static struct sockaddr_storage server_addr;
static char *burst;              /* `depth` messages back to back */
static int phase = PHASE_WARMUP; /* atomic */

/* ---- Threads and connections --------------------------------------------- */

typedef struct thread_ctx thread_ctx;

typedef struct conn {
  uv_tcp_t tcp;
  uv_connect_t creq;
  thread_ctx *t;
  int index;
  int open; /* tcp initialised and not closed */
  int connected;
  uint64_t *sent; /* send times of the messages in flight (a ring) */
  unsigned head, count;
  size_t partial;       /* bytes of the current message received */
  uint64_t cycle_start; /* connect mode */
  size_t to_read;
} conn;

typedef struct write_req {
  uv_write_t req;
  conn *c;
} write_req;

struct thread_ctx {
  uv_loop_t loop;
  uv_async_t stop;
  uv_thread_t tid;
  int index;
  conn *conns;
  int n;
  int next_connect; /* echo, idle: the next connection to start */
  int in_flight;
  int stopping;
  unsigned next_source;
  hist lat;
  uint64_t messages; /* or connections, in connect mode; measured only */
  uint64_t all;      /* the same, warm-up included */
  uint64_t bytes;
  uint64_t errors;
  int established; /* atomic */
  int failed;      /* atomic */
  char readbuf[READ_BUFFER];
};

static uint64_t now_ns(void) { return uv_hrtime(); }

static int measuring(void) {
  return __atomic_load_n(&phase, __ATOMIC_RELAXED) == PHASE_MEASURE;
}

static void on_close(uv_handle_t *h);
static void start_connect(conn *c);
static void connect_next(thread_ctx *t);

static void conn_close(conn *c) {
  if (!c->open || uv_is_closing((uv_handle_t *)&c->tcp)) return;
  uv_close((uv_handle_t *)&c->tcp, on_close);
}

/* The first error seen, for the report (a name from uv_err_name()). */
static int first_error; /* atomic */

static void conn_fail_with(conn *c, int err) {
  c->t->errors++;
  int none = 0;
  __atomic_compare_exchange_n(&first_error, &none, err, 0, __ATOMIC_RELAXED,
                              __ATOMIC_RELAXED);
  conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  conn *c = h->data;
  (void)suggested;
  *buf = uv_buf_init(c->t->readbuf, READ_BUFFER);
}

static void on_write(uv_write_t *req, int status) {
  write_req *w = (write_req *)req;
  conn *c = w->c;
  free(w);
  if (status < 0 && status != UV_ECANCELED) conn_fail_with(c, status);
}

/* Sends len bytes of the burst buffer from offset 0: try at once, queue the
 * rest. */
static int send_bytes(conn *c, size_t len) {
  uv_buf_t b = uv_buf_init(burst, (unsigned)len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == UV_EAGAIN) n = 0;
  if (n < 0) return n;
  if ((size_t)n == len) return 0;
  write_req *w = malloc(sizeof *w);
  if (w == NULL) return UV_ENOMEM;
  w->c = c;
  b = uv_buf_init(burst + n, (unsigned)(len - (size_t)n));
  int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (r < 0) free(w);
  return r;
}

/* Sends k messages and records their send time. */
static void send_messages(conn *c, int k) {
  if (k <= 0) return;
  uint64_t t = now_ns();
  for (int i = 0; i < k; i++) {
    c->sent[(c->head + c->count) % (unsigned)opt.depth] = t;
    c->count++;
  }
  int r = send_bytes(c, (size_t)k * opt.size);
  if (r < 0) conn_fail_with(c, r);
}

static void on_read_echo(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn *c = s->data;
  thread_ctx *t = c->t;
  (void)buf;
  if (nread == 0) return;
  if (nread < 0) {
    if (!t->stopping) conn_fail_with(c, (int)nread);
    return;
  }
  c->partial += (size_t)nread;
  int done = (int)(c->partial / opt.size);
  c->partial %= opt.size;
  if (done == 0) return;
  uint64_t t_now = now_ns();
  int measure = measuring();
  t->all += (uint64_t)done;
  for (int i = 0; i < done && c->count > 0; i++) {
    uint64_t sent = c->sent[c->head];
    c->head = (c->head + 1) % (unsigned)opt.depth;
    c->count--;
    if (measure) {
      hist_add(&t->lat, t_now - sent);
      t->messages++;
    }
  }
  if (measure) t->bytes += (uint64_t)done * opt.size;
  if (!t->stopping) send_messages(c, done);
}

static void on_read_connect(uv_stream_t *s, ssize_t nread,
                            const uv_buf_t *buf) {
  conn *c = s->data;
  thread_ctx *t = c->t;
  (void)buf;
  if (nread == 0) return;
  if (nread < 0) {
    conn_fail_with(c, (int)nread);
    return;
  }
  c->to_read -= (size_t)nread < c->to_read ? (size_t)nread : c->to_read;
  if (c->to_read > 0) return;
  t->all++;
  if (measuring()) {
    hist_add(&t->lat, now_ns() - c->cycle_start);
    t->messages++;
  }
  conn_close(c);
}

static void on_read_idle(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn *c = s->data;
  (void)buf;
  if (nread < 0 && !c->t->stopping) conn_fail_with(c, (int)nread);
}

static void on_connect(uv_connect_t *req, int status) {
  conn *c = req->data;
  thread_ctx *t = c->t;
  if (opt.mode != MODE_CONNECT) {
    t->in_flight--;
    if (status == 0)
      __atomic_fetch_add(&t->established, 1, __ATOMIC_RELAXED);
    else
      __atomic_fetch_add(&t->failed, 1, __ATOMIC_RELAXED);
    connect_next(t);
  }
  if (status < 0) {
    if (status != UV_ECANCELED) conn_fail_with(c, status);
    return;
  }
  c->connected = 1;
  uv_tcp_nodelay(&c->tcp, 1);
  if (opt.mode == MODE_ECHO) {
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read_echo);
    send_messages(c, opt.depth);
  } else if (opt.mode == MODE_CONNECT) {
    c->to_read = opt.size;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read_connect);
    int r = send_bytes(c, opt.size);
    if (r < 0) conn_fail_with(c, r);
  } else {
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read_idle);
  }
}

static void on_close(uv_handle_t *h) {
  conn *c = h->data;
  thread_ctx *t = c->t;
  c->open = 0;
  c->connected = 0;
  /* In connect mode a closed connection is the end of a cycle: start the next.
   */
  if (opt.mode == MODE_CONNECT && !t->stopping) start_connect(c);
}

static void start_connect(conn *c) {
  thread_ctx *t = c->t;
  c->head = c->count = 0;
  c->partial = 0;
  if (uv_tcp_init(&t->loop, &c->tcp) != 0) {
    t->errors++;
    return;
  }
  c->tcp.data = c;
  c->creq.data = c;
  c->open = 1;
  if (opt.sources > 1 && server_addr.ss_family == AF_INET) {
    struct sockaddr_in src;
    char ip[32];
    snprintf(ip, sizeof ip, "127.0.0.%u",
             1 + t->next_source++ % (unsigned)opt.sources);
    uv_ip4_addr(ip, 0, &src);
    uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0);
  }
  c->cycle_start = now_ns();
  int r = uv_tcp_connect(&c->creq, &c->tcp,
                         (const struct sockaddr *)&server_addr, on_connect);
  if (r < 0) {
    if (opt.mode != MODE_CONNECT) {
      t->in_flight--;
      __atomic_fetch_add(&t->failed, 1, __ATOMIC_RELAXED);
    }
    conn_fail_with(c, r);
  }
}

/* Echo and idle modes: keep CONNECTS_IN_FLIGHT connects going until every
 * connection has been started. */
static void connect_next(thread_ctx *t) {
  while (!t->stopping && t->next_connect < t->n &&
         t->in_flight < CONNECTS_IN_FLIGHT) {
    conn *c = &t->conns[t->next_connect++];
    t->in_flight++;
    start_connect(c);
  }
}

static void on_stop(uv_async_t *a) {
  thread_ctx *t = a->data;
  t->stopping = 1;
  for (int i = 0; i < t->n; i++) conn_close(&t->conns[i]);
  uv_close((uv_handle_t *)&t->stop, NULL);
}

static void thread_main(void *arg) {
  thread_ctx *t = arg;
  if (opt.mode == MODE_CONNECT) {
    for (int i = 0; i < t->n; i++) start_connect(&t->conns[i]);
  } else {
    connect_next(t);
  }
  uv_run(&t->loop, UV_RUN_DEFAULT);
}

/* ---- Main --------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr,
          "usage: echo_loadgen --port PORT [--host 127.0.0.1] [--mode "
          "echo|connect|idle]\n"
          "                    [--connections N] [--size BYTES] [--depth N]\n"
          "                    [--duration S] [--warmup S] [--threads N] "
          "[--sources N]\n");
  exit(2);
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc) usage();
    const char *v = argv[++i];
    if (strcmp(a, "--host") == 0)
      opt.host = v;
    else if (strcmp(a, "--port") == 0)
      opt.port = atoi(v);
    else if (strcmp(a, "--connections") == 0)
      opt.connections = atoi(v);
    else if (strcmp(a, "--size") == 0)
      opt.size = (size_t)atol(v);
    else if (strcmp(a, "--depth") == 0)
      opt.depth = atoi(v);
    else if (strcmp(a, "--duration") == 0)
      opt.duration = atof(v);
    else if (strcmp(a, "--warmup") == 0)
      opt.warmup = atof(v);
    else if (strcmp(a, "--threads") == 0)
      opt.threads = atoi(v);
    else if (strcmp(a, "--sources") == 0)
      opt.sources = atoi(v);
    else if (strcmp(a, "--mode") == 0) {
      if (strcmp(v, "echo") == 0)
        opt.mode = MODE_ECHO;
      else if (strcmp(v, "connect") == 0)
        opt.mode = MODE_CONNECT;
      else if (strcmp(v, "idle") == 0)
        opt.mode = MODE_IDLE;
      else
        usage();
    } else {
      usage();
    }
  }
  if (opt.port <= 0 || opt.connections <= 0 || opt.size == 0 ||
      opt.depth <= 0 || opt.threads <= 0 || opt.duration <= 0 ||
      opt.sources <= 0)
    usage();
  if (opt.threads > opt.connections) opt.threads = opt.connections;
}

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) {
  (void)sig;
  interrupted = 1;
}

/* Sleeps s seconds, waking early on SIGINT/SIGTERM. */
static void sleep_s(double s) {
  uint64_t end = now_ns() + (uint64_t)(s * 1e9);
  while (!interrupted && now_ns() < end) uv_sleep(10);
}

static int total(thread_ctx *ts, int field_established) {
  int sum = 0;
  for (int i = 0; i < opt.threads; i++)
    sum +=
        __atomic_load_n(field_established ? &ts[i].established : &ts[i].failed,
                        __ATOMIC_RELAXED);
  return sum;
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  if (uv_ip4_addr(opt.host, opt.port, (struct sockaddr_in *)&server_addr) !=
          0 &&
      uv_ip6_addr(opt.host, opt.port, (struct sockaddr_in6 *)&server_addr) !=
          0) {
    fprintf(stderr, "echo_loadgen: bad host %s\n", opt.host);
    return 2;
  }
  size_t burst_len = opt.size * (size_t)opt.depth;
  burst = malloc(burst_len);
  for (size_t i = 0; i < burst_len; i++)
    burst[i] = (char)('a' + (i % opt.size) % 26);

  thread_ctx *ts = calloc((size_t)opt.threads, sizeof *ts);
  conn *conns = calloc((size_t)opt.connections, sizeof *conns);
  uint64_t *sent =
      calloc((size_t)opt.connections * (size_t)opt.depth, sizeof *sent);
  if (burst == NULL || ts == NULL || conns == NULL || sent == NULL) {
    fprintf(stderr, "echo_loadgen: out of memory\n");
    return 1;
  }
  /* Connection i belongs to thread i % T; each thread's are contiguous. */
  int at = 0;
  for (int k = 0; k < opt.threads; k++) {
    thread_ctx *t = &ts[k];
    t->index = k;
    t->n = opt.connections / opt.threads + (k < opt.connections % opt.threads);
    t->conns = conns + at;
    for (int i = 0; i < t->n; i++) {
      conn *c = &t->conns[i];
      c->t = t;
      c->index = at + i;
      c->sent = sent + (size_t)(at + i) * (size_t)opt.depth;
    }
    at += t->n;
    uv_loop_init(&t->loop);
    uv_async_init(&t->loop, &t->stop, on_stop);
    t->stop.data = t;
  }
  for (int k = 0; k < opt.threads; k++)
    uv_thread_create(&ts[k].tid, thread_main, &ts[k]);

  /* Echo and idle: wait until every connection is up (or has failed). */
  if (opt.mode != MODE_CONNECT) {
    uint64_t give_up = now_ns() + 60ull * 1000000000ull;
    while (!interrupted && total(ts, 1) + total(ts, 0) < opt.connections &&
           now_ns() < give_up)
      uv_sleep(5);
  }
  int established = total(ts, 1), failed = total(ts, 0);

  double measured = 0;
  if (opt.mode == MODE_IDLE) {
    printf("{\"mode\":\"idle\",\"connections\":%d,\"established\":%d,"
           "\"failed\":%d}\n",
           opt.connections, established, failed);
    fflush(stdout);
    sleep_s(opt.duration);
  } else {
    sleep_s(opt.warmup);
    uint64_t t0 = now_ns();
    __atomic_store_n(&phase, PHASE_MEASURE, __ATOMIC_RELAXED);
    sleep_s(opt.duration);
    __atomic_store_n(&phase, PHASE_DONE, __ATOMIC_RELAXED);
    measured = (double)(now_ns() - t0) / 1e9;
  }
  for (int k = 0; k < opt.threads; k++) uv_async_send(&ts[k].stop);
  hist lat;
  memset(&lat, 0, sizeof lat);
  uint64_t messages = 0, bytes = 0, errors = 0, all = 0;
  for (int k = 0; k < opt.threads; k++) {
    uv_thread_join(&ts[k].tid);
    uv_loop_close(&ts[k].loop);
    hist_merge(&lat, &ts[k].lat);
    messages += ts[k].messages;
    all += ts[k].all;
    bytes += ts[k].bytes;
    errors += ts[k].errors;
  }
  if (opt.mode == MODE_IDLE) return 0;

  double rate = measured > 0 ? (double)messages / measured : 0;
  printf(
      "{\"mode\":\"%s\",\"connections\":%d,\"size\":%zu,\"depth\":%d,"
      "\"threads\":%d,"
      "\"duration_s\":%.3f,\"%s\":%" PRIu64 ",\"%s\":%.1f,\"mib_per_s\":%.2f,"
      "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
      "\"max\":%.1f,\"mean\":%.1f},\"established\":%d,\"errors\":%" PRIu64
      ",\"first_error\":\"%s\",\"all\":%" PRIu64 "}\n",
      opt.mode == MODE_ECHO ? "echo" : "connect", opt.connections, opt.size,
      opt.depth, opt.threads, measured,
      opt.mode == MODE_ECHO ? "messages" : "completed", messages,
      opt.mode == MODE_ECHO ? "messages_per_s" : "connections_per_s", rate,
      measured > 0 ? (double)bytes / measured / 1048576.0 : 0,
      hist_percentile(&lat, 50) / 1e3, hist_percentile(&lat, 90) / 1e3,
      hist_percentile(&lat, 99) / 1e3, hist_percentile(&lat, 99.9) / 1e3,
      (double)lat.max / 1e3, lat.n ? (double)lat.sum / (double)lat.n / 1e3 : 0,
      opt.mode == MODE_ECHO ? established : opt.connections, errors,
      first_error ? uv_err_name(first_error) : "", all);
  free(burst);
  free(ts);
  free(conns);
  free(sent);
  return 0;
}
