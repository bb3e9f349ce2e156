/* Multiplies, compiled once per -mhwmult variant (ST_VARIANT = none, 16bit, 32bit, f5series) so that
 * every multiply helper name LLVM uses is called: __mspabi_mpyi/_hw/_f5hw, mpyl/_hw/_hw32/_f5hw,
 * mpyll (R8-R11/R12-R15 convention)/_hw/_hw32/_f5hw. Unsigned types avoid signed-overflow UB.
 * in: n16 int16 pairs, n32 int32 pairs, n64 int64 pairs (packed, in that order)
 * out: per int16 pair {uint16 a*b, int32 (int32)a*b}, per int32 pair uint32, per int64 pair uint64 */
#include <stdint.h>

#include "selftest.h"

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

static void put(uint8_t **o, const void *v, uint16_t n)
{
    const uint8_t *s = v;
    while (n--)
        *(*o)++ = *s++;
}

void CAT(st_mul_, ST_VARIANT)(const uint8_t *in, uint16_t n16, uint16_t n32, uint16_t n64, uint8_t *out)
{
    const int16_t *p16 = (const int16_t *)in;
    for (uint16_t i = 0; i < n16; i++, p16 += 2) {
        uint16_t lo = (uint16_t)p16[0] * (uint16_t)p16[1];
        int32_t wide = (int32_t)p16[0] * (int32_t)p16[1];
        put(&out, &lo, 2);
        put(&out, &wide, 4);
    }
    const uint32_t *p32 = (const uint32_t *)p16;
    for (uint16_t i = 0; i < n32; i++, p32 += 2) {
        uint32_t r = p32[0] * p32[1];
        put(&out, &r, 4);
    }
    const uint64_t *p64 = (const uint64_t *)p32;
    for (uint16_t i = 0; i < n64; i++, p64 += 2) {
        uint64_t r = p64[0] * p64[1];
        put(&out, &r, 8);
    }
}
