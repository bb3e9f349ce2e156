/* PCONV pattern-sparse convolution weights: per filter, kept kernels ordered by level then channel;
 * each kernel is a pattern id into the layer's table, its channel, and one value per pattern position. */
#include "sn_counters.h"
#include "sn_formats.h"

void sn_spmv_pattern(const sn_pattern_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const uint16_t kernel_size = (uint16_t)(m->kernel_h * m->kernel_w);
    const int16_t *v = m->values;
    const uint8_t *pid = m->pattern_id;
    const uint16_t *chan = m->chan_idx;
    uint16_t crow = 0;
    uint16_t r;

    if (level == 0)
        return;
    if (level > m->n_levels)
        level = m->n_levels;
    for (r = 0; r < m->rows; r++, crow += m->n_levels) {
        uint16_t n_row; /* units of all levels, to reach the next row */
        uint16_t n = sn_row_prefix(m->counts, m->counts_u16, crow, level, m->n_levels, &n_row);
        const int16_t *vk = v;    /* this kernel's values */
        int32_t sum = 0;
        uint16_t j;
        for (j = 0; j < n; j++) {
            uint8_t p = pid[j];
            uint8_t len = m->pattern_len[p];
            const uint8_t *pos = m->pattern_pos + (uint16_t)(p * m->pattern_stride);
            const int16_t *xk = x + (uint16_t)(chan[j] * kernel_size);
            uint8_t t;

            for (t = 0; t < len; t++)
                sum += (int32_t)vk[t] * xk[pos[t]];
            vk += len;
            SN_COUNT(macs, len);
            SN_COUNT(weight_bytes_read, 4u + 3u * (uint32_t)len);
        }
        if (level < m->n_levels) {
            v += sn_table_get(m->row_values, m->row_values_u16, r);
            SN_COUNT(weight_bytes_read, SN_TABLE_BYTES(m->row_values_u16));
        } else {
            v = vk;
        }
        acc[r] += sum;
        pid += n_row;
        chan += n_row;
    }
}

/* Direct convolution (sn_conv_direct.h): the row's entries decoded once per call, run on every window. */
#include "sn_conv_direct.h"

SN_CONV_DEFINE(pattern, sn_conv_pattern_impl(m, off, level, x, n_pos, x_step, acc, sink))
