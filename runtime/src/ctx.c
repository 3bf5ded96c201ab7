/* Building the first frame of a new context for the assembly back ends.
 * The frame matches what weft__ctx_switch() pops on its way out, so the first
 * switch to a new context "returns" into weft__ctx_trampoline.
 */
#if !defined(WEFT_CTX_UCONTEXT) && !defined(WEFT_CTX_FIBER)

#include <stdint.h>
#include <string.h>

#include "internal.h"

void weft__ctx_trampoline(void);

void weft__ctx_make(weft__ctx *ctx, void *base, size_t size,
                    void (*entry)(void *), void *arg) {
  uintptr_t top = ((uintptr_t)base + size) & ~(uintptr_t)15;
#if defined(__x86_64__)
  /* Slots from the new stack pointer up: MXCSR + x87 control word, r15, r14,
   * r13 (arg), r12 (entry), rbx, rbp, return address (the trampoline). After
   * the final ret the stack pointer is top - 16: 16-byte aligned. */
  uint64_t *sp = (uint64_t *)(top - 16) - 8; /* NOLINT(performance-no-int-to-ptr): a new stack's top */
  uint32_t mxcsr = 0x1F80;
  uint16_t fpucw = 0x037F;
  memset(sp, 0, 8 * sizeof(uint64_t));
  memcpy(&sp[0], &mxcsr, sizeof mxcsr);
  memcpy((char *)&sp[0] + 4, &fpucw, sizeof fpucw);
  sp[3] = (uint64_t)(uintptr_t)arg;   /* r13 */
  sp[4] = (uint64_t)(uintptr_t)entry; /* r12 */
  sp[7] = (uint64_t)(uintptr_t)weft__ctx_trampoline;
  ctx->sp = sp;
#elif defined(__aarch64__)
  /* A 176-byte frame: x19 (entry), x20 (arg), ..., x29 = 0, x30 = trampoline. */
  uint64_t *sp = (uint64_t *)(top - 176);
  memset(sp, 0, 176);
  sp[0] = (uint64_t)(uintptr_t)entry;
  sp[1] = (uint64_t)(uintptr_t)arg;
  sp[11] = (uint64_t)(uintptr_t)weft__ctx_trampoline;
  ctx->sp = sp;
#else
#error "no assembly context switch for this target: build with WEFT_CTX_UCONTEXT"
#endif
}

void weft__ctx_free(weft__ctx *ctx) { (void)ctx; }

#endif /* !WEFT_CTX_UCONTEXT && !WEFT_CTX_FIBER */
