/* nicks.c: the registry is one map under one lock; each call holds the
 * lock for a lookup and nothing more, so it never waits on anything. */
#include "nicks.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "map.h"

static pthread_mutex_t nicks_lock = PTHREAD_MUTEX_INITIALIZER;
static chat_map nicks;

int chat_nick_valid(const char *nick) {
  size_t n = strlen(nick);
  if (n == 0 || n > CHAT_NICK_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = nick[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

int chat_nick_claim(const char *nick, chat_conn *c) {
  int r = 0;
  pthread_mutex_lock(&nicks_lock);
  if (chat_map_get(&nicks, nick) != NULL)
    r = UV_EEXIST;
  else if (chat_map_put(&nicks, nick, c) != 0)
    r = UV_ENOMEM;
  else
    chat_conn_ref(c);
  pthread_mutex_unlock(&nicks_lock);
  return r;
}

void chat_nick_release(const char *nick, chat_conn *c) {
  chat_conn *held = NULL;
  pthread_mutex_lock(&nicks_lock);
  if (chat_map_get(&nicks, nick) == c) held = chat_map_remove(&nicks, nick);
  pthread_mutex_unlock(&nicks_lock);
  if (held != NULL) chat_conn_unref(held);
}

chat_conn *chat_nick_find(const char *nick) {
  pthread_mutex_lock(&nicks_lock);
  chat_conn *c = chat_map_get(&nicks, nick);
  if (c != NULL) chat_conn_ref(c);
  pthread_mutex_unlock(&nicks_lock);
  return c;
}

void chat_nicks_free(void) {
  pthread_mutex_lock(&nicks_lock);
  chat_map_free(&nicks);
  pthread_mutex_unlock(&nicks_lock);
}

typedef struct list_ctx {
  char **out;
  size_t n;
} list_ctx;

static void list_one(const char *key, void *value, void *arg) {
  (void)value;
  list_ctx *lc = arg;
  char *copy = strdup(key);
  if (copy != NULL) lc->out[lc->n++] = copy;
}

char **chat_nicks_list(size_t *n) {
  pthread_mutex_lock(&nicks_lock);
  list_ctx lc = {calloc(nicks.count + 1, sizeof(char *)), 0};
  if (lc.out != NULL) chat_map_each(&nicks, list_one, &lc);
  pthread_mutex_unlock(&nicks_lock);
  *n = lc.n;
  return lc.out;
}
