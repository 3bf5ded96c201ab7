/* fuzz_url: URL resolution and normalisation under a fuzzer.
 *
 * An input is a base URL on its first line and a reference after it (an
 * empty first line: the reference must be absolute). The reference is
 * resolved; a URL that resolves must parse back into its parts and be
 * normalised already (resolving it again gives the same string). The
 * reference's percent-encoding is also normalised as a robots.txt pattern.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_split.h"
#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *base, *ref;
  size_t len;
  if (ws_fuzz_split(data, size, &base, &ref, &len) < 0) return 0;
  char why[128];
  char *out = NULL;
  if (ws_url_resolve(base[0] ? base : NULL, ref, &out, why, sizeof why) == 0) {
    ws_url u;
    if (ws_url_parse(out, &u) != 0) {
      fprintf(stderr, "fuzz_url: resolved URL does not parse: %s\n", out);
      abort();
    }
    char *key = ws_url_host_key(&u);
    char *pq = ws_url_path_query(&u);
    free(key);
    free(pq);
    ws_url_free(&u);
    char *again = NULL;
    if (ws_url_resolve(NULL, out, &again, why, sizeof why) != 0 ||
        strcmp(again, out) != 0) {
      fprintf(stderr, "fuzz_url: not idempotent: %s -> %s\n", out,
              again ? again : why);
      abort();
    }
    free(again);
    free(out);
  }
  char *p = ws_url_normalise_path(ref, len);
  free(p);
  free(base);
  free(ref);
  return 0;
}
