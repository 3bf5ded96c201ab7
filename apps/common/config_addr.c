/* config_addr.c: HOST:PORT addresses, as --listen and the configuration
 * file give them, parsed and formatted. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

/* Whether c may stand in a host name or an IPv4 address (letters, digits,
 * '.', '-', '_'): what is not is a typo, refused before any lookup. */
static int addr_host_char_ok(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

int app_addr_parse(const char *text, app_addr *out, char *why, size_t why_len) {
  memset(out, 0, sizeof *out);
  /* Where the host starts and ends, and the colon before the port: an IPv6
   * address is in brackets, anything else has no colon before the port's. */
  const char *host = text, *host_end, *colon;
  if (text[0] == '[') {
    host = text + 1;
    host_end = strchr(host, ']');
    if (host_end == NULL) {
      snprintf(why, why_len, "missing ']' in \"%s\"", text);
      return -1;
    }
    colon = host_end + 1;
    if (*colon != ':') {
      snprintf(why, why_len, "expected HOST:PORT, as [::1]:7007, not \"%s\"",
               text);
      return -1;
    }
  } else {
    colon = strrchr(text, ':');
    if (colon == NULL) {
      snprintf(why, why_len,
               "expected HOST:PORT, as 127.0.0.1:7007, not \"%s\"", text);
      return -1;
    }
    host_end = colon;
    if (memchr(text, ':', (size_t)(colon - text)) != NULL) {
      snprintf(why, why_len,
               "an IPv6 address goes in brackets, as [::1]:7007, not \"%s\"",
               text);
      return -1;
    }
  }
  /* The host, copied out and checked: a bracketed one must be an IPv6
   * address, any other a name or an IPv4 address. */
  size_t host_len = (size_t)(host_end - host);
  if (host_len == 0 || host_len >= sizeof out->host) {
    snprintf(why, why_len, "bad host in \"%s\"", text);
    return -1;
  }
  memcpy(out->host, host, host_len);
  out->host[host_len] = '\0';

  if (text[0] == '[') {
    struct sockaddr_in6 sa6;
    if (uv_ip6_addr(out->host, 0, &sa6) != 0) {
      snprintf(why, why_len, "bad IPv6 address in \"%s\"", text);
      return -1;
    }
  } else {
    for (size_t i = 0; i < host_len; i++) {
      if (!addr_host_char_ok(out->host[i])) {
        snprintf(why, why_len, "bad host in \"%s\"", text);
        return -1;
      }
    }
  }

  /* The port: decimal digits only, 0 to 65535. */
  const char *p = colon + 1;
  char *end;
  errno = 0;
  long port = strtol(p, &end, 10);
  if (*p < '0' || *p > '9' || *end != '\0' || errno != 0 || port < 0 ||
      port > 65535) {
    snprintf(why, why_len,
             "bad port in \"%s\" (0 to 65535; 0 picks a free port)", text);
    return -1;
  }
  out->port = (int)port;
  return 0;
}

/* An IPv6 host (the only kind with a colon) goes back in brackets. */
void app_addr_format(const char *host, int port, char *buf, size_t len) {
  if (strchr(host, ':') != NULL)
    snprintf(buf, len, "[%s]:%d", host, port);
  else
    snprintf(buf, len, "%s:%d", host, port);
}
