/* Kept-column list on the multiplier: x[col] is loaded into OP2's partner once per kept column and
 * every row's product is added to its own accumulator (multiply mode: MPYS = w, OP2 = x[col]). */
#include "sn_mpy32.h"

void sn_spmv_cols(const sn_cols_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const int16_t *w = m->values;
    uint16_t n, j, r;
    sn_sum_t span;

    if (level == 0)
        return;
    if (level > m->n_levels)
        level = m->n_levels;
    n = sn_table_get(m->counts, m->counts_u16, level - 1u);
    SN_COUNT(weight_bytes_read, SN_TABLE_BYTES(m->counts_u16));
    sn_sum_open(&span);
    for (j = 0; j < n; j++, w += m->rows) {
        int16_t xc = x[m->col_idx[j]];
        for (r = 0; r < m->rows; r++)
            acc[r] = sn_add32(acc[r], sn_sum_mul(w[r], xc));
        SN_COUNT(macs, m->rows);
        SN_COUNT(weight_bytes_read, 2u + 2u * (uint32_t)m->rows);
    }
    sn_sum_close(&span);
}
