/* Kept-row list: level k uses the first counts[k - 1] kept rows, each a dense row of cols values. */
#include "sn_counters.h"
#include "sn_formats.h"

void sn_spmv_rows(const sn_rows_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const int16_t *w = m->values;
    uint16_t n, j, c;

    if (level == 0)
        return;
    if (level > m->n_levels)
        level = m->n_levels;
    n = sn_table_get(m->counts, m->counts_u16, level - 1u);
    SN_COUNT(weight_bytes_read, SN_TABLE_BYTES(m->counts_u16));
    for (j = 0; j < n; j++, w += m->cols) {
        int32_t sum = 0;
        for (c = 0; c < m->cols; c++)
            sum += (int32_t)w[c] * x[c];
        acc[m->row_idx[j]] += sum;
        SN_COUNT(macs, m->cols);
        SN_COUNT(weight_bytes_read, 2u + 2u * (uint32_t)m->cols);
    }
}
