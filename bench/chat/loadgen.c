/* chat_loadgen: a WebSocket load generator for chat servers (libuv, C).
 *
 *   chat_loadgen --port 7080 --proto chat --clients 1000 --senders 10
 *                --rate 500 --duration 5 --warmup 1 --server-pid PID
 *
 * Opens --clients WebSocket connections to ws://HOST:PORT/ws, all in one
 * room, and once every one is ready has --senders of them send --rate
 * messages per second in total (open loop: a message is due at its time
 * whether or not earlier ones were delivered). Each message carries a
 * marker "#L<sender>.<seq>.<send time ns>#" in its text; every frame a
 * client receives is searched for markers, which gives the end-to-end
 * latency and, per receiver and sender, the gaps in the seqs.
 *
 * --proto chat speaks apps/chat_server's protocol (hello, join, say);
 * --proto raw sends the text as it is and expects every server to send
 * each text frame it receives to every client (the peers in bench/chat).
 *
 * Prints one JSON line: delivered messages per second and per CPU-second
 * of the server (from /proc/PID/stat over the measured window), gaps,
 * latency percentiles, the server's resident memory, and the load
 * generator's own CPU use (a run where it is above 70 % is not a valid
 * measure of the server, and says so with "loadgen_saturated": true).
 * With --rate 0 nobody sends (chat clients only say hello): the idle
 * scenario, for the server's memory per connection.
 *
 * Chat scenarios: --rooms N spreads the clients over N rooms (sender s in
 * room s mod N; each say carries an id, and the acks the senders get per
 * second are reported: with one client per room and --store, the server's
 * acked, committed messages per second). --slow N: the last N receivers
 * stop reading once they joined (slow consumers; they are left out of the
 * latency). --drop F: F of the receivers close their connection --drop-at
 * seconds into the measured window and come back --drop-ms later as a new
 * session that joins with since its last room seq; the messages in the
 * joined history count as delivered (not in the latency), and "gaps" says
 * whether any was missed.
 *
 * libuv only, one thread: it measures the server, not weft.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <uv.h>

typedef struct opts {
  const char *host;
  int port;
  int raw;
  int clients;
  int senders;
  double rate;
  double duration;
  double warmup;
  int size;
  int server_pid;
  const char *room;
  int rooms;      /* clients spread over this many rooms (chat) */
  int slow;       /* receivers that stop reading once ready */
  double drop;    /* this fraction of receivers drop and resume */
  double drop_at; /* seconds into the measured window */
  double drop_ms; /* how long they stay away */
} opts;

typedef struct client {
  uv_tcp_t tcp;
  uv_connect_t connect;
  int index;
  int upgraded;
  int ready;
  char *buf;
  size_t len, cap;
  int64_t *last_seq; /* per sender, -1 before the first */
  uint64_t sent;
  int64_t room_seq;  /* the last room seq seen (chat) */
  int slow;          /* stopped reading */
  int dropped;       /* closed for a drop; reconnects */
  int resumes;       /* times it came back */
} client;

static opts o = {.host = "127.0.0.1", .clients = 100, .senders = 1, .rate = 100,
                 .duration = 5, .warmup = 1, .size = 64, .room = "bench", .rooms = 1,
                 .drop_at = 1, .drop_ms = 200};
static uint64_t acks, resumed, n_dropping;
static struct sockaddr_in server_addr;
static uv_loop_t *loop;
static client *clients;
static int n_ready, n_failed, n_closed;
static int measuring, finished;
static uint64_t t_start_ns, t_end_ns, sends_due;
static uint64_t delivered, delivered_total, gaps, sent_total, sent_measured;
static uint64_t cpu_before, cpu_after;
static long rss_end_kib = -1; /* the server's, at the window's end */
static struct rusage ru_before, ru_after;
static uv_timer_t tick, phase;
static uint64_t send_origin_ns;

/* Latency histogram: log-linear, 16 sub-buckets per power of two, in ns. */
#define HBUCKETS (64 * 16)
static uint64_t hist[HBUCKETS];
static uint64_t hist_n;

static void hist_add(uint64_t ns) {
  if (ns == 0) ns = 1;
  int e = 63 - __builtin_clzll(ns);
  int sub = e >= 4 ? (int)((ns >> (e - 4)) & 15) : (int)(ns & 15);
  int b = e * 16 + sub;
  if (b >= HBUCKETS) b = HBUCKETS - 1;
  hist[b]++;
  hist_n++;
}

static double hist_pct(double p) {
  if (hist_n == 0) return 0;
  uint64_t want = (uint64_t)ceil(p * (double)hist_n), seen = 0;
  for (int b = 0; b < HBUCKETS; b++) {
    seen += hist[b];
    if (seen >= want && hist[b] > 0) {
      int e = b / 16, sub = b % 16;
      double lo = e >= 4 ? (double)((uint64_t)(16 + sub) << (e - 4)) : (double)sub;
      return lo / 1000.0; /* us */
    }
  }
  return 0;
}

static uint64_t proc_cpu_ticks(int pid) {
  char path[64], line[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  size_t n = fread(line, 1, sizeof line - 1, f);
  fclose(f);
  line[n] = '\0';
  char *p = strrchr(line, ')');
  if (p == NULL) return 0;
  unsigned long long utime = 0, stime = 0;
  /* Fields after the name: state(3) ... utime(14) stime(15). */
  sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
         &stime);
  return utime + stime;
}

static long proc_rss_kib(int pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  long kib = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kib = strtol(line + 6, NULL, 10);
  fclose(f);
  return kib;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  client *c = h->data;
  (void)hint;
  if (c->cap - c->len < 65536) {
    c->cap = c->cap * 2 > c->len + 65536 ? c->cap * 2 : c->len + 65536;
    c->buf = realloc(c->buf, c->cap);
  }
  *buf = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

/* Sends a text frame (masked with a zero key: the payload goes as it is). */
static void send_text(client *c, const char *text, size_t n) {
  uv_write_t *w = malloc(sizeof *w + 14 + n);
  unsigned char *f = (unsigned char *)(w + 1);
  size_t h = 0;
  f[h++] = 0x81;
  if (n < 126) {
    f[h++] = 0x80 | (unsigned char)n;
  } else if (n < 65536) {
    f[h++] = 0x80 | 126;
    f[h++] = (unsigned char)(n >> 8);
    f[h++] = (unsigned char)n;
  } else {
    f[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--) f[h++] = (unsigned char)((uint64_t)n >> (8 * i));
  }
  memset(f + h, 0, 4);
  h += 4;
  memcpy(f + h, text, n);
  uv_buf_t b = uv_buf_init((char *)f, (unsigned)(h + n));
  if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) free(w);
}

static void send_json(client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_json(client *c, const char *fmt, ...) {
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  send_text(c, text, (size_t)n);
}

static void client_ready(client *c) {
  if (c->ready) return;
  c->ready = 1;
  n_ready++;
  if (c->slow) uv_read_stop((uv_stream_t *)&c->tcp);
}

/* The room of client i (chat: clients spread over --rooms rooms). */
static const char *room_of(int i, char *buf, size_t len) {
  if (o.rooms <= 1) return o.room;
  snprintf(buf, len, "%s%d", o.room, i % o.rooms);
  return buf;
}

/* Searches one received text for markers. */
static void on_text(client *c, const char *p, size_t n) {
  if (!c->ready) {
    /* chat: the answer to join; raw: the first frame is never needed. */
    if (memmem(p, n, o.rate > 0 ? "\"joined\"" : "\"welcome\"", o.rate > 0 ? 8 : 9) != NULL)
      client_ready(c);
  }
  if (!o.raw) {
    if (n > 12 && memcmp(p, "{\"type\":\"ack\"", 13) == 0) {
      if (measuring) acks++;
      return;
    }
    /* The room seq of a message, or the last one of a joined's history. */
    const char *q = p, *e = p + n, *last = NULL;
    while ((q = memmem(q, (size_t)(e - q), "\"seq\":", 6)) != NULL) last = q += 6;
    if (last != NULL) {
      long long v = strtoll(last, NULL, 10);
      if (v > c->room_seq) c->room_seq = v;
    }
  }
  uint64_t now = uv_hrtime();
  /* Messages caught up through a joined's history are counted, but their
   * latency is the drop's, not the server's. */
  int history = n > 15 && memcmp(p, "{\"type\":\"joined\"", 16) == 0;
  const char *end = p + n;
  while ((p = memmem(p, (size_t)(end - p), "#L", 2)) != NULL) {
    p += 2;
    char *q;
    long sender = strtol(p, &q, 10);
    if (*q != '.') continue;
    long long seq = strtoll(q + 1, &q, 10);
    if (*q != '.') continue;
    unsigned long long t = strtoull(q + 1, &q, 10);
    if (*q != '#' || sender < 0 || sender >= o.senders) continue;
    int64_t last = c->last_seq[sender];
    if (last >= 0 && seq > last + 1) gaps += (uint64_t)(seq - last - 1);
    if (seq > last) c->last_seq[sender] = seq;
    delivered_total++;
    if (measuring && t >= t_start_ns) {
      delivered++;
      if (!history) hist_add(now > t ? now - t : 0);
    }
    p = q;
  }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  client *c = s->data;
  (void)b;
  if (c->dropped) return;
  if (nread < 0) {
    if (!finished) n_closed++;
    uv_read_stop(s);
    return;
  }
  c->len += (size_t)nread;
  size_t off = 0;
  if (!c->upgraded) {
    char *e = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (e == NULL) return;
    if (memcmp(c->buf, "HTTP/1.1 101", 12) != 0) {
      n_failed++;
      uv_read_stop(s);
      return;
    }
    c->upgraded = 1;
    off = (size_t)(e + 4 - c->buf);
    if (o.raw) {
      client_ready(c);
    } else {
      char rb[96];
      const char *room = room_of(c->index, rb, sizeof rb);
      if (c->resumes == 0) {
        send_json(c, "{\"type\":\"hello\",\"nick\":\"u%d\"}", c->index);
        /* Idle clients (rate 0) say hello only: a room of thousands that
         * join at once is a storm of presence, not an idle server. */
        if (o.rate > 0) send_json(c, "{\"type\":\"join\",\"room\":\"%s\"}", room);
      } else {
        /* Back after a drop: a new nick (the old one may not be free
         * yet), and the room since the last seq seen. */
        send_json(c, "{\"type\":\"hello\",\"nick\":\"u%d_%d\"}", c->index, c->resumes);
        send_json(c, "{\"type\":\"join\",\"room\":\"%s\",\"since\":%lld}", room,
                  (long long)c->room_seq);
        resumed++;
      }
    }
  }
  for (;;) {
    if (c->len - off < 2) break;
    unsigned char *f = (unsigned char *)c->buf + off;
    uint64_t n = f[1] & 0x7f;
    size_t h = 2;
    if (n == 126) {
      if (c->len - off < 4) break;
      n = ((uint64_t)f[2] << 8) | f[3];
      h = 4;
    } else if (n == 127) {
      if (c->len - off < 10) break;
      n = 0;
      for (int i = 0; i < 8; i++) n = (n << 8) | f[2 + i];
      h = 10;
    }
    if (c->len - off < h + n) break;
    int op = f[0] & 0x0f;
    if (op == 1 || op == 2) on_text(c, (char *)f + h, (size_t)n);
    /* Pings: answered with a pong of the same payload. */
    if (op == 9) {
      uv_write_t *w = malloc(sizeof *w + 6 + n);
      unsigned char *g = (unsigned char *)(w + 1);
      g[0] = 0x8a;
      g[1] = 0x80 | (unsigned char)n;
      memset(g + 2, 0, 4);
      memcpy(g + 6, f + h, n);
      uv_buf_t wb = uv_buf_init((char *)g, (unsigned)(6 + n));
      if (uv_write(w, s, &wb, 1, on_written) != 0) free(w);
    }
    off += h + n;
  }
  memmove(c->buf, c->buf + off, c->len - off);
  c->len -= off;
}

static void on_connect(uv_connect_t *req, int status) {
  client *c = req->data;
  if (status != 0) {
    n_failed++;
    return;
  }
  c->tcp.data = c;
  char head[256];
  int n = snprintf(head, sizeof head,
                   "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   o.host, o.port);
  uv_write_t *w = malloc(sizeof *w + (size_t)n);
  memcpy(w + 1, head, (size_t)n);
  uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)n);
  uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* Drop and resume: a dropped client closes its connection and, drop_ms
 * later, connects again as a new session that joins with since. */
static uv_timer_t drop_timer;

static void client_connect(client *c) {
  uv_tcp_init(loop, &c->tcp);
  uv_tcp_nodelay(&c->tcp, 1);
  c->tcp.data = c;
  c->connect.data = c;
  c->upgraded = 0;
  c->len = 0;
  uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&server_addr, on_connect);
}

static void on_dropped_closed(uv_handle_t *h) {
  client *c = h->data;
  (void)c;
}

static void on_resume(uv_timer_t *t) {
  (void)t;
  if (finished) return;
  for (int i = o.senders; i < o.clients; i++) {
    client *c = &clients[i];
    if (!c->dropped) continue;
    c->dropped = 0;
    c->resumes++;
    client_connect(c);
  }
}

static void on_drop(uv_timer_t *t) {
  if (finished) return;
  /* Receivers only (the senders keep the load steady), every k-th. */
  int k = o.drop > 0 ? (int)(1.0 / o.drop + 0.5) : 0;
  for (int i = o.senders; k > 0 && i < o.clients; i++) {
    if ((i - o.senders) % k != 0) continue;
    client *c = &clients[i];
    c->dropped = 1;
    n_dropping++;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, on_dropped_closed);
  }
  uv_timer_start(t, on_resume, (uint64_t)o.drop_ms, 0);
}

/* Sends what is due since the origin, round-robin over the senders. */
static void on_tick(uv_timer_t *t) {
  (void)t;
  if (o.rate <= 0 || finished) return;
  uint64_t now = uv_hrtime();
  uint64_t due = (uint64_t)((double)(now - send_origin_ns) / 1e9 * o.rate);
  char text[4096];
  while (sends_due < due) {
    int s = (int)(sends_due % (uint64_t)o.senders);
    client *c = &clients[s];
    uint64_t seq = c->sent++;
    int n = snprintf(text, sizeof text, "#L%d.%" PRIu64 ".%" PRIu64 "#", s, seq, uv_hrtime());
    char payload[4096];
    int pad = o.size > n ? o.size - n : 0;
    if (pad > 2000) pad = 2000;
    memset(text + n, 'x', (size_t)pad);
    text[n + pad] = '\0';
    if (o.raw)
      send_text(c, text, (size_t)(n + pad));
    else {
      char rb[96];
      int m = snprintf(payload, sizeof payload,
                       "{\"type\":\"say\",\"room\":\"%s\",\"text\":\"%s\",\"id\":\"%d\"}",
                       room_of(s, rb, sizeof rb), text, s);
      send_text(c, payload, (size_t)m);
    }
    sends_due++;
    sent_total++;
    if (measuring) sent_measured++;
  }
}

static void on_phase(uv_timer_t *t);

static void stop_all(void) {
  finished = 1;
  uv_timer_stop(&tick);
  for (int i = 0; i < o.clients; i++)
    if (!uv_is_closing((uv_handle_t *)&clients[i].tcp))
      uv_close((uv_handle_t *)&clients[i].tcp, NULL);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_close((uv_handle_t *)&drop_timer, NULL);
  uv_close((uv_handle_t *)&phase, NULL);
}

/* Phases: wait until every client is ready, warm up, measure, stop. */
static int phase_no;
static uint64_t ready_deadline;
static void on_phase(uv_timer_t *t) {
  if (phase_no == 0) {
    if (n_ready + n_failed < o.clients && uv_hrtime() < ready_deadline) return;
    phase_no = 1;
    send_origin_ns = uv_hrtime();
    uv_timer_start(&tick, on_tick, 1, 1);
    uv_timer_start(t, on_phase, (uint64_t)(o.warmup * 1000), 0);
    return;
  }
  if (phase_no == 1) {
    phase_no = 2;
    measuring = 1;
    if (o.drop > 0) uv_timer_start(&drop_timer, on_drop, (uint64_t)(o.drop_at * 1000), 0);
    t_start_ns = uv_hrtime();
    cpu_before = o.server_pid ? proc_cpu_ticks(o.server_pid) : 0;
    getrusage(RUSAGE_SELF, &ru_before);
    uv_timer_start(t, on_phase, (uint64_t)(o.duration * 1000), 0);
    return;
  }
  measuring = 0;
  t_end_ns = uv_hrtime();
  cpu_after = o.server_pid ? proc_cpu_ticks(o.server_pid) : 0;
  /* Read while every client is still connected: once they close, the
   * server frees what they held. */
  rss_end_kib = o.server_pid ? proc_rss_kib(o.server_pid) : -1;
  getrusage(RUSAGE_SELF, &ru_after);
  stop_all();
}

static double tv(const struct timeval *t) { return (double)t->tv_sec + (double)t->tv_usec / 1e6; }

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL) goto usage;
    if (strcmp(a, "--host") == 0) o.host = v;
    else if (strcmp(a, "--port") == 0) o.port = atoi(v);
    else if (strcmp(a, "--proto") == 0) o.raw = strcmp(v, "raw") == 0;
    else if (strcmp(a, "--clients") == 0) o.clients = atoi(v);
    else if (strcmp(a, "--senders") == 0) o.senders = atoi(v);
    else if (strcmp(a, "--rate") == 0) o.rate = atof(v);
    else if (strcmp(a, "--duration") == 0) o.duration = atof(v);
    else if (strcmp(a, "--warmup") == 0) o.warmup = atof(v);
    else if (strcmp(a, "--size") == 0) o.size = atoi(v);
    else if (strcmp(a, "--server-pid") == 0) o.server_pid = atoi(v);
    else if (strcmp(a, "--room") == 0) o.room = v;
    else if (strcmp(a, "--rooms") == 0) o.rooms = atoi(v);
    else if (strcmp(a, "--slow") == 0) o.slow = atoi(v);
    else if (strcmp(a, "--drop") == 0) o.drop = atof(v);
    else if (strcmp(a, "--drop-at") == 0) o.drop_at = atof(v);
    else if (strcmp(a, "--drop-ms") == 0) o.drop_ms = atof(v);
    else goto usage;
    i++;
  }
  if (o.port <= 0 || o.clients < 1 || o.senders < 1 || o.senders > o.clients || o.rooms < 1 ||
      o.slow < 0 || o.slow > o.clients - o.senders || o.drop < 0 || o.drop > 1)
    goto usage;
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  loop = uv_default_loop();
  clients = calloc((size_t)o.clients, sizeof *clients);
  uv_ip4_addr(o.host, o.port, &server_addr);
  for (int i = 0; i < o.clients; i++) {
    client *c = &clients[i];
    c->index = i;
    c->last_seq = malloc((size_t)o.senders * sizeof *c->last_seq);
    for (int s = 0; s < o.senders; s++) c->last_seq[s] = -1;
    /* The slow consumers are the last receivers. */
    c->slow = i >= o.clients - o.slow;
    client_connect(c);
  }
  uv_timer_init(loop, &tick);
  uv_timer_init(loop, &drop_timer);
  uv_timer_init(loop, &phase);
  ready_deadline = uv_hrtime() + 30ull * 1000000000ull;
  uv_timer_start(&phase, on_phase, 10, 10);
  uv_run(loop, UV_RUN_DEFAULT);

  double secs = (double)(t_end_ns - t_start_ns) / 1e9;
  double hz = (double)sysconf(_SC_CLK_TCK);
  double server_cpu = (double)(cpu_after - cpu_before) / hz;
  double lg_cpu = tv(&ru_after.ru_utime) - tv(&ru_before.ru_utime) +
                  tv(&ru_after.ru_stime) - tv(&ru_before.ru_stime);
  double lg_pct = secs > 0 ? 100.0 * lg_cpu / secs : 0;
  long rss = rss_end_kib;
  printf("{\"bench\":\"chat_fanout\",\"proto\":\"%s\",\"clients\":%d,\"ready\":%d,"
         "\"failed\":%d,\"closed\":%d,\"senders\":%d,\"rate\":%.0f,\"size\":%d,"
         "\"seconds\":%.3f,\"sent\":%" PRIu64 ",\"delivered\":%" PRIu64 ","
         "\"delivered_per_s\":%.1f,\"server_cpu_s\":%.3f,\"delivered_per_cpu_s\":%.1f,"
         "\"expected_per_s\":%.1f,\"gaps\":%" PRIu64 ",\"p50_us\":%.1f,\"p99_us\":%.1f,"
         "\"p999_us\":%.1f,\"server_rss_kib\":%ld,\"rss_per_conn_bytes\":%.0f,"
         "\"loadgen_cpu_pct\":%.1f,\"loadgen_saturated\":%s,\"rooms\":%d,"
         "\"acks\":%" PRIu64 ",\"acks_per_s\":%.1f,\"slow\":%d,\"dropped\":%" PRIu64 ","
         "\"resumed\":%" PRIu64 "}\n",
         o.raw ? "raw" : "chat", o.clients, n_ready, n_failed, n_closed, o.senders, o.rate,
         o.size, secs, sent_measured, delivered, secs > 0 ? (double)delivered / secs : 0,
         server_cpu, server_cpu > 0 ? (double)delivered / server_cpu : 0,
         o.rate * o.clients / o.rooms, gaps, hist_pct(0.50), hist_pct(0.99), hist_pct(0.999), rss,
         rss > 0 ? (double)rss * 1024.0 / o.clients : 0, lg_pct,
         lg_pct > 70 ? "true" : "false", o.rooms, acks, secs > 0 ? (double)acks / secs : 0,
         o.slow, n_dropping, resumed);
  return n_ready >= o.clients ? 0 : 1;
usage:
  fprintf(stderr,
          "usage: chat_loadgen --port N [--host H] [--proto chat|raw] [--clients N] "
          "[--senders N] [--rate MSGS_PER_S] [--size BYTES] [--duration S] "
          "[--warmup S] [--server-pid PID] [--room NAME] [--rooms N] [--slow N] "
          "[--drop FRACTION] [--drop-at S] [--drop-ms MS]\n");
  return 2;
}
