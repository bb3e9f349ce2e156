/* Shared by the MPY32 kernels (runtime_c/kernels_mpy32): the multiply-accumulate building blocks.
 *
 * This folder is a kernel back-end: the same function names and signatures as runtime_c/kernels
 * (see sn_formats.h), chosen at build time (sparsenest.targets.firmware: --kernels mpy32|ref). Every kernel
 * computes exactly what the reference kernel computes: acc[r] += sum of w * x over row r's entries
 * of levels 1..level, the sum taken modulo 2^32 (the quantizer keeps real sums far from overflow,
 * where this equals the reference's int32 arithmetic bit for bit).
 *
 * On the MSP430 the products go through the hardware multiplier's signed multiply-accumulate
 * registers (MACS, OP2; the sum builds up in RESHI:RESLO), never through the __mspabi_mpy* helpers:
 * interrupts are masked for one kernel call (one matrix-vector product: at most a few ms at
 * 16 MHz for LeNet-sized layers), and per row the sum is cleared, accumulated and read. The simulator image's 16-bit multiplier
 * (0x0130) has the same registers at the same offsets as the FR5994's MPY32 (0x04C0).
 * Hot inner loops are inline assembly: LLVM 19 does not fold loads into the stores to MACS/OP2, and
 * its assembler lacks `mov @Rn+, &abs` (emitted as a .word, see SN_MAC_POSTINC).
 *
 * Elsewhere (host builds, -DSN_MAC_PORTABLE=1) the same code runs on plain C multiplies. */
#ifndef SN_MPY32_H
#define SN_MPY32_H

#include <stdint.h>

#include "sn_counters.h"
#include "sn_formats.h"

/* The board contract: a board with the MPY32 defines SN_BOARD_MPY32 in its sn_board.h and provides
 * the multiplier registers, sn_irq_save/restore and sn_dot_q15 (boards/msp430fr5994); any other board
 * (the host) gets plain C multiplies, as does -DSN_MAC_PORTABLE=1. */
#include "sn_board.h"

#if defined(SN_BOARD_MPY32) && SN_BOARD_MPY32 && !(defined(SN_MAC_PORTABLE) && SN_MAC_PORTABLE)
#define SN_MPY32_ASM 1
#else
#define SN_MPY32_ASM 0
#endif

#if !(defined(SN_BOARD_MPY32) && SN_BOARD_MPY32)
static inline int32_t sn_dot_q15(const int16_t *a, const int16_t *b, uint16_t n, int32_t acc)
{
    uint32_t s = (uint32_t)acc;
    for (uint16_t i = 0; i < n; i++)
        s += (uint32_t)((int32_t)a[i] * (int32_t)b[i]);
    return (int32_t)s;
}
#endif

/* One multiply-accumulate sum at a time. A kernel opens a span once per call (interrupts masked on
 * the MSP430: an interrupt handler may not find the multiplier mid-sum), then per row:
 * sn_sum_clear, sn_sum_mac (or an assembly run writing MACS/OP2), sn_sum_get.
 * Between clear and get nothing may use the multiplier: no C multiply (clang calls a helper that
 * does), no call to code that multiplies. */
typedef struct {
    uint32_t acc;          /* portable build only */
#if SN_MPY32_ASM
    sn_irq_state_t irq;
#endif
} sn_sum_t;

#if SN_MPY32_ASM
static inline __attribute__((always_inline)) void sn_sum_open(sn_sum_t *s) { s->irq = sn_irq_save(); }
static inline __attribute__((always_inline)) void sn_sum_close(sn_sum_t *s) { sn_irq_restore(s->irq); }
static inline __attribute__((always_inline)) void sn_sum_clear(sn_sum_t *s)
{
    (void)s;
    MPYS = 0; /* 0 * 0 in plain multiply mode clears RESHI:RESLO */
    OP2 = 0;
}
static inline __attribute__((always_inline)) void sn_sum_mac(sn_sum_t *s, int16_t a, int16_t b)
{
    (void)s;
    MACS = (uint16_t)a;
    OP2 = (uint16_t)b;
}
static inline __attribute__((always_inline)) int32_t sn_sum_get(sn_sum_t *s)
{
    (void)s;
    __asm__ volatile("nop" ::: "memory"); /* last product's latency on MPY32 */
    return (int32_t)((uint32_t)RESLO | ((uint32_t)RESHI << 16));
}
/* signed 16x16 product (multiply mode: does not touch a running sum's caller, which has none) */
static inline __attribute__((always_inline)) int32_t sn_sum_mul(int16_t a, int16_t b)
{
    MPYS = (uint16_t)a;
    OP2 = (uint16_t)b;
    __asm__ volatile("nop" ::: "memory");
    return (int32_t)((uint32_t)RESLO | ((uint32_t)RESHI << 16));
}
#else
static inline void sn_sum_open(sn_sum_t *s) { s->acc = 0; }
static inline void sn_sum_close(sn_sum_t *s) { (void)s; }
static inline void sn_sum_clear(sn_sum_t *s) { s->acc = 0; }
static inline void sn_sum_mac(sn_sum_t *s, int16_t a, int16_t b)
{
    s->acc += (uint32_t)((int32_t)a * (int32_t)b);
}
static inline int32_t sn_sum_get(sn_sum_t *s) { return (int32_t)s->acc; }
static inline int32_t sn_sum_mul(int16_t a, int16_t b) { return (int32_t)a * (int32_t)b; }
#endif

/* acc + v: the wrap-around sum of the reference kernels' int32 arithmetic, without signed overflow. */
static inline int32_t sn_add32(int32_t acc, int32_t v)
{
    return (int32_t)((uint32_t)acc + (uint32_t)v);
}

#if SN_MPY32_ASM
#define SN_STR_(x) #x
#define SN_STR(x) SN_STR_(x)
/* `mov @Rn+, &addr` (format I, As = 11, Ad = 1, destination R2): valid MSP430, rejected by LLVM 19's
 * assembler, so emitted as its encoding. Operands must be pinned to the named registers. */
#define SN_MAC_POSTINC(n, addr) ".word 0x40B2 | (" #n " << 8), " SN_STR(addr) "\n\t"
#define SN_MACS_POSTINC(n) SN_MAC_POSTINC(n, MACS_ADDR)
#define SN_OP2_STR "&" SN_STR(OP2_ADDR)

#endif

#endif
