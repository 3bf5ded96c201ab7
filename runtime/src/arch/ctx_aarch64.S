/* Context switch for AArch64 (AAPCS64: Linux, BSD, macOS).
 *
 * A suspended context is its stack pointer; x19-x30 and d8-d15 are stored
 * in a 176-byte frame on its stack.
 *
 *   void weft__ctx_switch(weft__ctx *from, weft__ctx *to);
 *   void weft__ctx_trampoline(void);  entry in x19, its argument in x20
 */
/* Mach-O (macOS, iOS): symbols take a leading underscore, visibility is
 * .private_extern, and there is no .type, .size or .note.GNU-stack. ELF
 * (Linux, the BSDs): plain names, .hidden. tests/test_ctx_targets.sh
 * assembles this file for both with clang. */
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
        .type weft__ctx_switch, %function
#endif
SYM(weft__ctx_switch):
        sub     sp, sp, #176
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mov     x9, sp
        str     x9, [x0]
        ldr     x9, [x1]
        mov     sp, x9
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8, d9, [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        add     sp, sp, #176
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
        .type weft__ctx_trampoline, %function
#endif
SYM(weft__ctx_trampoline):
        mov     x0, x20
        blr     x19
        /* The entry function never returns. */
        brk     #0
#if !defined(__APPLE__)
        .size weft__ctx_trampoline, .-weft__ctx_trampoline
        .section .note.GNU-stack,"",%progbits
#endif
