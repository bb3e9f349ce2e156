/* Kept-row list on the multiplier: one dense MAC run (sn_dot_q15, 2.5 instructions per product)
 * per kept row of levels 1..level. */
#include "sn_mpy32.h"

void sn_spmv_rows(const sn_rows_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const int16_t *w = m->values;
    uint16_t n, j;

    if (level == 0)
        return;
    if (level > m->n_levels)
        level = m->n_levels;
    n = sn_table_get(m->counts, m->counts_u16, level - 1u);
    SN_COUNT(weight_bytes_read, SN_TABLE_BYTES(m->counts_u16));
    for (j = 0; j < n; j++, w += m->cols) {
        uint16_t r = m->row_idx[j];
        acc[r] = sn_dot_q15(w, x, m->cols, acc[r]);
        SN_COUNT(macs, m->cols);
        SN_COUNT(weight_bytes_read, 2u + 2u * (uint32_t)m->cols);
    }
}
