/* demo.c: weft at work in one short program.
 *
 * 1. Three tasks in a group, inside a scope with a 300 ms deadline: the two
 *    short sleepers finish, the long one is cut off by the deadline.
 * 2. A fail-fast group: the first task to fail cancels its sibling.
 * 3. A TCP echo round trip on 127.0.0.1, on a port the system picks.
 *
 * Every step prints what happens, with the time since the start. The program
 * exits 0 when each step ended the way it should.
 */
#include <stdio.h>
#include <string.h>

#include <weft.h>

static int64_t start_ms;

/* Prints one line prefixed with the time since the program started. */
#define say(...)                                                               \
  do {                                                                         \
    printf("[%4lld ms] ", (long long)(weft_now() - start_ms));                 \
    printf(__VA_ARGS__);                                                       \
    printf("\n");                                                              \
  } while (0)

/* Shows an error code the way a log would: its name and its message. A
 * wait ended by its scope says so in weft's words: libuv's message for
 * ETIMEDOUT ("connection timed out") is about sockets, not deadlines. */
static const char *describe(int err) {
  static char buf[128];
  if (err == 0) return "ok";
  const char *why = weft_strerror(err);
  if (err == UV_ETIMEDOUT)
    why = "the scope's deadline passed";
  else if (err == UV_ECANCELED)
    why = "cancelled";
  snprintf(buf, sizeof buf, "%s (%s)", weft_err_name(err), why);
  return buf;
}

/* ---- 1. A group under a deadline ---------------------------------------- */

typedef struct sleeper {
  const char *name;
  int64_t ms;
  int result;
} sleeper;

static int sleeper_task(void *arg) {
  sleeper *s = arg;
  say("%s: sleeping %lld ms", s->name, (long long)s->ms);
  s->result = weft_sleep(s->ms);
  if (s->result == 0)
    say("%s: woke up", s->name);
  else
    say("%s: interrupted: %s", s->name, describe(s->result));
  return s->result;
}

static int demo_deadline(void) {
  sleeper sleepers[] = {
      {"short", 50, -1}, {"medium", 150, -1}, {"long", 5000, -1}};
  weft_scope scope;

  printf("\n== a group of three tasks under a 300 ms deadline\n");
  weft_scope_enter(&scope, 300);
  weft_group *g = weft_group_open(WEFT_COLLECT);
  if (g == NULL) {
    weft_scope_leave(&scope);
    return -1;
  }
  for (size_t i = 0; i < sizeof sleepers / sizeof sleepers[0]; i++)
    weft_spawn_named(g, sleepers[i].name, sleeper_task, &sleepers[i]);
  int err = weft_group_wait(g);
  size_t errors = weft_group_error_count(g);
  weft_group_join(g);
  int left = weft_scope_leave(&scope);
  say("group joined: %s, %zu task(s) failed; scope: %s", describe(err), errors,
      describe(left));

  /* The short sleepers finish unless the machine is very slow; the long one
   * must have been stopped by the deadline. */
  return sleepers[2].result == UV_ETIMEDOUT && left == UV_ETIMEDOUT ? 0 : -1;
}

/* ---- 2. Fail fast -------------------------------------------------------- */

static int failing_task(void *arg) {
  (void)arg;
  weft_sleep(20);
  say("validator: input rejected, returning EINVAL");
  return UV_EINVAL;
}

static int demo_fail_fast(void) {
  sleeper download = {"download", 5000, -1};

  printf("\n== fail fast: the first error cancels the siblings\n");
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  if (g == NULL) return -1;
  weft_spawn_named(g, "download", sleeper_task, &download);
  weft_spawn_named(g, "validator", failing_task, NULL);
  int err = weft_group_join(g);
  say("group joined: %s", describe(err));
  return err == UV_EINVAL && download.result == UV_ECANCELED ? 0 : -1;
}

/* ---- 3. TCP echo --------------------------------------------------------- */

/* Serves one connection: sends back every byte until the client is done. */
static int echo_server_task(void *arg) {
  weft_tcp *listener = arg, *conn;
  char buf[256];
  ssize_t n;

  int err = weft_tcp_accept(listener, &conn);
  if (err != 0) return err;
  say("server: accepted a connection");
  while ((n = weft_tcp_read(conn, buf, sizeof buf)) > 0) {
    say("server: echoing %zd bytes", n);
    if ((err = weft_tcp_write(conn, buf, (size_t)n)) != 0) break;
  }
  if (n < 0) err = (int)n;
  weft_tcp_close(conn);
  return err;
}

/* Connects, sends a message, closes its side and reads the echo back. */
static int echo_client(int port, char *reply, size_t cap) {
  static const char msg[] = "hello, weft";
  weft_tcp *conn;
  size_t got = 0;
  ssize_t n;

  int err = weft_tcp_connect("127.0.0.1", port, &conn);
  if (err != 0) return err;
  say("client: connected, sending \"%s\"", msg);
  err = weft_tcp_write(conn, msg, strlen(msg));
  if (err == 0) err = weft_tcp_shutdown(conn);
  while (err == 0 && got < cap - 1 &&
         (n = weft_tcp_read(conn, reply + got, cap - 1 - got)) != 0) {
    if (n < 0)
      err = (int)n;
    else
      got += (size_t)n;
  }
  reply[got] = '\0';
  weft_tcp_close(conn);
  if (err == 0 && strcmp(reply, msg) != 0) err = UV_EPROTO;
  return err;
}

static int demo_echo(void) {
  weft_tcp *listener;
  char reply[64] = "";
  weft_scope scope;

  printf("\n== a TCP echo round trip on 127.0.0.1\n");
  int err = weft_tcp_listen("127.0.0.1", 0, 0, 0, &listener);
  if (err != 0) {
    say("listen: %s", describe(err));
    return err;
  }
  int port = weft_tcp_local_port(listener);
  say("server: listening on 127.0.0.1:%d", port);

  /* Nothing here may hang the demo: the whole exchange gets two seconds. */
  weft_scope_enter(&scope, 2000);
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  if (g == NULL) {
    weft_scope_leave(&scope);
    weft_tcp_close(listener);
    return UV_ENOMEM;
  }
  weft_spawn_named(g, "echo-server", echo_server_task, listener);
  err = echo_client(port, reply, sizeof reply);
  if (err != 0) weft_group_cancel(g); /* The server may still wait to accept. */
  int server = weft_group_join(g);
  weft_scope_leave(&scope);
  weft_tcp_close(listener);

  if (err == 0) err = server;
  if (err == 0)
    say("client: got \"%s\" back", reply);
  else
    say("echo failed: %s", describe(err));
  return err;
}

static int root(void *arg) {
  (void)arg;
  int failures = 0;
  failures += demo_deadline() != 0;
  failures += demo_fail_fast() != 0;
  failures += demo_echo() != 0;
  return failures == 0 ? 0 : UV_EPROTO;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  start_ms = weft_now();
  printf("weft %s demo\n", WEFT_VERSION_STRING);
  int err = weft_main(root, NULL);
  printf("\n%s\n", err == 0 ? "demo finished: every step behaved as expected"
                            : "demo finished: something went wrong");
  return err == 0 ? 0 : 1;
}
