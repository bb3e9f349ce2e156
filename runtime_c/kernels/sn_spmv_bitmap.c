/* Nested bitmap: per row, one bitmap per level of the columns that level adds; the values follow
 * the set bits level by level. */
#include "sn_counters.h"
#include "sn_formats.h"

void sn_spmv_bitmap(const sn_bitmap_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const uint16_t row_bytes = (uint16_t)((m->cols + 7u) / 8u); /* one level's bitmap of one row */
    const int16_t *v = m->values;
    const uint8_t *bm = m->bitmap;
    uint16_t r;

    if (level == 0)
        return;
    if (level > m->n_levels)
        level = m->n_levels;
    for (r = 0; r < m->rows; r++) {
        int32_t sum = 0;
        uint16_t i = 0;
        uint8_t k;

        for (k = 0; k < level; k++) {
            const uint8_t *bits = bm + (uint16_t)(k * row_bytes);
            uint16_t byte;

            for (byte = 0; byte < row_bytes; byte++) {
                uint8_t b = bits[byte];
                uint16_t col = (uint16_t)(byte * 8u);

                for (; b != 0; b >>= 1, col++) {
                    if (b & 1u)
                        sum += (int32_t)v[i++] * x[col];
                }
            }
        }
        SN_COUNT(weight_bytes_read, (uint32_t)level * row_bytes);
        SN_COUNT(macs, i);
        SN_COUNT(weight_bytes_read, 2u * (uint32_t)i);
        if (level < m->n_levels) {
            i = sn_table_get(m->row_nnz, m->row_nnz_u16, r);
            SN_COUNT(weight_bytes_read, SN_TABLE_BYTES(m->row_nnz_u16));
        }
        acc[r] += sum;
        v += i;
        bm += (uint16_t)(m->n_levels * row_bytes);
    }
}

/* Direct convolution (sn_conv_direct.h): the row's entries decoded once per call, run on every window. */
#include "sn_conv_direct.h"

SN_CONV_DEFINE(bitmap, sn_conv_bitmap_impl(m, off, level, x, n_pos, x_step, acc, sink))
