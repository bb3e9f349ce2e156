/* The run-time helpers LLVM calls for MSP430 (names from the MSP430 EABI, SLAA534): multiply,
 * divide, remainder and 32-bit shifts, plus compiler-rt's __mulosi4. There is no libgcc or
 * compiler-rt for this target here, so the project supplies them.
 *
 * Which names clang 19 calls depends on -mhwmult (-mmcu=msp430fr5994 implies 32bit):
 *   none:     __mspabi_mpyi     __mspabi_mpyl      __mspabi_mpyll (special convention, see shim)
 *   16bit:    __mspabi_mpyi_hw  __mspabi_mpyl_hw   __mspabi_mpyll_hw
 *   32bit:    __mspabi_mpyi_hw  __mspabi_mpyl_hw32 __mspabi_mpyll_hw32
 *   f5series: __mspabi_mpyi_f5hw __mspabi_mpyl_f5hw __mspabi_mpyll_f5hw
 * All of them are provided, built on the 16x16 multiplier operations (MPY/MAC + OP2 ->
 * RESLO/RESHI) that both the FR5994's MPY32 and mspdebug's simulated 16-bit multiplier have, so the
 * simulator runs exactly this code. Interrupts are masked while the multiplier is in use, so an
 * interrupt handler that multiplies cannot corrupt a result.
 *
 * The 64-bit divide/remainder helpers and __mspabi_mpyll are called with LLVM's MSP430_BUILTIN
 * convention (operands in R8-R11 and R12-R15); mspabi_shim.S moves them into the C convention
 * and calls the __sn_* functions below.
 *
 * Division by zero. The EABI defines these helpers by C semantics, and C leaves x / 0 and x % 0
 * undefined; the EABI fixes no result. We define one, the result of a restoring shift-subtract
 * divider (the same convention as RISC-V's divide instructions), and test it:
 *   quotient = all ones (-1 signed, UINTn_MAX unsigned), remainder = the dividend.
 * Overflow (INTn_MIN / -1) gives quotient INTn_MIN and remainder 0. Both keep a == q*b + r, so
 * code that derives a remainder from a quotient agrees with the remainder helpers.
 * Shift counts are taken modulo 32 (C leaves counts >= 32 undefined).
 *
 * Everything here must avoid the operations it implements: a variable 32-bit shift, a 32-bit
 * multiply or any division written in C would compile to a call to itself. Only constant shifts
 * and additions are used; tests check the object has no undefined references. */
#include <stdint.h>

#include "msp430_regs.h"

typedef uint16_t irq_t;
static inline __attribute__((always_inline)) irq_t irq_off(void)
{
    irq_t sr;
    __asm__ volatile("mov r2, %0\n\tdint\n\tnop" : "=r"(sr) : : "memory");
    return sr;
}
static inline __attribute__((always_inline)) void irq_restore(irq_t sr)
{
    __asm__ volatile("nop\n\tbis %0, r2\n\tnop" : : "r"((uint16_t)(sr & GIE)) : "memory");
}

/* Unsigned 16x16 -> 32 on the hardware multiplier. Caller masks interrupts. */
static inline __attribute__((always_inline)) uint32_t hw_umul16(uint16_t a, uint16_t b)
{
    MPY = a;
    OP2 = b;
    __asm__ volatile("nop" ::: "memory"); /* result latency on MPY32 */
    return (uint32_t)RESLO | ((uint32_t)RESHI << 16);
}

/* Low 16 bits of a*b + c*d. Caller masks interrupts. */
static inline __attribute__((always_inline)) uint16_t hw_cross16(uint16_t a, uint16_t b, uint16_t c,
                                                                 uint16_t d)
{
    MPY = a;
    OP2 = b;
    MAC = c;
    OP2 = d;
    __asm__ volatile("nop" ::: "memory");
    return RESLO;
}

/* ---- multiply ------------------------------------------------------------------------- */

int16_t __mspabi_mpyi(int16_t a, int16_t b)
{
    irq_t s = irq_off();
    MPY = (uint16_t)a;
    OP2 = (uint16_t)b;
    __asm__ volatile("nop" ::: "memory");
    uint16_t r = RESLO;
    irq_restore(s);
    return (int16_t)r;
}

/* 32x32 -> low 32: a0*b0 + ((a0*b1 + a1*b0) << 16). */
int32_t __mspabi_mpyl(int32_t a, int32_t b)
{
    uint32_t ua = (uint32_t)a, ub = (uint32_t)b;
    uint16_t a0 = (uint16_t)ua, a1 = (uint16_t)(ua >> 16);
    uint16_t b0 = (uint16_t)ub, b1 = (uint16_t)(ub >> 16);
    irq_t s = irq_off();
    uint16_t cross = hw_cross16(a0, b1, a1, b0);
    uint32_t r = hw_umul16(a0, b0);
    irq_restore(s);
    return (int32_t)(r + ((uint32_t)cross << 16));
}

/* Unsigned 32x32 -> 64. Caller masks interrupts. */
static uint64_t hw_umul32(uint32_t x, uint32_t y)
{
    uint16_t x0 = (uint16_t)x, x1 = (uint16_t)(x >> 16);
    uint16_t y0 = (uint16_t)y, y1 = (uint16_t)(y >> 16);
    uint64_t p00 = hw_umul16(x0, y0);
    uint64_t p01 = hw_umul16(x0, y1);
    uint64_t p10 = hw_umul16(x1, y0);
    uint64_t p11 = hw_umul16(x1, y1);
    return p00 + ((p01 + p10) << 16) + (p11 << 32);
}

int64_t __sn_mpyll(int64_t a, int64_t b)
{
    uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    uint32_t al = (uint32_t)ua, ah = (uint32_t)(ua >> 32);
    uint32_t bl = (uint32_t)ub, bh = (uint32_t)(ub >> 32);
    irq_t s = irq_off();
    uint64_t r = hw_umul32(al, bl);
    /* low 32 bits of al*bh + ah*bl go to the high word */
    uint16_t al0 = (uint16_t)al, al1 = (uint16_t)(al >> 16);
    uint16_t bl0 = (uint16_t)bl, bl1 = (uint16_t)(bl >> 16);
    uint16_t bh0 = (uint16_t)bh, bh1 = (uint16_t)(bh >> 16);
    uint16_t ah0 = (uint16_t)ah, ah1 = (uint16_t)(ah >> 16);
    uint32_t c = hw_umul16(al0, bh0) + hw_umul16(ah0, bl0);
    uint16_t c_hi = hw_cross16(al0, bh1, al1, bh0);
    uint16_t c_hi2 = hw_cross16(ah0, bl1, ah1, bl0);
    irq_restore(s);
    c += (uint32_t)(uint16_t)(c_hi + c_hi2) << 16;
    return (int64_t)(r + ((uint64_t)c << 32));
}

int16_t __mspabi_mpyi_hw(int16_t a, int16_t b) __attribute__((alias("__mspabi_mpyi")));
int16_t __mspabi_mpyi_f5hw(int16_t a, int16_t b) __attribute__((alias("__mspabi_mpyi")));
int32_t __mspabi_mpyl_hw(int32_t a, int32_t b) __attribute__((alias("__mspabi_mpyl")));
int32_t __mspabi_mpyl_hw32(int32_t a, int32_t b) __attribute__((alias("__mspabi_mpyl")));
int32_t __mspabi_mpyl_f5hw(int32_t a, int32_t b) __attribute__((alias("__mspabi_mpyl")));
/* With a hardware multiplier LLVM calls the 64-bit multiply with the standard convention. */
int64_t __mspabi_mpyll_hw(int64_t a, int64_t b) __attribute__((alias("__sn_mpyll")));
int64_t __mspabi_mpyll_hw32(int64_t a, int64_t b) __attribute__((alias("__sn_mpyll")));
int64_t __mspabi_mpyll_f5hw(int64_t a, int64_t b) __attribute__((alias("__sn_mpyll")));

/* compiler-rt: a*b, *overflow = 1 when the product does not fit in int32 (__builtin_mul_overflow). */
int32_t __mulosi4(int32_t a, int32_t b, int *overflow)
{
    uint32_t ua = (uint32_t)a, ub = (uint32_t)b;
    irq_t s = irq_off();
    uint64_t p = hw_umul32(ua, ub);
    irq_restore(s);
    uint32_t hi = (uint32_t)(p >> 32);
    if (a < 0)
        hi -= ub;
    if (b < 0)
        hi -= ua;
    uint32_t lo = (uint32_t)p;
    /* fits iff the high word is the sign extension of the low word */
    *overflow = hi != ((lo & 0x80000000u) ? 0xFFFFFFFFu : 0u);
    return (int32_t)lo;
}

/* ---- divide and remainder --------------------------------------------------------------
 * Restoring division, one quotient bit per step; the quotient bits shift into the dividend's
 * register as its bits move out. `top` keeps the bit that leaves the partial remainder so that
 * divisors with the high bit set work. */

static uint16_t udiv16(uint16_t n, uint16_t d, uint16_t *rem)
{
    if (d == 0) {
        *rem = n;
        return 0xFFFFu;
    }
    uint16_t r = 0;
    for (uint8_t i = 0; i < 16; i++) {
        uint16_t top = r & 0x8000u;
        r = (uint16_t)(r << 1) | (n >> 15);
        n = (uint16_t)(n << 1);
        if (top || r >= d) {
            r -= d;
            n |= 1u;
        }
    }
    *rem = r;
    return n;
}

static uint32_t udiv32(uint32_t n, uint32_t d, uint32_t *rem)
{
    if ((n >> 16) == 0 && (d >> 16) == 0) { /* also covers d == 0 with a 16-bit n */
        uint16_t r16;
        uint16_t q16 = udiv16((uint16_t)n, (uint16_t)d, &r16);
        *rem = r16;
        return d == 0 ? 0xFFFFFFFFu : q16;
    }
    if (d == 0) {
        *rem = n;
        return 0xFFFFFFFFu;
    }
    if (n < d) {
        *rem = n;
        return 0;
    }
    uint32_t r = 0;
    for (uint8_t i = 0; i < 32; i++) {
        uint32_t top = r & 0x80000000u;
        r = (r << 1) | (n >> 31);
        n <<= 1;
        if (top || r >= d) {
            r -= d;
            n |= 1u;
        }
    }
    *rem = r;
    return n;
}

static uint64_t udiv64(uint64_t n, uint64_t d, uint64_t *rem)
{
    if ((n >> 32) == 0 && (d >> 32) == 0) {
        uint32_t r32;
        uint32_t q32 = udiv32((uint32_t)n, (uint32_t)d, &r32);
        *rem = r32;
        return d == 0 ? 0xFFFFFFFFFFFFFFFFull : q32;
    }
    if (d == 0) {
        *rem = n;
        return 0xFFFFFFFFFFFFFFFFull;
    }
    if (n < d) {
        *rem = n;
        return 0;
    }
    uint64_t r = 0;
    for (uint8_t i = 0; i < 64; i++) {
        uint64_t top = r & 0x8000000000000000ull;
        r = (r << 1) | (n >> 63);
        n <<= 1;
        if (top || r >= d) {
            r -= d;
            n |= 1u;
        }
    }
    *rem = r;
    return n;
}

uint16_t __mspabi_divu(uint16_t a, uint16_t b)
{
    uint16_t r;
    return udiv16(a, b, &r);
}

uint16_t __mspabi_remu(uint16_t a, uint16_t b)
{
    uint16_t r;
    udiv16(a, b, &r);
    return r;
}

int16_t __mspabi_divi(int16_t a, int16_t b)
{
    if (b == 0)
        return -1;
    uint16_t ua = a < 0 ? (uint16_t)(0u - (uint16_t)a) : (uint16_t)a;
    uint16_t ub = b < 0 ? (uint16_t)(0u - (uint16_t)b) : (uint16_t)b;
    uint16_t r;
    uint16_t q = udiv16(ua, ub, &r);
    return (int16_t)(((a < 0) != (b < 0)) ? (uint16_t)(0u - q) : q);
}

int16_t __mspabi_remi(int16_t a, int16_t b)
{
    if (b == 0)
        return a;
    uint16_t ua = a < 0 ? (uint16_t)(0u - (uint16_t)a) : (uint16_t)a;
    uint16_t ub = b < 0 ? (uint16_t)(0u - (uint16_t)b) : (uint16_t)b;
    uint16_t r;
    udiv16(ua, ub, &r);
    return (int16_t)(a < 0 ? (uint16_t)(0u - r) : r);
}

uint32_t __mspabi_divul(uint32_t a, uint32_t b)
{
    uint32_t r;
    return udiv32(a, b, &r);
}

uint32_t __mspabi_remul(uint32_t a, uint32_t b)
{
    uint32_t r;
    udiv32(a, b, &r);
    return r;
}

int32_t __mspabi_divli(int32_t a, int32_t b)
{
    if (b == 0)
        return -1;
    uint32_t ua = a < 0 ? 0u - (uint32_t)a : (uint32_t)a;
    uint32_t ub = b < 0 ? 0u - (uint32_t)b : (uint32_t)b;
    uint32_t r;
    uint32_t q = udiv32(ua, ub, &r);
    return (int32_t)(((a < 0) != (b < 0)) ? 0u - q : q);
}

int32_t __mspabi_remli(int32_t a, int32_t b)
{
    if (b == 0)
        return a;
    uint32_t ua = a < 0 ? 0u - (uint32_t)a : (uint32_t)a;
    uint32_t ub = b < 0 ? 0u - (uint32_t)b : (uint32_t)b;
    uint32_t r;
    udiv32(ua, ub, &r);
    return (int32_t)(a < 0 ? 0u - r : r);
}

/* 64-bit: reached through the R8-R11/R12-R15 shim (first operand = dividend). */
uint64_t __sn_divull(uint64_t a, uint64_t b)
{
    uint64_t r;
    return udiv64(a, b, &r);
}

uint64_t __sn_remull(uint64_t a, uint64_t b)
{
    uint64_t r;
    udiv64(a, b, &r);
    return r;
}

int64_t __sn_divlli(int64_t a, int64_t b)
{
    if (b == 0)
        return -1;
    uint64_t ua = a < 0 ? 0u - (uint64_t)a : (uint64_t)a;
    uint64_t ub = b < 0 ? 0u - (uint64_t)b : (uint64_t)b;
    uint64_t r;
    uint64_t q = udiv64(ua, ub, &r);
    return (int64_t)(((a < 0) != (b < 0)) ? 0u - q : q);
}

int64_t __sn_remlli(int64_t a, int64_t b)
{
    if (b == 0)
        return a;
    uint64_t ua = a < 0 ? 0u - (uint64_t)a : (uint64_t)a;
    uint64_t ub = b < 0 ? 0u - (uint64_t)b : (uint64_t)b;
    uint64_t r;
    udiv64(ua, ub, &r);
    return (int64_t)(a < 0 ? 0u - r : r);
}

/* ---- 32-bit shifts by a variable count (count taken modulo 32) --------------------------- */

/* The last 0-7 single-bit steps: rla/rlc, rra/rrc or clrc/rrc on the two halves (2-3 instructions
 * a bit; clang's C for `x >>= 1` on a 32-bit value takes about 14). n in 1..7. */
static inline uint32_t sn_shl_bits(uint32_t x, int16_t n)
{
    uint16_t lo = (uint16_t)x, hi = (uint16_t)(x >> 16);
    __asm__("1:\n\trla %0\n\trlc %1\n\tdec %2\n\tjnz 1b" : "+r"(lo), "+r"(hi), "+r"(n));
    return ((uint32_t)hi << 16) | lo;
}

static inline uint32_t sn_shr_bits(uint32_t x, int16_t n)
{
    uint16_t lo = (uint16_t)x, hi = (uint16_t)(x >> 16);
    __asm__("1:\n\tclrc\n\trrc %1\n\trrc %0\n\tdec %2\n\tjnz 1b" : "+r"(lo), "+r"(hi), "+r"(n));
    return ((uint32_t)hi << 16) | lo;
}

static inline uint32_t sn_sar_bits(uint32_t x, int16_t n)
{
    uint16_t lo = (uint16_t)x, hi = (uint16_t)(x >> 16);
    __asm__("1:\n\trra %1\n\trrc %0\n\tdec %2\n\tjnz 1b" : "+r"(lo), "+r"(hi), "+r"(n));
    return ((uint32_t)hi << 16) | lo;
}

uint32_t __mspabi_slll(uint32_t x, int16_t n)
{
    n &= 31;
    if (n >= 16) {
        x = (uint32_t)(uint16_t)x << 16;
        n -= 16;
    }
    if (n >= 8) {
        x = (x << 8);
        n -= 8;
    }
    if (n > 0)
        x = sn_shl_bits(x, n);
    return x;
}

uint32_t __mspabi_srll(uint32_t x, int16_t n)
{
    n &= 31;
    if (n >= 16) {
        x >>= 16;
        n -= 16;
    }
    if (n >= 8) {
        x >>= 8;
        n -= 8;
    }
    if (n > 0)
        x = sn_shr_bits(x, n);
    return x;
}

int32_t __mspabi_sral(int32_t x, int16_t n)
{
    n &= 31;
    if (n >= 16) {
        x = (int32_t)(int16_t)(uint16_t)((uint32_t)x >> 16);
        n -= 16;
    }
    if (n >= 8) {
        x >>= 8;
        n -= 8;
    }
    if (n > 0)
        x = (int32_t)sn_sar_bits((uint32_t)x, n);
    return x;
}
