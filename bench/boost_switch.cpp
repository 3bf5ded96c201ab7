/* boost_switch.cpp: the Boost.Context peer of weft's context-switch benchmark.
 *
 * Two contexts hand control to each other n times: the program's own stack
 * and one fiber. Every resume is one switch, so a round trip is two. Two
 * figures are printed, one JSON object per line:
 *   boost_fiber     boost::context::fiber (the fcontext back end, Debian's
 *                   default build), what an application would use;
 *   boost_fcontext  the bare jump_fcontext() underneath it, the floor.
 *
 * Usage: boost_switch [switches]   (default 20,000,000)
 */
#include <boost/context/detail/fcontext.hpp>
#include <boost/context/fiber.hpp>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <utility>

namespace ctx = boost::context;

static double now_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Round trips through a fiber; returns ns per switch. */
static double bench_fiber(long round_trips) {
  ctx::fiber f{[round_trips](ctx::fiber &&back) {
    for (long i = 0; i < round_trips; i++) back = std::move(back).resume();
    return std::move(back);
  }};
  /* The first resume starts the fiber; the timed loop pairs every resume
   * here with one inside the fiber. */
  double t0 = now_ns();
  for (long i = 0; i <= round_trips; i++) f = std::move(f).resume();
  double t1 = now_ns();
  return (t1 - t0) / (2.0 * (double)round_trips);
}

/* The bare fcontext API: a function that jumps back to whoever resumed it. */
static void fcontext_entry(ctx::detail::transfer_t t) {
  for (;;) t = ctx::detail::jump_fcontext(t.fctx, t.data);
}

static double bench_fcontext(long round_trips) {
  const std::size_t size = 64 * 1024;
  char *stack = static_cast<char *>(std::malloc(size));
  if (stack == nullptr) return -1.0;
  /* make_fcontext takes the top of the stack: it grows down. */
  ctx::detail::fcontext_t fc =
      ctx::detail::make_fcontext(stack + size, size, fcontext_entry);
  double t0 = now_ns();
  for (long i = 0; i < round_trips; i++) {
    ctx::detail::transfer_t t = ctx::detail::jump_fcontext(fc, nullptr);
    fc = t.fctx;
  }
  double t1 = now_ns();
  /* The context is left suspended in its loop; its stack is simply freed,
   * as nothing on it needs unwinding. */
  std::free(stack);
  return (t1 - t0) / (2.0 * (double)round_trips);
}

int main(int argc, char **argv) {
  long switches = argc > 1 ? std::atol(argv[1]) : 20000000L;
  if (switches < 2) {
    std::fprintf(stderr, "boost_switch: switches must be at least 2\n");
    return 2;
  }
  long round_trips = switches / 2;
  /* Warm up caches and the branch predictors with a short run of each. */
  bench_fiber(round_trips / 20 + 1);
  bench_fcontext(round_trips / 20 + 1);
  double fiber_ns = bench_fiber(round_trips);
  double fcontext_ns = bench_fcontext(round_trips);
  std::printf("{\"bench\":\"switch\",\"impl\":\"boost_fiber\",\"switches\":%ld,"
              "\"ns_per_switch\":%.3f}\n",
              2 * round_trips, fiber_ns);
  std::printf("{\"bench\":\"switch\",\"impl\":\"boost_fcontext\",\"switches\":%ld,"
              "\"ns_per_switch\":%.3f}\n",
              2 * round_trips, fcontext_ns);
  return 0;
}
