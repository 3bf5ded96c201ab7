/* metrics_export.c: every registered metric as JSON or as Prometheus text,
 * read from the registry (metrics.c) under its lock. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_registry.h"

/* A growing string. Out of memory sticks: every later append is dropped and
 * the caller sees failed set. */
typedef struct strbuf {
  char *p;
  size_t len;
  size_t cap;
  int failed;
} strbuf;

static int sb_reserve(strbuf *b, size_t more) {
  if (b->failed) return 0;
  if (b->len + more + 1 <= b->cap) return 1;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more + 1) cap *= 2;
  char *p = realloc(b->p, cap);
  if (p == NULL) {
    b->failed = 1;
    return 0;
  }
  b->p = p;
  b->cap = cap;
  return 1;
}

static void sb_put(strbuf *b, const char *s, size_t n) {
  if (!sb_reserve(b, n)) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_puts(strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(strbuf *b, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = 1;
    return;
  }
  /* Every format used here fits in tmp. */
  sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Appends a number. Integral values are printed as integers; a locale with
 * a decimal comma is undone, as both formats need a point. */
static void sb_double(strbuf *b, double v, int json) {
  if (!isfinite(v)) {
    if (json)
      sb_puts(b, "0");
    else
      sb_puts(b, isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
    return;
  }
  char tmp[64];
  snprintf(tmp, sizeof tmp, "%.12g", v);
  for (char *p = tmp; *p; p++)
    if (*p == ',') *p = '.';
  sb_puts(b, tmp);
}

/* Appends v of a histogram with the given scale: exact when scale is 1. */
static void sb_scaled(strbuf *b, uint64_t v, double scale, int json) {
  if (scale == 1.0)
    sb_printf(b, "%llu", (unsigned long long)v);
  else
    sb_double(b, (double)v * scale, json);
}

/* Appends s as the inside of a JSON string. */
static void sb_json_escape(strbuf *b, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      sb_put(b, esc, 2);
    } else if (c < 0x20) {
      sb_printf(b, "\\u%04x", c);
    } else {
      sb_put(b, (const char *)&c, 1);
    }
  }
}

/* Appends s escaped for a Prometheus label value (\\, \" and \n) or, with
 * help set, for a # HELP line (\\ and \n). */
static void sb_prom_escape(strbuf *b, const char *s, int help) {
  for (; *s; s++) {
    if (*s == '\\')
      sb_puts(b, "\\\\");
    else if (*s == '\n')
      sb_puts(b, "\\n");
    else if (*s == '"' && !help)
      sb_puts(b, "\\\"");
    else
      sb_put(b, s, 1);
  }
}

/* Appends m's Prometheus series name with suffix after the name and an
 * optional extra label (the quantile), such as
 * name_sum{code="ECONNRESET"} or name{quantile="0.5"}. */
static void sb_series(strbuf *b, const weft__metric *m, const char *suffix,
                      const char *extra_label, const char *extra_value) {
  sb_puts(b, m->name);
  sb_puts(b, suffix);
  if (m->label == NULL && extra_label == NULL) return;
  sb_puts(b, "{");
  if (m->label != NULL) {
    sb_puts(b, m->label);
    sb_puts(b, "=\"");
    sb_prom_escape(b, m->value, 0);
    sb_puts(b, "\"");
  }
  if (extra_label != NULL) {
    if (m->label != NULL) sb_puts(b, ",");
    sb_puts(b, extra_label);
    sb_puts(b, "=\"");
    sb_puts(b, extra_value);
    sb_puts(b, "\"");
  }
  sb_puts(b, "}");
}

/* Appends m's series name as a JSON key (with its colon). */
static void sb_json_key(strbuf *b, const weft__metric *m) {
  strbuf name = {0};
  sb_series(&name, m, "", NULL, NULL);
  sb_puts(b, "\"");
  if (name.failed)
    b->failed = 1;
  else
    sb_json_escape(b, name.p);
  sb_puts(b, "\":");
  free(name.p);
}

static void json_section(strbuf *b, weft__metric *const *registry, size_t registry_len,
                         int kind, weft__hist_merged *scratch) {
  int first = 1;
  sb_puts(b, "{");
  for (size_t i = 0; i < registry_len; i++) {
    const weft__metric *m = registry[i];
    if (m->kind != kind) continue;
    if (!first) sb_puts(b, ",");
    first = 0;
    sb_json_key(b, m);
    if (kind == WEFT__KIND_COUNTER) {
      sb_printf(b, "%llu", (unsigned long long)weft__cell_sum(m));
    } else if (kind == WEFT__KIND_GAUGE) {
      sb_printf(b, "%lld", (long long)weft_gauge_value((const weft_gauge *)m));
    } else {
      uint64_t q[4];
      weft__hist_merge(m, scratch);
      weft__hist_quantiles(scratch, weft__export_qs, q, 4);
      sb_printf(b,
                "{\"count\":%llu,\"sum\":", (unsigned long long)scratch->count);
      sb_scaled(b, scratch->sum, m->scale, 1);
      sb_puts(b, ",\"min\":");
      sb_scaled(b, scratch->min, m->scale, 1);
      sb_puts(b, ",\"max\":");
      sb_scaled(b, scratch->max, m->scale, 1);
      static const char *keys[4] = {"p50", "p90", "p99", "p999"};
      for (int k = 0; k < 4; k++) {
        sb_printf(b, ",\"%s\":", keys[k]);
        sb_scaled(b, q[k], m->scale, 1);
      }
      sb_puts(b, "}");
    }
  }
  sb_puts(b, "}");
}

char *weft_metrics_json(void) {
  weft__metrics_builtin_init();
  weft__hist_merged *scratch = malloc(sizeof *scratch);
  if (scratch == NULL) return NULL;
  strbuf b = {0};
  size_t registry_len;
  weft__metric *const *registry = weft__metrics_lock(&registry_len);
  sb_puts(&b, "{\"counters\":");
  json_section(&b, registry, registry_len, WEFT__KIND_COUNTER, scratch);
  sb_puts(&b, ",\"gauges\":");
  json_section(&b, registry, registry_len, WEFT__KIND_GAUGE, scratch);
  sb_puts(&b, ",\"histograms\":");
  json_section(&b, registry, registry_len, WEFT__KIND_HISTOGRAM, scratch);
  sb_puts(&b, "}");
  weft__metrics_unlock();
  free(scratch);
  if (b.failed) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

char *weft_metrics_prometheus(void) {
  static const char *quantile_names[4] = {"0.5", "0.9", "0.99", "0.999"};
  static const char *type_names[4] = {"", "counter", "gauge", "summary"};
  weft__metrics_builtin_init();
  weft__hist_merged *scratch = malloc(sizeof *scratch);
  if (scratch == NULL) return NULL;
  strbuf b = {0};
  size_t registry_len;
  weft__metric *const *registry = weft__metrics_lock(&registry_len);
  for (size_t i = 0; i < registry_len; i++) {
    const weft__metric *m = registry[i];
    if (i == 0 || strcmp(registry[i - 1]->name, m->name) != 0) {
      /* A family's first series: the help of the first series that has one. */
      const char *help = m->help;
      for (size_t j = i; *help == '\0' && j < registry_len &&
                         strcmp(registry[j]->name, m->name) == 0;
           j++)
        help = registry[j]->help;
      if (*help != '\0') {
        sb_printf(&b, "# HELP %s ", m->name);
        sb_prom_escape(&b, help, 1);
        sb_puts(&b, "\n");
      }
      sb_printf(&b, "# TYPE %s %s\n", m->name, type_names[m->kind]);
    }
    if (m->kind == WEFT__KIND_COUNTER || m->kind == WEFT__KIND_GAUGE) {
      sb_series(&b, m, "", NULL, NULL);
      if (m->kind == WEFT__KIND_COUNTER)
        sb_printf(&b, " %llu\n", (unsigned long long)weft__cell_sum(m));
      else
        sb_printf(&b, " %lld\n",
                  (long long)weft_gauge_value((const weft_gauge *)m));
      continue;
    }
    uint64_t q[4];
    weft__hist_merge(m, scratch);
    weft__hist_quantiles(scratch, weft__export_qs, q, 4);
    for (int k = 0; k < 4; k++) {
      sb_series(&b, m, "", "quantile", quantile_names[k]);
      sb_puts(&b, " ");
      if (scratch->count == 0)
        sb_puts(&b, "NaN");
      else
        sb_scaled(&b, q[k], m->scale, 0);
      sb_puts(&b, "\n");
    }
    sb_series(&b, m, "_sum", NULL, NULL);
    sb_puts(&b, " ");
    sb_scaled(&b, scratch->sum, m->scale, 0);
    sb_puts(&b, "\n");
    sb_series(&b, m, "_count", NULL, NULL);
    sb_printf(&b, " %llu\n", (unsigned long long)scratch->count);
  }
  weft__metrics_unlock();
  free(scratch);
  if (b.failed || b.p == NULL) {
    /* An empty registry still gives a string. */
    if (!b.failed && b.p == NULL) return strdup("");
    free(b.p);
    return NULL;
  }
  return b.p;
}
