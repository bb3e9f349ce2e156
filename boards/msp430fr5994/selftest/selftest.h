/* Self-test firmware for the board's run-time helpers (tests/test_msp430_helpers.py).
 * The host writes a command and operands into FRAM with the simulator's load_raw, the firmware
 * runs one command and halts, and the host reads the results back and compares them with Python's
 * arithmetic. Operands come from memory, so nothing can be constant-folded. */
#ifndef SN_SELFTEST_H
#define SN_SELFTEST_H
#include <stdint.h>

enum {
    ST_MUL = 1,    /* arg = hwmult variant: 16-, 32-, 64-bit and widening 16x16->32 multiplies */
    ST_DIV16 = 2,  /* int16 pairs -> a/b, (u)a/(u)b, a%b, (u)a%(u)b */
    ST_DIV32 = 3,
    ST_DIV64 = 4,
    ST_SHIFT = 5,  /* {int32 x, int16 n} -> x<<n, (u)x>>n, x>>n */
    ST_MULO = 6,   /* int32 pairs -> product, overflow flag (__builtin_mul_overflow) */
    ST_MEM = 7,    /* memcpy / memset / memmove cases on a 64-byte buffer */
    ST_MAC = 8,    /* sn_dot_q15 / _strided / _gather cases */
};

#define ST_IN_SIZE 8192
#define ST_OUT_SIZE 16384

/* one translation unit per -mhwmult variant (ops_mul.c built four times) */
typedef void (*st_mul_fn)(const uint8_t *in, uint16_t n16, uint16_t n32, uint16_t n64, uint8_t *out);
void st_mul_none(const uint8_t *, uint16_t, uint16_t, uint16_t, uint8_t *);
void st_mul_16bit(const uint8_t *, uint16_t, uint16_t, uint16_t, uint8_t *);
void st_mul_32bit(const uint8_t *, uint16_t, uint16_t, uint16_t, uint8_t *);
void st_mul_f5series(const uint8_t *, uint16_t, uint16_t, uint16_t, uint8_t *);

void st_div16(const int16_t *in, uint16_t n, int16_t *out);
void st_div32(const int32_t *in, uint16_t n, int32_t *out);
void st_div64(const int64_t *in, uint16_t n, int64_t *out);
void st_shift(const uint8_t *in, uint16_t n, int32_t *out);
void st_mulo(const int32_t *in, uint16_t n, uint8_t *out);

#endif
