/* Q15 multiply-accumulate without helper calls.
 *
 * On the MSP430 the products go through the hardware multiplier's signed multiply-accumulate
 * registers (write MACS, then OP2; the 32-bit sum builds up in RESHI:RESLO). A C expression
 * `(int32_t)a * b` calls a 32x32 helper instead: about 5x slower per element.
 * Elsewhere (host builds, or -DSN_MAC_PORTABLE=1) the same functions are plain C.
 *
 * Sums wrap modulo 2^32 exactly like uint32_t arithmetic, on every platform (the sparsenest
 * quantizer keeps real accumulators far from overflow; wrapping is only defined for tests).
 * Interrupts are masked from sn_mac_begin to sn_mac_end: keep the span short. */
#ifndef SN_MAC_H
#define SN_MAC_H

#include <stdint.h>

#include "sn_board.h"

#if defined(__MSP430__) && !(defined(SN_MAC_PORTABLE) && SN_MAC_PORTABLE)
#define SN_MAC_HW 1
#else
#define SN_MAC_HW 0
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* acc + sum_{i<n} a[i]*b[i] */
int32_t sn_dot_q15(const int16_t *a, const int16_t *b, uint16_t n, int32_t acc);
/* acc + sum_{i<n} a[i]*b[i*b_stride]   (b_stride in elements: a column of a row-major matrix) */
int32_t sn_dot_q15_strided(const int16_t *a, const int16_t *b, uint16_t n, uint16_t b_stride,
                           int32_t acc);
/* acc + sum_{i<n} w[i]*x[idx[i]]   (a sparse row with absolute column indices times a vector) */
int32_t sn_dot_q15_gather(const int16_t *w, const uint16_t *idx, const int16_t *x, uint16_t n,
                          int32_t acc);

/* Inline building blocks for kernels with their own loop structure:
 *     sn_mac_t m; sn_mac_begin(&m); for (...) sn_mac(&m, w, x); acc += sn_mac_end(&m);  */
typedef struct {
    uint32_t acc;         /* used by the portable version only */
    sn_irq_state_t irq;
} sn_mac_t;

#if SN_MAC_HW

static inline __attribute__((always_inline)) void sn_mac_begin(sn_mac_t *m)
{
    m->irq = sn_irq_save();
    MPYS = 0; /* 0 * 0 in plain multiply mode clears RESHI:RESLO */
    OP2 = 0;
}

static inline __attribute__((always_inline)) void sn_mac(sn_mac_t *m, int16_t a, int16_t b)
{
    (void)m;
    MACS = (uint16_t)a;
    OP2 = (uint16_t)b;
}

static inline __attribute__((always_inline)) int32_t sn_mac_end(sn_mac_t *m)
{
    __asm__ volatile("nop" ::: "memory"); /* last product's latency on MPY32 */
    uint32_t r = (uint32_t)RESLO | ((uint32_t)RESHI << 16);
    sn_irq_restore(m->irq);
    return (int32_t)r;
}

/* Signed 16x16 -> 32 product. */
static inline __attribute__((always_inline)) int32_t sn_mul_q15(int16_t a, int16_t b)
{
    sn_irq_state_t s = sn_irq_save();
    MPYS = (uint16_t)a;
    OP2 = (uint16_t)b;
    __asm__ volatile("nop" ::: "memory");
    uint32_t r = (uint32_t)RESLO | ((uint32_t)RESHI << 16);
    sn_irq_restore(s);
    return (int32_t)r;
}

#else

static inline void sn_mac_begin(sn_mac_t *m) { m->acc = 0; m->irq = 0; }
static inline void sn_mac(sn_mac_t *m, int16_t a, int16_t b)
{
    m->acc += (uint32_t)((int32_t)a * (int32_t)b);
}
static inline int32_t sn_mac_end(sn_mac_t *m) { return (int32_t)m->acc; }
static inline int32_t sn_mul_q15(int16_t a, int16_t b) { return (int32_t)a * (int32_t)b; }

#endif

#ifdef __cplusplus
}
#endif

#endif /* SN_MAC_H */
