/* url.h: URLs as the crawler sees them: parsed, resolved against a page and
 * normalised, so that two spellings of one resource compare equal.
 *
 * Normalisation (RFC 3986 section 6, as crawlers apply it): scheme and host
 * in lower case, the default port dropped, the fragment dropped, dot
 * segments removed, an empty path made "/", percent-escapes of unreserved
 * characters decoded and the others written in upper case, and bytes that
 * may not appear in a URL (spaces, controls, non-ASCII) percent-encoded.
 * Only http and https URLs are crawled; anything else is refused.
 */
#ifndef WS_URL_H
#define WS_URL_H

#include <stddef.h>

/** The parts of an absolute http(s) URL, each a malloc'ed string. */
typedef struct ws_url {
  char *scheme; /**< "http" or "https" */
  char *host;   /**< lower case; an IPv6 literal keeps its brackets */
  int port;     /**< explicit port, or the scheme's default */
  char *path;   /**< normalised, starts with '/' */
  char *query;  /**< without the '?', or NULL when there is none */
} ws_url;

/**
 * Resolves ref against base (an absolute URL, or NULL when ref must be
 * absolute itself), normalises the result and stores it in *out as one
 * malloc'ed string. Returns 0; -1 when ref is not an http(s) URL (mailto:,
 * javascript:, data:, ...) or is malformed, with the reason in why.
 */
int ws_url_resolve(const char *base, const char *ref, char **out, char *why,
                   size_t why_len);

/**
 * Parses an absolute normalised URL (as ws_url_resolve() writes it) into
 * parts. Returns 0, or -1 when it is not one. Free with ws_url_free().
 */
int ws_url_parse(const char *url, ws_url *out);

/** Frees the strings of u. */
void ws_url_free(ws_url *u);

/** Writes "scheme://host:port" (the politeness key of u) into a new string. */
char *ws_url_host_key(const ws_url *u);

/** Writes the path and query of u ("/a/b?x=1") into a new string. */
char *ws_url_path_query(const ws_url *u);

/**
 * Normalises the percent-encoding of s (a path or pattern) into a new
 * string: unreserved escapes decoded, others upper case, bytes that need
 * it encoded. Keeps '*' and '$' as they are (robots.txt patterns).
 */
char *ws_url_normalise_path(const char *s, size_t len);

#endif /* WS_URL_H */
