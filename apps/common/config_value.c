/* config_value.c: values for APP_OPT_CUSTOM options that several
 * applications take: durations, rates and sizes, each a parser with an
 * explicit bound and table callbacks with fixed ones (config.h). */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Durations ----------------------------------------------------------- */

int app_duration_parse(const char *text, const cJSON *json, double max_seconds,
                       int64_t *ms, char *why, size_t why_len) {
  /* JSON gives a number of seconds, or a string as a flag would. */
  double seconds;
  if (json != NULL && cJSON_IsNumber(json)) {
    seconds = json->valuedouble;
  } else {
    if (json != NULL) {
      if (!cJSON_IsString(json)) {
        snprintf(why, why_len,
                 "expected seconds or a duration such as \"250ms\", \"10s\", "
                 "\"2m\"");
        return -1;
      }
      text = json->valuestring;
    }
    /* A number, then a unit or none (seconds). */
    char *end;
    double v = strtod(text, &end);
    double unit;
    if (end == text)
      unit = -1; /* NOLINT(bugprone-branch-clone): no number and an unknown unit fail alike */
    else if (strcmp(end, "ms") == 0)
      unit = 0.001;
    else if (strcmp(end, "s") == 0 || *end == '\0')
      unit = 1.0;
    else if (strcmp(end, "m") == 0)
      unit = 60.0;
    else if (strcmp(end, "h") == 0)
      unit = 3600.0;
    else
      unit = -1;
    if (unit < 0) {
      snprintf(why, why_len,
               "expected seconds or a duration such as 250ms, 10s, 2m, not "
               "\"%s\"",
               text);
      return -1;
    }
    seconds = v * unit;
  }
  /* NaN fails both comparisons, so it is refused here too. */
  if (!(seconds >= 0 && seconds <= max_seconds)) {
    snprintf(why, why_len, "a duration must be between 0 and %.10g seconds",
             max_seconds);
    return -1;
  }
  /* Whole milliseconds; a duration below one is one, not none (0 means no
   * limit for the timeouts). */
  int64_t v = (int64_t)llround(seconds * 1000.0);
  if (v == 0 && seconds > 0) v = 1;
  *ms = v;
  return 0;
}

/* The table callbacks: the same parser, each with its bound. */
int app_parse_duration_ms(void *field, const char *text, const cJSON *json,
                          char *why, size_t why_len) {
  return app_duration_parse(text, json, APP_DURATION_MAX_S, field, why,
                            why_len);
}

int app_parse_duration_ms_1e7(void *field, const char *text, const cJSON *json,
                              char *why, size_t why_len) {
  return app_duration_parse(text, json, APP_DURATION_MAX_S_1E7, field, why,
                            why_len);
}

int app_parse_duration_ms_2e6(void *field, const char *text, const cJSON *json,
                              char *why, size_t why_len) {
  return app_duration_parse(text, json, APP_DURATION_MAX_S_2E6, field, why,
                            why_len);
}

/* Whole seconds print as such, anything else in milliseconds, so that the
 * log line gives back what a flag would have said. */
void app_format_duration_ms(const void *field, char *out, size_t len) {
  int64_t ms = *(const int64_t *)field;
  if (ms % 1000 == 0)
    snprintf(out, len, "%" PRId64 "s", ms / 1000);
  else
    snprintf(out, len, "%" PRId64 "ms", ms);
}

/* ---- Rates --------------------------------------------------------------- */

int app_rate_parse(const char *text, const cJSON *json, double max,
                   double *out, char *why, size_t why_len) {
  double v;
  if (json != NULL) {
    if (!cJSON_IsNumber(json)) {
      snprintf(why, why_len, "expected a number of requests per second");
      return -1;
    }
    v = json->valuedouble;
  } else {
    char *end;
    v = strtod(text, &end);
    if (end == text || *end != '\0') {
      snprintf(why, why_len, "expected requests per second, not \"%s\"", text);
      return -1;
    }
  }
  /* NaN fails both comparisons, so it is refused here too. */
  if (!(v >= 0 && v <= max)) {
    snprintf(why, why_len, "a rate must be between 0 (no limit) and %.10g", max);
    return -1;
  }
  *out = v;
  return 0;
}

/* The table callbacks: the same parser, each with its bound. */
int app_parse_rate(void *field, const char *text, const cJSON *json,
                   char *why, size_t why_len) {
  return app_rate_parse(text, json, APP_RATE_MAX, field, why, why_len);
}

int app_parse_rate_1e7(void *field, const char *text, const cJSON *json,
                       char *why, size_t why_len) {
  return app_rate_parse(text, json, APP_RATE_MAX_1E7, field, why, why_len);
}

void app_format_rate(const void *field, char *out, size_t len) {
  snprintf(out, len, "%g", *(const double *)field);
}

/* ---- Sizes --------------------------------------------------------------- */

int app_size_parse(const char *text, const cJSON *json, int64_t *out,
                   char *why, size_t why_len) {
  /* JSON gives a number of bytes, or a string as a flag would. */
  if (json != NULL) {
    if (cJSON_IsNumber(json)) {
      double v = json->valuedouble;
      if (v < 0) {
        snprintf(why, why_len, "a size cannot be negative");
        return -1;
      }
      if (!(v <= APP_SIZE_MAX)) {
        snprintf(why, why_len, "a size must be at most %.10g bytes",
                 APP_SIZE_MAX);
        return -1;
      }
      *out = (int64_t)v;
      return 0;
    }
    if (!cJSON_IsString(json)) {
      snprintf(why, why_len, "expected a size (a number or \"4M\")");
      return -1;
    }
    text = json->valuestring;
  }
  /* A number, then K, M or G (powers of 1024), then "i" and "B", each
   * optional: 64K, 64KiB, 64kb and 64k are the same. */
  char *end;
  double v = strtod(text, &end);
  int64_t mult = 1;
  switch (toupper((unsigned char)*end)) {
  case 'K':
    mult = (int64_t)1 << 10, end++;
    break;
  case 'M':
    mult = (int64_t)1 << 20, end++;
    break;
  case 'G':
    mult = (int64_t)1 << 30, end++;
    break;
  default:
    break;
  }
  if (toupper((unsigned char)*end) == 'I' && mult > 1) end++;
  if (toupper((unsigned char)*end) == 'B') end++;
  /* NaN fails both comparisons, so "nan" is refused too. */
  if (end == text || *end != '\0' ||
      !(v >= 0 && v * (double)mult <= APP_SIZE_MAX)) {
    snprintf(why, why_len, "\"%s\" is not a size (such as 4096, 64K, 1M)",
             text);
    return -1;
  }
  *out = (int64_t)(v * (double)mult);
  return 0;
}

/* The table callback of a size. */
int app_parse_size(void *field, const char *text, const cJSON *json,
                   char *why, size_t why_len) {
  return app_size_parse(text, json, field, why, why_len);
}

void app_format_size(const void *field, char *out, size_t len) {
  snprintf(out, len, "%" PRId64, *(const int64_t *)field);
}
