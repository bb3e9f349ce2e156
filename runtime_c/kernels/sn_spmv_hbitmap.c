/* Hierarchical bitmap: the union bitmap row by row and, per kept weight, the chain of sparser stages
 * down to its introducing level (each stage read as one sequential bit stream over the matrix); the
 * weight's value is the next one of its level's value stream. */
#include "sn_counters.h"
#include "sn_formats.h"

void sn_spmv_hbitmap(const sn_hbitmap_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const uint16_t row_bytes = (uint16_t)((m->cols + 7u) / 8u);
    const uint8_t n_levels = m->n_levels;
    const uint8_t *top = m->bitmap;               /* stage n_levels: the union, row by row */
    sn_hbitmap_cursor cur;
    const int16_t *v[SN_HBITMAP_MAX_LEVELS];      /* level j's next value at [j - 1] */
    uint16_t r;
    uint8_t t;

    if (level == 0)
        return;
    if (level > n_levels)
        level = n_levels;
    sn_hbitmap_cursor_init(&cur, m);
    for (t = 0; t < level; t++)
        v[t] = m->values + m->level_start[t];
    SN_COUNT(weight_bytes_read, 2u * (uint32_t)(n_levels - 1u) + 2u * (uint32_t)level);
    for (r = 0; r < m->rows; r++) {
        int32_t sum = 0;
        uint16_t i;

        for (i = 0; i < row_bytes; i++) {
            uint8_t b = *top++;
            uint16_t col = (uint16_t)(i * 8u);

            for (; b != 0; b >>= 1, col++) {
                uint8_t j;

                if (!(b & 1u))
                    continue;
                j = sn_hbitmap_next_level(&cur, n_levels, 1u);
                if (j <= level)
                    sum += (int32_t)*v[j - 1u]++ * x[col];
            }
        }
        acc[r] += sum;
    }
    SN_COUNT(weight_bytes_read, (uint32_t)m->rows * row_bytes);
    for (t = 0; t < level; t++) {
        SN_COUNT(macs, v[t] - (m->values + m->level_start[t]));
        SN_COUNT(weight_bytes_read, 2u * (uint32_t)(v[t] - (m->values + m->level_start[t])));
    }
}

/* Direct convolution (sn_conv_direct.h): the row's entries decoded once per call, run on every window. */
#include "sn_conv_direct.h"

SN_CONV_DEFINE(hbitmap, sn_conv_hbitmap_impl(m, off, level, x, n_pos, x_step, acc, sink))
