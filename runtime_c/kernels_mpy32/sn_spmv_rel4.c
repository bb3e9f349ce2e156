/* Nested CSR with 4-bit relative column indices (two per byte, even entry in the low nibble) on the
 * multiplier: 8 instructions per product; the high nibble becomes a byte offset with and + 3 rra.
 * Every (row, level) segment holds an even number of entries, padding (value 0) included. */
#include "sn_mpy32.h"

#if SN_MPY32_ASM
/* sum += products of one segment of 2 * pairs entries starting at column 0 */
static inline __attribute__((always_inline)) void rel4_run(const int16_t *v, const uint8_t *d,
                                                           const int16_t *x, uint16_t pairs)
{
    register const int16_t *pv __asm__("r12") = v;
    register const int16_t *pxw __asm__("r13") = x;
    register const uint8_t *pd __asm__("r14") = d;
    register uint16_t k __asm__("r15") = pairs;
    register uint16_t t __asm__("r11");
    register uint16_t u __asm__("r10");
    __asm__ volatile("1:\n\t"
                     "mov.b @r14+, r11\n\t"
                     "mov r11, r10\n\t"
                     "and #15, r10\n\t"
                     "rla r10\n\t"
                     "add r10, r13\n\t"
                     SN_MACS_POSTINC(12)
                     "mov @r13, " SN_OP2_STR "\n\t"
                     "and #240, r11\n\t"
                     "rra r11\n\t"
                     "rra r11\n\t"
                     "rra r11\n\t"
                     "add r11, r13\n\t"
                     SN_MACS_POSTINC(12)
                     "mov @r13, " SN_OP2_STR "\n\t"
                     "dec r15\n\t"
                     "jnz 1b"
                     : "+r"(pv), "+r"(pxw), "+r"(pd), "+r"(k), "=&r"(t), "=&r"(u)
                     :
                     : "memory");
}
#endif

void sn_spmv_rel4(const sn_rel4_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const int16_t *v = m->values;
    const uint8_t *d = m->deltas;
    uint16_t crow = 0;
    uint16_t r;
    sn_sum_t sum;

    if (level == 0)
        return;
    if (level > m->n_levels)
        level = m->n_levels;
    sn_sum_open(&sum);
    for (r = 0; r < m->rows; r++, crow += m->n_levels) {
        uint16_t i = 0; /* entry index inside the row, even at a segment start */
        uint16_t n_row;
        uint8_t k;

        sn_sum_clear(&sum);
        for (k = 0; k < level; k++) {
            uint16_t end = sn_table_get(m->counts, m->counts_u16, crow + k);

            SN_COUNT(weight_bytes_read, SN_TABLE_BYTES(m->counts_u16));
            SN_COUNT(macs, end - i);
            SN_COUNT(weight_bytes_read, 2u * (uint32_t)(end - i) + (uint32_t)(end - i) / 2u);
            if (end > i) {
#if SN_MPY32_ASM
                rel4_run(v + i, d + (i >> 1), x, (uint16_t)((end - i) >> 1));
#else
                uint16_t col = 0;
                for (uint16_t j = i; j < end; j += 2) {
                    uint8_t pair = d[j >> 1];
                    col += (uint16_t)(pair & 0x0Fu);
                    sn_sum_mac(&sum, v[j], x[col]);
                    col += (uint16_t)(pair >> 4);
                    sn_sum_mac(&sum, v[j + 1u], x[col]);
                }
#endif
                i = end;
            }
        }
        acc[r] = sn_add32(acc[r], sn_sum_get(&sum));
        n_row = i;
        if (level < m->n_levels) {
            n_row = sn_table_get(m->counts, m->counts_u16, crow + m->n_levels - 1u);
            SN_COUNT(weight_bytes_read, SN_TABLE_BYTES(m->counts_u16));
        }
        v += n_row;
        d += n_row / 2u;
    }
    sn_sum_close(&sum);
}

/* Direct convolution (sn_conv_direct.h): the row's entries decoded once per call, run on every window. */
#include "sn_conv_direct.h"

SN_CONV_DEFINE(rel4, sn_conv_rel_impl(m->rows, m->n_levels, m->counts, m->counts_u16, m->values, m->deltas, 1, off, level, x, n_pos, x_step, acc, sink))
