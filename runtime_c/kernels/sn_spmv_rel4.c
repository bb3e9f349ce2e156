/* Nested CSR with 4-bit relative column indices, two per byte (even entry in the low nibble).
 * Every (row, level) segment has an even number of entries, so the kernel consumes whole bytes:
 * one byte, two entries. Padding entries (value 0) are multiplied like any entry. */
#include "sn_counters.h"
#include "sn_formats.h"

void sn_spmv_rel4(const sn_rel4_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const int16_t *v = m->values;
    const uint8_t *d = m->deltas;
    uint16_t crow = 0;
    uint16_t r;

    if (level == 0)
        return;
    if (level > m->n_levels)
        level = m->n_levels;
    for (r = 0; r < m->rows; r++, crow += m->n_levels) {
        int32_t sum = 0;
        uint16_t i = 0; /* entry index inside the row, always even at a segment start */
        uint16_t n_row;
        uint8_t k;

        for (k = 0; k < level; k++) {
            uint16_t end = sn_table_get(m->counts, m->counts_u16, crow + k);
            uint16_t col = 0;

            SN_COUNT(weight_bytes_read, SN_TABLE_BYTES(m->counts_u16));
            SN_COUNT(macs, end - i);
            SN_COUNT(weight_bytes_read, 2u * (uint32_t)(end - i) + (uint32_t)(end - i) / 2u);
            for (; i < end; i += 2) {
                uint8_t pair = d[i >> 1];
                col += (uint16_t)(pair & 0x0Fu);
                sum += (int32_t)v[i] * x[col];
                col += (uint16_t)(pair >> 4);
                sum += (int32_t)v[i + 1u] * x[col];
            }
        }
        n_row = i;
        if (level < m->n_levels) {
            n_row = sn_table_get(m->counts, m->counts_u16, crow + m->n_levels - 1u);
            SN_COUNT(weight_bytes_read, SN_TABLE_BYTES(m->counts_u16));
        }
        acc[r] += sum;
        v += n_row;
        d += n_row / 2u;
    }
}

/* Direct convolution (sn_conv_direct.h): the row's entries decoded once per call, run on every window. */
#include "sn_conv_direct.h"

SN_CONV_DEFINE(rel4, sn_conv_rel_impl(m->rows, m->n_levels, m->counts, m->counts_u16, m->values, m->deltas, 1, off, level, x, n_pos, x_step, acc, sink))
