/* Divide, remainder, shift and overflow-checked multiply cases (see selftest.h). */
#include <stdint.h>

#include "selftest.h"

/* Out of line, or clang computes a % b as a - (a / b) * b and never calls the remainder helpers. */
#define REM(T, name)                                                                               \
    static __attribute__((noinline)) T name(T a, T b) { return a % b; }
REM(int16_t, rem_i16)
REM(uint16_t, rem_u16)
REM(int32_t, rem_i32)
REM(uint32_t, rem_u32)
REM(int64_t, rem_i64)
REM(uint64_t, rem_u64)

void st_div16(const int16_t *in, uint16_t n, int16_t *out)
{
    for (uint16_t i = 0; i < n; i++, in += 2, out += 4) {
        int16_t a = in[0], b = in[1];
        out[0] = a / b;
        out[1] = (int16_t)((uint16_t)a / (uint16_t)b);
        out[2] = rem_i16(a, b);
        out[3] = (int16_t)rem_u16((uint16_t)a, (uint16_t)b);
    }
}

void st_div32(const int32_t *in, uint16_t n, int32_t *out)
{
    for (uint16_t i = 0; i < n; i++, in += 2, out += 4) {
        int32_t a = in[0], b = in[1];
        out[0] = a / b;
        out[1] = (int32_t)((uint32_t)a / (uint32_t)b);
        out[2] = rem_i32(a, b);
        out[3] = (int32_t)rem_u32((uint32_t)a, (uint32_t)b);
    }
}

void st_div64(const int64_t *in, uint16_t n, int64_t *out)
{
    for (uint16_t i = 0; i < n; i++, in += 2, out += 4) {
        int64_t a = in[0], b = in[1];
        out[0] = a / b;
        out[1] = (int64_t)((uint64_t)a / (uint64_t)b);
        out[2] = rem_i64(a, b);
        out[3] = (int64_t)rem_u64((uint64_t)a, (uint64_t)b);
    }
}

/* in: records {int32 x, int16 n} (6 bytes) */
void st_shift(const uint8_t *in, uint16_t n, int32_t *out)
{
    for (uint16_t i = 0; i < n; i++, in += 6, out += 3) {
        int32_t x = (int32_t)((uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 |
                              (uint32_t)in[3] << 24);
        int16_t k = (int16_t)(in[4] | in[5] << 8);
        out[0] = (int32_t)((uint32_t)x << k);
        out[1] = (int32_t)((uint32_t)x >> k);
        out[2] = x >> k;
    }
}

/* out: records {int32 product, uint8 overflow, pad} (6 bytes) */
void st_mulo(const int32_t *in, uint16_t n, uint8_t *out)
{
    for (uint16_t i = 0; i < n; i++, in += 2, out += 6) {
        int32_t r;
        uint8_t ovf = __builtin_mul_overflow(in[0], in[1], &r);
        uint32_t u = (uint32_t)r;
        out[0] = (uint8_t)u;
        out[1] = (uint8_t)(u >> 8);
        out[2] = (uint8_t)(u >> 16);
        out[3] = (uint8_t)(u >> 24);
        out[4] = ovf;
        out[5] = 0;
    }
}
