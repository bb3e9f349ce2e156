/* Dense Q15 matrix-vector product; every level shares one mask, so the level only gates the call. */
#include "sn_counters.h"
#include "sn_formats.h"

void sn_spmv_dense(const sn_dense_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const int16_t *w = m->values;
    uint16_t r, c;

    if (level == 0)
        return;
    for (r = 0; r < m->rows; r++) {
        int32_t sum = 0;
        for (c = 0; c < m->cols; c++)
            sum += (int32_t)w[c] * x[c];
        acc[r] += sum;
        w += m->cols;
        SN_COUNT(macs, m->cols);
        SN_COUNT(weight_bytes_read, 2u * m->cols);
    }
}
