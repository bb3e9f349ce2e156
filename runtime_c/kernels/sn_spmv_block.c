/* Nested block-sparse: per block row, kept blocks ordered by level then block column. A block of a
 * block row of height h holds h * block_cols values row-major; columns past the matrix edge are zero
 * padding that the kernel skips. */
#include "sn_counters.h"
#include "sn_formats.h"

void sn_spmv_block(const sn_block_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const int16_t *v = m->values;
    const uint16_t *bcol = m->block_col;
    uint16_t crow = 0;
    uint16_t r0;

    if (level == 0)
        return;
    if (level > m->n_levels)
        level = m->n_levels;
    for (r0 = 0; r0 < m->rows; r0 += m->block_rows, crow += m->n_levels) {
        uint16_t h = (uint16_t)(m->rows - r0) < m->block_rows ? (uint16_t)(m->rows - r0)
                                                               : m->block_rows;
        uint16_t block_size = (uint16_t)(h * m->block_cols);
        uint16_t n_row; /* units of all levels, to reach the next row */
        uint16_t n = sn_row_prefix(m->counts, m->counts_u16, crow, level, m->n_levels, &n_row);
        const int16_t *blk0 = v; /* first value of block j */
        uint16_t j;
        for (j = 0; j < n; j++, blk0 += block_size) {
            uint16_t c0 = (uint16_t)(bcol[j] * m->block_cols);
            uint16_t w = (uint16_t)(m->cols - c0) < m->block_cols ? (uint16_t)(m->cols - c0)
                                                                   : m->block_cols;
            const int16_t *blk = blk0;
            const int16_t *xb = x + c0;
            uint16_t i, t;

            for (i = 0; i < h; i++, blk += m->block_cols) {
                int32_t sum = 0;
                for (t = 0; t < w; t++)
                    sum += (int32_t)blk[t] * xb[t];
                acc[r0 + i] += sum;
            }
            SN_COUNT(macs, (uint32_t)h * w);
            SN_COUNT(weight_bytes_read, 2u + 2u * (uint32_t)h * w);
        }
        v += (uint32_t)n_row * block_size;
        bcol += n_row;
    }
}

/* Direct convolution (sn_conv_direct.h): the row's entries decoded once per call, run on every window. */
#include "sn_conv_direct.h"

SN_CONV_DEFINE(block, sn_conv_block_impl(m, off, level, x, n_pos, x_step, acc, sink))
