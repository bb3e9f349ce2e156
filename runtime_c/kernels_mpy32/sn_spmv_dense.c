/* Dense Q15 matrix-vector product on the multiplier (one MAC loop per row: 2.5 instructions per
 * product, sn_dot_q15 in boards/msp430fr5994/sn_mac.c). */
#include "sn_mpy32.h"

void sn_spmv_dense(const sn_dense_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const int16_t *w = m->values;
    uint16_t r;

    if (level == 0)
        return;
    for (r = 0; r < m->rows; r++) {
        acc[r] = sn_dot_q15(w, x, m->cols, acc[r]);
        w += m->cols;
        SN_COUNT(macs, m->cols);
        SN_COUNT(weight_bytes_read, 2u * m->cols);
    }
}
