/* Kept-column list: level k uses the first counts[k - 1] kept columns, each rows values
 * (column-major), so x[col] is read once per kept column. */
#include "sn_counters.h"
#include "sn_formats.h"

void sn_spmv_cols(const sn_cols_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const int16_t *w = m->values;
    uint16_t n, j, r;

    if (level == 0)
        return;
    if (level > m->n_levels)
        level = m->n_levels;
    n = sn_table_get(m->counts, m->counts_u16, level - 1u);
    SN_COUNT(weight_bytes_read, SN_TABLE_BYTES(m->counts_u16));
    for (j = 0; j < n; j++, w += m->rows) {
        int16_t xc = x[m->col_idx[j]];
        for (r = 0; r < m->rows; r++)
            acc[r] += (int32_t)w[r] * xc;
        SN_COUNT(macs, m->rows);
        SN_COUNT(weight_bytes_read, 2u + 2u * (uint32_t)m->rows);
    }
}
