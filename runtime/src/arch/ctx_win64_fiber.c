/* The context switch on Windows: fibers (CreateFiberEx, SwitchToFiber).
 *
 * A fiber owns its stack: Windows reserves it, commits it as it grows, and
 * keeps a guard page below the committed part, so an overflow raises
 * EXCEPTION_STACK_OVERFLOW (reported with the task's name by stack.c) rather
 * than corrupting memory. SwitchToFiber saves what the x64 ABI makes
 * callee-saved (rbx, rbp, rdi, rsi, r12-r15, xmm6-xmm15, and with
 * FIBER_FLAG_FLOAT_SWITCH the MXCSR and x87 control word) and switches the
 * TIB's stack fields, which an assembly switch would have to do by hand.
 *
 * A weft__ctx keeps its fiber when its task is pooled: weft__ctx_reserve on
 * a used fiber sets `restart`, and the first switch to it jumps back to the
 * fiber's first frame (the finished task's frames are dead) to run the new
 * entry. A fiber is created once per pooled task, not once per spawn.
 */
#if defined(WEFT_CTX_FIBER)

#include <stdlib.h>

#include "../internal.h" /* uv.h: winsock2.h before windows.h */

/* GCC 12 takes mingw-w64's __readgsqword (GetCurrentFiber) for an access
 * out of bounds of a zero-length array: a false positive. */
#pragma GCC diagnostic ignored "-Warray-bounds"
#include <windows.h>

static void WINAPI weft__fiber_main(void *p) {
  weft__ctx *volatile ctx = p;
  /* Returns 0 now, and 1 each time a reused fiber is started afresh. */
  __builtin_setjmp(ctx->top);
  ctx->restart = 0;
  ctx->entry(ctx->arg);
  abort(); /* The entry function never returns. */
}

int weft__ctx_reserve(weft__ctx *ctx, size_t size) {
  if (ctx->fiber != NULL && ctx->size == size) {
    ctx->restart = 1;
    return 0;
  }
  if (ctx->fiber != NULL) DeleteFiber(ctx->fiber);
  ctx->restart = 0;
  ctx->size = size;
  ctx->fiber = CreateFiberEx(0, size, FIBER_FLAG_FLOAT_SWITCH, weft__fiber_main, ctx);
  return ctx->fiber != NULL ? 0 : UV_ENOMEM;
}

void weft__ctx_make(weft__ctx *ctx, void *base, size_t size,
                    void (*entry)(void *), void *arg) {
  (void)base; /* the fiber's stack is its own */
  if (ctx->fiber == NULL || ctx->size != size) {
    if (weft__ctx_reserve(ctx, size) != 0) abort();
  }
  ctx->entry = entry;
  ctx->arg = arg;
}

void weft__ctx_switch(weft__ctx *from, weft__ctx *to) {
  if (WEFT__UNLIKELY(from->fiber == NULL)) {
    /* The executor's own context: its thread becomes a fiber, unless the
     * program made it one already. */
    if (IsThreadAFiber()) {
      from->fiber = GetCurrentFiber();
    } else {
      from->fiber = ConvertThreadToFiberEx(NULL, FIBER_FLAG_FLOAT_SWITCH);
      if (from->fiber == NULL) abort();
      from->converted = 1;
    }
  }
  SwitchToFiber(to->fiber);
  /* Resumed. A pooled fiber given a new task starts over at its top. */
  if (WEFT__UNLIKELY(from->restart)) __builtin_longjmp(from->top, 1);
}

void weft__ctx_free(weft__ctx *ctx) {
  if (ctx->fiber == NULL) return;
  if (ctx->converted) {
    ConvertFiberToThread();
  } else if (ctx->fiber != GetCurrentFiber()) {
    DeleteFiber(ctx->fiber);
  }
  ctx->fiber = NULL;
  ctx->converted = 0;
}

#endif /* WEFT_CTX_FIBER */
