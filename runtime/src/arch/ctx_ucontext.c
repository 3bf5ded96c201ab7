/* The portable fallback context switch on ucontext (makecontext/swapcontext),
 * for targets without an assembly back end. It is much slower: swapcontext
 * saves and restores the signal mask with a system call.
 */
#if defined(WEFT_CTX_UCONTEXT)

#include <stdint.h>
#include <stdlib.h>
#include <ucontext.h>

#include "../internal.h"

/* makecontext passes int arguments only: split the pointers in halves. */
static void weft__uctx_entry(unsigned e_hi, unsigned e_lo, unsigned a_hi,
                             unsigned a_lo) {
  uintptr_t e = ((uintptr_t)e_hi << 16 << 16) | e_lo;
  uintptr_t a = ((uintptr_t)a_hi << 16 << 16) | a_lo;
  ((void (*)(void *))e)((void *)a);
  abort(); /* The entry function never returns. */
}

void weft__ctx_make(weft__ctx *ctx, void *base, size_t size,
                    void (*entry)(void *), void *arg) {
  ucontext_t *uc = ctx->uctx;
  if (uc == NULL) {
    uc = calloc(1, sizeof *uc);
    if (uc == NULL) abort();
    ctx->uctx = uc;
  }
  getcontext(uc);
  uc->uc_stack.ss_sp = base;
  uc->uc_stack.ss_size = size;
  uc->uc_link = NULL;
  uintptr_t e = (uintptr_t)entry, a = (uintptr_t)arg;
  makecontext(uc, (void (*)(void))weft__uctx_entry, 4,
              (unsigned)(e >> 16 >> 16), (unsigned)e, (unsigned)(a >> 16 >> 16),
              (unsigned)a);
}

void weft__ctx_switch(weft__ctx *from, weft__ctx *to) {
  if (from->uctx == NULL) {
    from->uctx = calloc(1, sizeof(ucontext_t));
    if (from->uctx == NULL) abort();
  }
  swapcontext(from->uctx, to->uctx);
}

void weft__ctx_free(weft__ctx *ctx) {
  free(ctx->uctx);
  ctx->uctx = NULL;
}

#endif /* WEFT_CTX_UCONTEXT */
