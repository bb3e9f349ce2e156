/* Nested bitmap on the multiplier. Per (row, level) bitmap byte, the low and the high nibble each
 * jump through a 16-entry table to straight-line code that issues one MAC per set bit with the
 * column's offset in x as a constant (`mov 2j(r13), &OP2`): 2 instructions per product plus about
 * 16 per non-zero bitmap byte (5 per zero byte), where the reference kernel tests every bit and
 * calls a multiply helper per product. */
#include "sn_mpy32.h"

#if SN_MPY32_ASM
/* const int16_t *sn_mpy32_bitmap_run(const int16_t *v, const int16_t *x, const uint8_t *bits,
 *                                    uint16_t nbytes)
 * RESHI:RESLO += v[i] * x[col] for the set bits of bits[0..nbytes) (column c: bit c % 8 of byte
 * c / 8), values taken in order from v; returns v past the last value used. Interrupts must be
 * masked and the sum cleared (sn_sum_open, sn_sum_clear). EABI: arguments in r12-r15, r11 scratch, r10 saved.
 * Registers: r12 values (post-increment), r13 x + 8 * byte, r14 bits, r15 bytes left,
 * r11 the byte, r10 the low nibble. */
#define M(off) SN_MACS_POSTINC(12) "mov " #off "(r13), " SN_OP2_STR "\n\t"
#define LO_TAIL "and #240, r11\n\trra r11\n\trra r11\n\trra r11\n\tmov .Lsn_bm_hi(r11), r0\n\t"
#define HI_TAIL "add #16, r13\n\tdec r15\n\tjnz .Lsn_bm_byte\n\tjmp .Lsn_bm_done\n\t"
__asm__(".section .text.sn_mpy32_bitmap_run,\"ax\",@progbits\n\t"
        ".globl sn_mpy32_bitmap_run\n\t"
        ".type sn_mpy32_bitmap_run,@function\n\t"
        ".p2align 1\n"
        "sn_mpy32_bitmap_run:\n\t"
        "push r10\n\t"
        "tst r15\n\t"
        "jnz .Lsn_bm_byte\n\t"
        "jmp .Lsn_bm_done\n\t"
        /* low-nibble handlers (before the loop and the high ones after it: jumps reach +-1 KB) */
    ".Lsn_bm_lo1:\n\t" M(0) LO_TAIL
    ".Lsn_bm_lo2:\n\t" M(2) LO_TAIL
    ".Lsn_bm_lo3:\n\t" M(0) M(2) LO_TAIL
    ".Lsn_bm_lo4:\n\t" M(4) LO_TAIL
    ".Lsn_bm_lo5:\n\t" M(0) M(4) LO_TAIL
    ".Lsn_bm_lo6:\n\t" M(2) M(4) LO_TAIL
    ".Lsn_bm_lo7:\n\t" M(0) M(2) M(4) LO_TAIL
    ".Lsn_bm_lo8:\n\t" M(6) LO_TAIL
    ".Lsn_bm_lo9:\n\t" M(0) M(6) LO_TAIL
    ".Lsn_bm_lo10:\n\t" M(2) M(6) LO_TAIL
    ".Lsn_bm_lo11:\n\t" M(0) M(2) M(6) LO_TAIL
    ".Lsn_bm_lo12:\n\t" M(4) M(6) LO_TAIL
    ".Lsn_bm_lo13:\n\t" M(0) M(4) M(6) LO_TAIL
    ".Lsn_bm_lo14:\n\t" M(2) M(4) M(6) LO_TAIL
    ".Lsn_bm_lo15:\n\t" M(0) M(2) M(4) M(6) LO_TAIL
        ".Lsn_bm_byte:\n\t"
        "mov.b @r14+, r11\n\t"
        "tst.b r11\n\t"
        "jz .Lsn_bm_next\n\t"
        "mov r11, r10\n\t"
        "and #15, r10\n\t"
        "rla r10\n\t"
        "mov .Lsn_bm_lo(r10), r0\n"
        ".Lsn_bm_hidisp:\n\t"
        LO_TAIL
        ".Lsn_bm_next:\n\t"
        HI_TAIL
        ".Lsn_bm_done:\n\t"
        "pop r10\n\t"
        "ret\n\t"
    ".Lsn_bm_hi1:\n\t" M(8) HI_TAIL
    ".Lsn_bm_hi2:\n\t" M(10) HI_TAIL
    ".Lsn_bm_hi3:\n\t" M(8) M(10) HI_TAIL
    ".Lsn_bm_hi4:\n\t" M(12) HI_TAIL
    ".Lsn_bm_hi5:\n\t" M(8) M(12) HI_TAIL
    ".Lsn_bm_hi6:\n\t" M(10) M(12) HI_TAIL
    ".Lsn_bm_hi7:\n\t" M(8) M(10) M(12) HI_TAIL
    ".Lsn_bm_hi8:\n\t" M(14) HI_TAIL
    ".Lsn_bm_hi9:\n\t" M(8) M(14) HI_TAIL
    ".Lsn_bm_hi10:\n\t" M(10) M(14) HI_TAIL
    ".Lsn_bm_hi11:\n\t" M(8) M(10) M(14) HI_TAIL
    ".Lsn_bm_hi12:\n\t" M(12) M(14) HI_TAIL
    ".Lsn_bm_hi13:\n\t" M(8) M(12) M(14) HI_TAIL
    ".Lsn_bm_hi14:\n\t" M(10) M(12) M(14) HI_TAIL
    ".Lsn_bm_hi15:\n\t" M(8) M(10) M(12) M(14) HI_TAIL
        ".size sn_mpy32_bitmap_run, .-sn_mpy32_bitmap_run\n\t"
        ".section .rodata.sn_mpy32_bitmap_tab,\"a\",@progbits\n\t"
        ".p2align 1\n"
        ".Lsn_bm_lo:\n\t"
        ".short .Lsn_bm_hidisp, .Lsn_bm_lo1, .Lsn_bm_lo2, .Lsn_bm_lo3, .Lsn_bm_lo4, .Lsn_bm_lo5, .Lsn_bm_lo6, .Lsn_bm_lo7, .Lsn_bm_lo8, .Lsn_bm_lo9, .Lsn_bm_lo10, .Lsn_bm_lo11, .Lsn_bm_lo12, .Lsn_bm_lo13, .Lsn_bm_lo14, .Lsn_bm_lo15\n"
        ".Lsn_bm_hi:\n\t"
        ".short .Lsn_bm_next, .Lsn_bm_hi1, .Lsn_bm_hi2, .Lsn_bm_hi3, .Lsn_bm_hi4, .Lsn_bm_hi5, .Lsn_bm_hi6, .Lsn_bm_hi7, .Lsn_bm_hi8, .Lsn_bm_hi9, .Lsn_bm_hi10, .Lsn_bm_hi11, .Lsn_bm_hi12, .Lsn_bm_hi13, .Lsn_bm_hi14, .Lsn_bm_hi15\n\t"
        ".text");
#undef M
#undef LO_TAIL
#undef HI_TAIL

const int16_t *sn_mpy32_bitmap_run(const int16_t *v, const int16_t *x, const uint8_t *bits,
                                   uint16_t nbytes);
#endif

void sn_spmv_bitmap(const sn_bitmap_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const uint16_t row_bytes = (uint16_t)((m->cols + 7u) / 8u); /* one level's bitmap of one row */
    const uint16_t row_stride = (uint16_t)(m->n_levels * row_bytes);
    const int16_t *v = m->values;
    const uint8_t *bm = m->bitmap;
    uint16_t r;
    sn_sum_t sum;

    if (level == 0)
        return;
    if (level > m->n_levels)
        level = m->n_levels;
    sn_sum_open(&sum);
    for (r = 0; r < m->rows; r++, bm += row_stride) {
        const int16_t *vr = v;

        sn_sum_clear(&sum);
        /* no multiply while the sum is open: a multiply is a helper call that uses the multiplier */
#if SN_MPY32_ASM
        const uint8_t *bits = bm;
        for (uint8_t k = 0; k < level; k++, bits += row_bytes)
            vr = sn_mpy32_bitmap_run(vr, x, bits, row_bytes);
#else
        const uint8_t *bits = bm;
        for (uint8_t k = 0; k < level; k++, bits += row_bytes) {
            for (uint16_t byte = 0; byte < row_bytes; byte++) {
                uint8_t b = bits[byte];
                for (uint16_t col = (uint16_t)(byte * 8u); b != 0; b >>= 1, col++)
                    if (b & 1u)
                        sn_sum_mac(&sum, *vr++, x[col]);
            }
        }
#endif
        acc[r] = sn_add32(acc[r], sn_sum_get(&sum));
        SN_COUNT(weight_bytes_read, (uint32_t)level * row_bytes);
        SN_COUNT(macs, (uint32_t)(vr - v));
        SN_COUNT(weight_bytes_read, 2u * (uint32_t)(vr - v));
        if (level < m->n_levels) {
            v += sn_table_get(m->row_nnz, m->row_nnz_u16, r);
            SN_COUNT(weight_bytes_read, SN_TABLE_BYTES(m->row_nnz_u16));
        } else {
            v = vr;
        }
    }
    sn_sum_close(&sum);
}

/* Direct convolution (sn_conv_direct.h): the row's entries decoded once per call, run on every window. */
#include "sn_conv_direct.h"

SN_CONV_DEFINE(bitmap, sn_conv_bitmap_impl(m, off, level, x, n_pos, x_step, acc, sink))
