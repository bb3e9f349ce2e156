/* Nested CSR with 8-bit relative column indices on the multiplier: per (row, level) segment a
 * pointer into x walks forward by the deltas (5.5 instructions per product). Padding entries
 * (value 0) are multiplied like any entry, as in the reference kernel. */
#include "sn_mpy32.h"

#if SN_MPY32_ASM
/* sum += v[i] * x[col_i] over one segment of n entries starting at column 0; returns nothing,
 * the caller advances v/d by n */
static inline __attribute__((always_inline)) void rel8_run(const int16_t *v, const uint8_t *d,
                                                           const int16_t *x, uint16_t n)
{
    register const int16_t *pv __asm__("r12") = v;
    register const int16_t *pxw __asm__("r13") = x;
    register const uint8_t *pd __asm__("r14") = d;
    register uint16_t k __asm__("r15") = n;
    register uint16_t t __asm__("r11");
#define REL8_MAC "mov.b @r14+, r11\n\trla r11\n\tadd r11, r13\n\t" SN_MACS_POSTINC(12) "mov @r13, " SN_OP2_STR "\n\t"
    __asm__ volatile("bit #1, r15\n\t"
                     "jz 1f\n\t"
                     REL8_MAC
                     "1:\n\t"
                     "rra r15\n\t"
                     "jz 3f\n\t"
                     "2:\n\t"
                     REL8_MAC REL8_MAC
                     "dec r15\n\t"
                     "jnz 2b\n"
                     "3:"
                     : "+r"(pv), "+r"(pxw), "+r"(pd), "+r"(k), "=&r"(t)
                     :
                     : "memory");
#undef REL8_MAC
}
#endif

void sn_spmv_rel8(const sn_rel8_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
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
        uint16_t i = 0;
        uint16_t n_row;
        uint8_t k;

        sn_sum_clear(&sum);
        for (k = 0; k < level; k++) {
            uint16_t end = sn_table_get(m->counts, m->counts_u16, crow + k);

            SN_COUNT(weight_bytes_read, SN_TABLE_BYTES(m->counts_u16));
            SN_COUNT(macs, end - i);
            SN_COUNT(weight_bytes_read, 3u * (uint32_t)(end - i));
            if (end > i) {
#if SN_MPY32_ASM
                rel8_run(v + i, d + i, x, (uint16_t)(end - i));
#else
                uint16_t col = 0;
                for (uint16_t j = i; j < end; j++) {
                    col += d[j];
                    sn_sum_mac(&sum, v[j], x[col]);
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
        d += n_row;
    }
    sn_sum_close(&sum);
}

/* Direct convolution (sn_conv_direct.h): the row's entries decoded once per call, run on every window. */
#include "sn_conv_direct.h"

SN_CONV_DEFINE(rel8, sn_conv_rel_impl(m->rows, m->n_levels, m->counts, m->counts_u16, m->values, m->deltas, 0, off, level, x, n_pos, x_step, acc, sink))
