// Tests of weft_dns_lookup(): numeric addresses, "localhost", and argument
// errors. Nothing here may leave the machine, so there is no test of an
// unknown name: on a host whose resolver is not on the loopback, looking one
// up would send a query over the network.

#include <catch2/catch.hpp>

#include <string.h>
#ifndef _WIN32
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif

#include "support.h"
#include "win_support.h"
#include "weft.h"

namespace {

struct Lookups {
  sockaddr_storage v4[4];
  int n_v4 = 0;
  sockaddr_storage v6[4];
  int n_v6 = 0;
  sockaddr_storage local[8];
  int n_local = 0;
  int null_host = 0;
  int zero_max = 0;
  int bad_port = 0;
  int cancelled = 0;
};

int lookups_run(void *arg) {
  auto *x = static_cast<Lookups *>(arg);
  x->n_v4 = weft_dns_lookup("127.0.0.1", 8080, x->v4, 4);
  x->n_v6 = weft_dns_lookup("::1", 443, x->v6, 4);
  x->n_local = weft_dns_lookup("localhost", 80, x->local, 8);
  x->null_host = weft_dns_lookup(nullptr, 80, x->v4, 4);
  x->zero_max = weft_dns_lookup("127.0.0.1", 80, x->v4, 0);
  x->bad_port = weft_dns_lookup("127.0.0.1", -1, x->v4, 4);
  // A lookup inside a cancelled scope does not start.
  weft_scope s;
  weft_scope_enter(&s, -1);
  weft_scope_cancel(&s);
  sockaddr_storage a[1];
  x->cancelled = weft_dns_lookup("localhost", 80, a, 1);
  weft_scope_leave(&s);
  return 0;
}

bool is_loopback(const sockaddr_storage &a) {
  if (a.ss_family == AF_INET) {
    auto &in = reinterpret_cast<const sockaddr_in &>(a);
    return (ntohl(in.sin_addr.s_addr) >> 24) == 127;
  }
  if (a.ss_family == AF_INET6) {
    auto &in6 = reinterpret_cast<const sockaddr_in6 &>(a);
    return IN6_IS_ADDR_LOOPBACK(&in6.sin6_addr);
  }
  return false;
}

int port_of(const sockaddr_storage &a) {
  if (a.ss_family == AF_INET)
    return ntohs(reinterpret_cast<const sockaddr_in &>(a).sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6 &>(a).sin6_port);
}

}  // namespace

TEST_CASE("numeric addresses and localhost resolve", "[dns]") {
  Lookups x;
  REQUIRE(run_bounded(lookups_run, &x) == 0);

  REQUIRE(x.n_v4 == 1);
  CHECK(x.v4[0].ss_family == AF_INET);
  CHECK(is_loopback(x.v4[0]));
  CHECK(port_of(x.v4[0]) == 8080);

  REQUIRE(x.n_v6 == 1);
  CHECK(x.v6[0].ss_family == AF_INET6);
  CHECK(is_loopback(x.v6[0]));
  CHECK(port_of(x.v6[0]) == 443);

  REQUIRE(x.n_local >= 1);
  for (int i = 0; i < x.n_local; i++) {
    CHECK(is_loopback(x.local[i]));
    CHECK(port_of(x.local[i]) == 80);
  }

  CHECK(x.null_host == UV_EINVAL);
  CHECK(x.zero_max == UV_EINVAL);
  CHECK(x.bad_port == UV_EINVAL);
  CHECK(x.cancelled == UV_ECANCELED);
}

TEST_CASE("numeric lookups work outside a task but names need one", "[dns]") {
  sockaddr_storage a[2];
  CHECK(weft_dns_lookup("10.1.2.3", 1, a, 2) == 1);
  CHECK(a[0].ss_family == AF_INET);
  CHECK(weft_dns_lookup("localhost", 1, a, 2) == WEFT_ENOTASK);
}
