/* Nested CSR, 16-bit column indices, on the multiplier: per row one MAC run over the first
 * counts[r][level - 1] entries (5.5 instructions per product: weight to MACS with post-increment,
 * index to byte offset, x[col] to OP2). sn_conv_csr16: a direct build's col_idx holds byte offsets
 * into the window, so a row is already what the direct convolutions' shared run takes (sn_conv_run:
 * 4 instructions per product, loop entry computed once per call), once for all n_pos windows. */
#include "sn_mpy32.h"
#include "sn_conv_direct.h" /* sn_conv_run */

#if SN_MPY32_ASM
/* One MAC run: RESHI:RESLO += v[i] * x[ci[i]] for i < r14, with r12 = v, r13 = ci, r11 = x (r12, r13 and
 * r14 advance, r15 is scratch): r14 mod 4 products first, then four per loop. */
#define CSR16_MAC SN_MACS_POSTINC(12) "mov @r13+, r15\n\trla r15\n\tadd r11, r15\n\tmov @r15, " SN_OP2_STR "\n\t"
#define CSR16_RUN                                                                                    \
    "bit #1, r14\n\t"                                                                               \
    "jz 1f\n\t" CSR16_MAC "1:\n\t"                                                                  \
    "bit #2, r14\n\t"                                                                               \
    "jz 2f\n\t" CSR16_MAC CSR16_MAC "2:\n\t"                                                        \
    "rra r14\n\t"                                                                                   \
    "rra r14\n\t"                                                                                   \
    "jz 4f\n"                                                                                       \
    "3:\n\t" CSR16_MAC CSR16_MAC CSR16_MAC CSR16_MAC                                                 \
    "dec r14\n\t"                                                                                   \
    "jnz 3b\n"                                                                                      \
    "4:\n\t"

/* RESHI:RESLO += v[i] * x[ci[i]], i < n (inside an open sum span) */
static inline __attribute__((always_inline)) void csr16_run(const int16_t *v, const uint16_t *ci,
                                                            const int16_t *x, uint16_t n)
{
    register const int16_t *pv __asm__("r12") = v;
    register const uint16_t *pi __asm__("r13") = ci;
    register uint16_t k __asm__("r14") = n;
    register const int16_t *px __asm__("r11") = x;
    register uint16_t t __asm__("r15");
    __asm__ volatile(CSR16_RUN : "+r"(pv), "+r"(pi), "+r"(k), "=&r"(t) : "r"(px) : "memory");
}
#endif

void sn_spmv_csr16(const sn_csr16_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const int16_t *v = m->values;
    const uint16_t *ci = m->col_idx;
    uint16_t crow = 0;
    uint16_t r;
    sn_sum_t sum;

    if (level == 0)
        return;
    if (level > m->n_levels)
        level = m->n_levels;
    sn_sum_open(&sum);
    for (r = 0; r < m->rows; r++, crow += m->n_levels) {
        uint16_t n_row;
        uint16_t n = sn_row_prefix(m->counts, m->counts_u16, crow, level, m->n_levels, &n_row);
        if (n) {
            sn_sum_clear(&sum);
#if SN_MPY32_ASM
            csr16_run(v, ci, x, n);
#else
            for (uint16_t i = 0; i < n; i++)
                sn_sum_mac(&sum, v[i], x[ci[i]]);
#endif
            acc[r] = sn_add32(acc[r], sn_sum_get(&sum));
        }
        SN_COUNT(macs, n);
        SN_COUNT(weight_bytes_read, 4u * (uint32_t)n);
        v += n_row;
        ci += n_row;
    }
    sn_sum_close(&sum);
}

void sn_conv_csr16(const sn_csr16_matrix *m, uint8_t level, const int16_t *x, uint16_t n_pos,
                   uint16_t x_step, int32_t *acc, const sn_conv_sink_t *sink)
{
    sn_conv_csr16_impl(m, level, x, n_pos, x_step, acc, sink);
}
