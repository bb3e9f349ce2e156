/* Self-test command dispatcher (see selftest.h). */
#include <stddef.h>
#include <stdint.h>

#include "sn_board.h"
#include "sn_mac.h"
#include "selftest.h"

void *memcpy(void *, const void *, size_t);
void *memset(void *, int, size_t);
void *memmove(void *, const void *, size_t);

/* Written by the host before the run; not touched by start-up. */
SN_FRAM_NOINIT uint16_t st_cmd[4]; /* command, count, arg, count2 ... */
SN_FRAM_NOINIT uint8_t st_in[ST_IN_SIZE] __attribute__((aligned(2)));
SN_FRAM_NOINIT uint8_t st_out[ST_OUT_SIZE] __attribute__((aligned(2)));

static const st_mul_fn mul_variants[4] = {st_mul_none, st_mul_16bit, st_mul_32bit, st_mul_f5series};

/* ST_MEM record: {op, dst, src_or_value, len}; op 0 memcpy, 1 memset, 2 memmove.
 * out per record: the 64-byte buffer after the call, then 1 if the call returned dst, then 0. */
static void st_mem(const uint8_t *rec, uint16_t n, uint8_t *out)
{
    static uint8_t buf[64] __attribute__((aligned(2)));
    for (uint16_t i = 0; i < n; i++, rec += 4, out += 66) {
        for (uint8_t k = 0; k < 64; k++)
            buf[k] = (uint8_t)(k * 7u + 3u);
        void *ret;
        uint8_t *dst = buf + rec[1];
        if (rec[0] == 0)
            ret = memcpy(dst, buf + 32 + (rec[2] & 31u), rec[3]);
        else if (rec[0] == 1)
            ret = memset(dst, rec[2] | 0x100, rec[3]); /* only the low byte may count */
        else
            ret = memmove(dst, buf + rec[2], rec[3]);
        memcpy(out, buf, 64);
        out[64] = ret == dst;
        out[65] = 0;
    }
}

/* ST_MAC: st_in = {uint16 ncases; pad[5]; cases at 8: {kind, n, stride, pad, int32 acc} x ncases};
 * A (int16[512]) at 512, B (int16[1024]) at 1536, IDX (uint16[512]) at 3584. out: int32 per case. */
static void st_mac(const uint8_t *in, int32_t *out)
{
    uint16_t ncases = *(const uint16_t *)in;
    const int16_t *A = (const int16_t *)(in + 512);
    const int16_t *B = (const int16_t *)(in + 1536);
    const uint16_t *IDX = (const uint16_t *)(in + 3584);
    const uint16_t *c = (const uint16_t *)(in + 8);
    for (uint16_t i = 0; i < ncases; i++, c += 6) {
        int32_t acc = (int32_t)((uint32_t)c[4] | (uint32_t)c[5] << 16);
        if (c[0] == 0)
            out[i] = sn_dot_q15(A, B, c[1], acc);
        else if (c[0] == 1)
            out[i] = sn_dot_q15_strided(A, B, c[1], c[2], acc);
        else
            out[i] = sn_dot_q15_gather(A, IDX, B, c[1], acc);
    }
}

int main(void)
{
    uint16_t n = st_cmd[1];
    switch (st_cmd[0]) {
    case ST_MUL:
        mul_variants[st_cmd[2] & 3u](st_in, n, st_cmd[3], st_cmd[2] >> 8, st_out);
        break;
    case ST_DIV16:
        st_div16((const int16_t *)st_in, n, (int16_t *)st_out);
        break;
    case ST_DIV32:
        st_div32((const int32_t *)st_in, n, (int32_t *)st_out);
        break;
    case ST_DIV64:
        st_div64((const int64_t *)st_in, n, (int64_t *)st_out);
        break;
    case ST_SHIFT:
        st_shift(st_in, n, (int32_t *)st_out);
        break;
    case ST_MULO:
        st_mulo((const int32_t *)st_in, n, st_out);
        break;
    case ST_MEM:
        st_mem(st_in, n, st_out);
        break;
    case ST_MAC:
        st_mac(st_in, (int32_t *)st_out);
        break;
    default:
        return 0xBAD;
    }
    return st_cmd[0];
}
