/* report.c: request lines, the summary and the progress bar. */
#include "report.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static const char *const error_names[HC_ERR_COUNT] = {
    [HC_OK] = "ok",
    [HC_ERR_MALFORMED_URL] = "malformed_url",
    [HC_ERR_CONNECTION_REFUSED] = "connection_refused",
    [HC_ERR_DNS] = "dns",
    [HC_ERR_TIMEOUT] = "timeout",
    [HC_ERR_TOO_MANY_REDIRECTS] = "too_many_redirects",
    [HC_ERR_TLS] = "tls",
    [HC_ERR_CONNECTION_RESET] = "connection_reset",
    [HC_ERR_SEND] = "send_error",
    [HC_ERR_EMPTY_REPLY] = "empty_reply",
    [HC_ERR_PROTOCOL] = "protocol",
    [HC_ERR_TRUNCATED] = "truncated",
    [HC_ERR_CANCELLED] = "cancelled",
    [HC_ERR_DEADLINE] = "deadline",
    [HC_ERR_OTHER] = "other",
};

const char *hc_error_name(hc_error e) {
  return e >= 0 && e < HC_ERR_COUNT ? error_names[e] : "other";
}

int hc_result_ok(const hc_result *r) {
  return r->error == HC_OK && r->status > 0 && r->status < 400;
}

/* ---- A growable line buffer ---------------------------------------------- */

/* Text being built: on the stack while it fits, on the heap past that. */
typedef struct line_buf {
  char *p;
  size_t len, cap;
  int heap;
  int failed;
} line_buf;

/* Makes room for more bytes and a NUL; sets failed when out of memory. */
static void buf_reserve(line_buf *b, size_t more) {
  if (b->failed || b->len + more + 1 <= b->cap) return;
  size_t cap = b->cap * 2;
  while (cap < b->len + more + 1) cap *= 2;
  char *p = b->heap ? realloc(b->p, cap) : malloc(cap);
  if (p == NULL) {
    b->failed = 1;
    return;
  }
  if (!b->heap) memcpy(p, b->p, b->len);
  b->p = p;
  b->cap = cap;
  b->heap = 1;
}

static void buf_printf(line_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void buf_printf(line_buf *b, const char *fmt, ...) {
  for (int pass = 0; pass < 2 && !b->failed; pass++) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->failed = 1;
      return;
    }
    if (b->len + (size_t)n < b->cap) {
      b->len += (size_t)n;
      return;
    }
    buf_reserve(b, (size_t)n);
  }
}

/* Appends s as a JSON string, quotes included; bytes that are not UTF-8
 * (a URL read from a file may hold any) become U+FFFD. */
static void buf_json_string(line_buf *b, const char *s) {
  size_t len = strlen(s);
  buf_reserve(b, len * 6 + 3);
  if (b->failed) return;
  b->len += app_json_escape(s, len, b->p + b->len, b->cap - b->len);
}

/* Appends microseconds as milliseconds with three decimals, or null. */
static void buf_ms(line_buf *b, int64_t us) {
  if (us < 0)
    buf_printf(b, "null");
  else
    buf_printf(b, "%lld.%03lld", (long long)(us / 1000),
               (long long)(us % 1000));
}

/* ---- Per request --------------------------------------------------------- */

void hc_report_request(hc_report *rep, hc_tally *t, const hc_result *r) {
  int ok = hc_result_ok(r);
  t->requests++;
  t->attempts += (uint64_t)r->attempts;
  t->bytes += r->bytes;
  if (ok)
    t->ok++;
  else
    t->failed++;
  if (r->error == HC_OK) {
    t->status[r->status >= 0 && r->status <= HC_STATUS_MAX ? r->status
                                                           : HC_STATUS_MAX]++;
    if (r->total_us >= 0) hc_hist_record(&t->latency, (uint64_t)r->total_us);
  } else {
    t->errors[r->error]++;
  }
  if (rep->counting) {
    atomic_fetch_add_explicit(&rep->done, 1, memory_order_relaxed);
    if (!ok) atomic_fetch_add_explicit(&rep->failed, 1, memory_order_relaxed);
  }
  if (rep->lines == NULL) return;

  char stack[1024];
  line_buf b = {.p = stack, .cap = sizeof stack};
  stack[0] = '\0';
  buf_printf(&b, "{\"url\":");
  buf_json_string(&b, r->url);
  buf_printf(&b, ",\"status\":%ld,\"bytes\":%llu,\"ttfb_ms\":", r->status,
             (unsigned long long)r->bytes);
  buf_ms(&b, r->ttfb_us);
  buf_printf(&b, ",\"total_ms\":");
  buf_ms(&b, r->total_us);
  buf_printf(&b, ",\"elapsed_ms\":");
  buf_ms(&b, r->elapsed_us);
  buf_printf(&b, ",\"attempts\":%d,\"redirects\":%ld,\"http_version\":",
             r->attempts, r->redirects);
  if (r->http_version != NULL)
    buf_printf(&b, "\"%s\"", r->http_version);
  else
    buf_printf(&b, "null");
  buf_printf(&b, ",\"ok\":%s,\"error\":", ok ? "true" : "false");
  if (r->error == HC_OK) {
    buf_printf(&b, "null");
  } else {
    buf_json_string(&b, hc_error_name(r->error));
    if (r->detail != NULL && r->detail[0] != '\0') {
      buf_printf(&b, ",\"detail\":");
      buf_json_string(&b, r->detail);
    }
  }
  buf_printf(&b, "}\n");
  if (!b.failed) fwrite(b.p, 1, b.len, rep->lines);
  if (b.heap) free(b.p);
}

void hc_tally_merge(hc_tally *into, const hc_tally *from) {
  hc_hist_merge(&into->latency, &from->latency);
  for (size_t i = 0; i <= HC_STATUS_MAX; i++)
    into->status[i] += from->status[i];
  for (size_t i = 0; i < HC_ERR_COUNT; i++) into->errors[i] += from->errors[i];
  into->requests += from->requests;
  into->ok += from->ok;
  into->failed += from->failed;
  into->attempts += from->attempts;
  into->bytes += from->bytes;
}

/* ---- The summary --------------------------------------------------------- */

#define HIST_BARS 10

/* Microseconds as milliseconds. */
static double ms(uint64_t us) { return (double)us / 1000.0; }

/* n per second over s seconds; 0 for no time. */
static double per_second(uint64_t n, double s) {
  return s > 0 ? (double)n / s : 0.0;
}

void hc_report_summary_json(FILE *out, const hc_tally *t,
                            const hc_run_facts *f) {
  const hc_hist *h = &t->latency;
  fprintf(out,
          "{\"summary\":{\"mode\":\"%s\",\"requests\":%llu,\"ok\":%llu,"
          "\"failed\":%llu,\"not_sent\":%llu,\"planned\":%llu,"
          "\"attempts\":%llu,\"bytes\":%llu,\"elapsed_s\":%.6f,"
          "\"requests_per_s\":%.3f,\"bytes_per_s\":%.1f,\"concurrency\":%d,"
          "\"workers\":%d,\"executors\":%d,\"stopped\":",
          f->mode, (unsigned long long)t->requests, (unsigned long long)t->ok,
          (unsigned long long)t->failed, (unsigned long long)f->not_sent,
          (unsigned long long)f->planned, (unsigned long long)t->attempts,
          (unsigned long long)t->bytes, f->elapsed_s,
          per_second(t->requests, f->elapsed_s),
          per_second(t->bytes, f->elapsed_s), f->concurrency, f->workers,
          f->executors);
  if (f->stopped != NULL)
    fprintf(out, "\"%s\"", f->stopped);
  else
    fputs("null", out);
  fputs(",\"status\":{", out);
  const char *sep = "";
  for (size_t i = 0; i <= HC_STATUS_MAX; i++) {
    if (t->status[i] == 0) continue;
    fprintf(out, "%s\"%zu\":%llu", sep, i, (unsigned long long)t->status[i]);
    sep = ",";
  }
  fputs("},\"errors\":{", out);
  sep = "";
  for (size_t i = 1; i < HC_ERR_COUNT; i++) {
    if (t->errors[i] == 0) continue;
    fprintf(out, "%s\"%s\":%llu", sep, hc_error_name((hc_error)i),
            (unsigned long long)t->errors[i]);
    sep = ",";
  }
  fprintf(out,
          "},\"latency_ms\":{\"count\":%llu,\"min\":%.3f,\"mean\":%.3f,"
          "\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
          "\"histogram\":[",
          (unsigned long long)h->count, ms(h->min),
          h->count ? ms(h->sum / h->count) : 0.0, ms(hc_hist_quantile(h, 0.5)),
          ms(hc_hist_quantile(h, 0.9)), ms(hc_hist_quantile(h, 0.99)),
          ms(h->max));
  hc_hist_bar bars[HIST_BARS];
  size_t n = hc_hist_bars(h, bars, HIST_BARS);
  for (size_t i = 0; i < n; i++)
    fprintf(out, "%s{\"le_ms\":%.3f,\"count\":%llu}", i ? "," : "",
            ms(bars[i].upper), (unsigned long long)bars[i].count);
  fputs("]}}\n", out);
  fflush(out);
}

void hc_report_summary_text(FILE *out, const hc_tally *t,
                            const hc_run_facts *f) {
  const hc_hist *h = &t->latency;
  fprintf(out, "\nSummary (%s mode, %d concurrent on %d executor%s", f->mode,
          f->concurrency, f->executors, f->executors == 1 ? "" : "s");
  if (f->rate > 0) fprintf(out, ", %.6g requests/s at most", f->rate);
  fprintf(out, "):\n");
  if (f->stopped != NULL) fprintf(out, "  Stopped early:  %s\n", f->stopped);
  fprintf(out, "  Requests:       %llu (ok %llu, failed %llu",
          (unsigned long long)t->requests, (unsigned long long)t->ok,
          (unsigned long long)t->failed);
  if (f->not_sent)
    fprintf(out, ", not sent %llu", (unsigned long long)f->not_sent);
  fprintf(out, ")\n");
  fprintf(out, "  Attempts:       %llu\n", (unsigned long long)t->attempts);
  fprintf(out, "  Total time:     %.4f s\n", f->elapsed_s);
  fprintf(out, "  Requests/s:     %.1f\n",
          per_second(t->requests, f->elapsed_s));
  fprintf(out, "  Body bytes:     %llu (%.1f KiB/s)\n",
          (unsigned long long)t->bytes,
          per_second(t->bytes, f->elapsed_s) / 1024.0);
  if (h->count > 0) {
    fprintf(out,
            "\nLatency of the %llu responses (ms):\n"
            "  min %.3f  mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n",
            (unsigned long long)h->count, ms(h->min), ms(h->sum / h->count),
            ms(hc_hist_quantile(h, 0.5)), ms(hc_hist_quantile(h, 0.9)),
            ms(hc_hist_quantile(h, 0.99)), ms(h->max));
    hc_hist_bar bars[HIST_BARS];
    size_t n = hc_hist_bars(h, bars, HIST_BARS);
    uint64_t most = 1;
    for (size_t i = 0; i < n; i++)
      if (bars[i].count > most) most = bars[i].count;
    fprintf(out, "\nHistogram (ms, up to):\n");
    for (size_t i = 0; i < n; i++) {
      char count[32];
      snprintf(count, sizeof count, "[%llu]",
               (unsigned long long)bars[i].count);
      fprintf(out, "  %10.3f %-10s |", ms(bars[i].upper), count);
      int width = (int)(bars[i].count * 40 / most);
      for (int k = 0; k < width; k++) fputc('#', out);
      fputc('\n', out);
    }
  }
  int any = 0;
  for (size_t i = 0; i <= HC_STATUS_MAX; i++) {
    if (t->status[i] == 0) continue;
    if (!any++) fprintf(out, "\nStatus codes:\n");
    fprintf(out, "  [%zu] %llu\n", i, (unsigned long long)t->status[i]);
  }
  any = 0;
  for (size_t i = 1; i < HC_ERR_COUNT; i++) {
    if (t->errors[i] == 0) continue;
    if (!any++) fprintf(out, "\nErrors:\n");
    fprintf(out, "  [%s] %llu\n", hc_error_name((hc_error)i),
            (unsigned long long)t->errors[i]);
  }
  fflush(out);
}

/* ---- Progress ------------------------------------------------------------ */

#define BAR_WIDTH 30

void hc_report_progress(FILE *out, const hc_report *rep, uint64_t planned,
                        int64_t elapsed_ms, int64_t duration_ms, int final) {
  if (final) {
    fputs("\r\033[K", out);
    fflush(out);
    return;
  }
  uint64_t done = atomic_load_explicit(&rep->done, memory_order_relaxed);
  uint64_t failed = atomic_load_explicit(&rep->failed, memory_order_relaxed);
  double fraction = -1;
  if (planned > 0)
    fraction = (double)done / (double)planned;
  else if (duration_ms > 0)
    fraction = (double)elapsed_ms / (double)duration_ms;
  if (fraction > 1) fraction = 1;
  char bar[BAR_WIDTH + 1];
  int filled = fraction < 0 ? 0 : (int)(fraction * BAR_WIDTH);
  for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < filled ? '#' : '.';
  bar[BAR_WIDTH] = '\0';
  double rate = elapsed_ms > 0 ? (double)done * 1000.0 / (double)elapsed_ms : 0;
  if (fraction >= 0)
    fprintf(out, "\r[%s] %3d%% %llu", bar, (int)(fraction * 100),
            (unsigned long long)done);
  else
    fprintf(out, "\r%llu", (unsigned long long)done);
  if (planned > 0) fprintf(out, "/%llu", (unsigned long long)planned);
  fprintf(out, " requests, %.0f/s, %llu failed, %.1f s\033[K", rate,
          (unsigned long long)failed, (double)elapsed_ms / 1000.0);
  fflush(out);
}
