/* Nested CSR with 16-bit column indices: row r's entries for levels 1..level are the first
 * counts[r][level - 1] entries of that row. sn_conv_csr16 is the same walk over n_pos windows of a
 * direct (im2col-free) convolution: there the indices are offsets into the (padded) input. */
#include "sn_counters.h"
#include "sn_formats.h"
#include "sn_conv_direct.h" /* sn_conv_csr16_impl */

void sn_spmv_csr16(const sn_csr16_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const int16_t *v = m->values;
    const uint16_t *ci = m->col_idx;
    uint16_t crow = 0; /* index of row r's first count */
    uint16_t r, i;

    if (level == 0)
        return;
    if (level > m->n_levels)
        level = m->n_levels;
    for (r = 0; r < m->rows; r++, crow += m->n_levels) {
        uint16_t n_row;
        uint16_t n = sn_row_prefix(m->counts, m->counts_u16, crow, level, m->n_levels, &n_row);
        int32_t sum = 0;
        for (i = 0; i < n; i++)
            sum += (int32_t)v[i] * x[ci[i]];
        acc[r] += sum;
        SN_COUNT(macs, n);
        SN_COUNT(weight_bytes_read, 4u * (uint32_t)n);
        v += n_row;
        ci += n_row;
    }
}

void sn_conv_csr16(const sn_csr16_matrix *m, uint8_t level, const int16_t *x, uint16_t n_pos,
                   uint16_t x_step, int32_t *acc, const sn_conv_sink_t *sink)
{
    sn_conv_csr16_impl(m, level, x, n_pos, x_step, acc, sink);
}
