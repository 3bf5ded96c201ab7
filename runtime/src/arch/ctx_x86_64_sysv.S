/* Context switch for x86-64, System V ABI (Linux, BSD, macOS).
 *
 * A suspended context is its stack pointer; the callee-saved registers, the
 * MXCSR control bits and the x87 control word are pushed on its stack.
 *
 *   void weft__ctx_switch(weft__ctx *from, weft__ctx *to);
 *   void weft__ctx_trampoline(void);  entry in %r12, its argument in %r13
 */
#if defined(__APPLE__)
#define SYM(x) _##x
#else
#define SYM(x) x
#endif

        .text
        .p2align 4
        .globl SYM(weft__ctx_switch)
#if defined(__APPLE__)
        .private_extern SYM(weft__ctx_switch)
#else
        .hidden weft__ctx_switch
        .type weft__ctx_switch, @function
#endif
SYM(weft__ctx_switch):
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    %rsp, (%rdi)
        movq    (%rsi), %rsp
        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
#if !defined(__APPLE__)
        .size weft__ctx_switch, .-weft__ctx_switch
#endif

        .p2align 4
        .globl SYM(weft__ctx_trampoline)
#if defined(__APPLE__)
        .private_extern SYM(weft__ctx_trampoline)
#else
        .hidden weft__ctx_trampoline
        .type weft__ctx_trampoline, @function
#endif
SYM(weft__ctx_trampoline):
        /* The stack is 16-byte aligned here, as the ABI wants before a call. */
        movq    %r13, %rdi
        callq   *%r12
        /* The entry function never returns. */
        ud2
#if !defined(__APPLE__)
        .size weft__ctx_trampoline, .-weft__ctx_trampoline
        .section .note.GNU-stack,"",@progbits
#endif
