/* Nested block-sparse on the multiplier: every row of a kept block is one MAC run over the block's
 * (possibly edge-clipped) width; columns past the matrix edge are padding that is never multiplied.
 * The block's column offset is a multiply (a helper call on the multiplier), so it is computed
 * before the block's sums are opened. */
#include "sn_mpy32.h"

void sn_spmv_block(const sn_block_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const uint16_t bc = m->block_cols;
    const int16_t *v = m->values;
    const uint16_t *bcol = m->block_col;
    uint16_t crow = 0;
    uint16_t r0;
    sn_sum_t sum;

    if (level == 0)
        return;
    if (level > m->n_levels)
        level = m->n_levels;
    sn_sum_open(&sum);
    for (r0 = 0; r0 < m->rows; r0 += m->block_rows, crow += m->n_levels) {
        uint16_t h = (uint16_t)(m->rows - r0) < m->block_rows ? (uint16_t)(m->rows - r0)
                                                               : m->block_rows;
        uint16_t block_size = (uint16_t)(h * bc);
        uint16_t n_row; /* units of all levels, to reach the next row */
        uint16_t n = sn_row_prefix(m->counts, m->counts_u16, crow, level, m->n_levels, &n_row);
        const int16_t *blk0 = v;
        uint16_t i, j;
        for (j = 0; j < n; j++, blk0 += block_size) {
            uint16_t c0 = (uint16_t)(bcol[j] * bc);
            uint16_t w = (uint16_t)(m->cols - c0) < bc ? (uint16_t)(m->cols - c0) : bc;
            const int16_t *blk = blk0;
            const int16_t *xb = x + c0;

            for (i = 0; i < h; i++, blk += bc) {
                sn_sum_clear(&sum);
                for (uint16_t t = 0; t < w; t++)
                    sn_sum_mac(&sum, blk[t], xb[t]);
                acc[r0 + i] = sn_add32(acc[r0 + i], sn_sum_get(&sum));
            }
            SN_COUNT(macs, (uint32_t)h * w);
            SN_COUNT(weight_bytes_read, 2u + 2u * (uint32_t)h * w);
        }
        v += (uint32_t)n_row * block_size;
        bcol += n_row;
    }
    sn_sum_close(&sum);
}

/* Direct convolution (sn_conv_direct.h): the row's entries decoded once per call, run on every window. */
#include "sn_conv_direct.h"

SN_CONV_DEFINE(block, sn_conv_block_impl(m, off, level, x, n_pos, x_step, acc, sink))
