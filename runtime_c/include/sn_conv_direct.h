/* Direct convolutions for the formats whose column positions are reconstructible (bitmap, rel8,
 * rel4): shared by both kernel back-ends (runtime_c/kernels, runtime_c/kernels_mpy32).
 *
 * Per row the entries of levels 1..level are decoded once per call into a small piece of (value, byte
 * offset of its input sample) pairs, with the column mapped through the layer's offset table
 * `off[col]` (bytes into the window read: codegen_lower.direct_conv); each piece then runs on all
 * n_pos windows of the call (sn_conv_run, defined by the including back-end before this header):
 *   acc[r * n_pos + p] += sum over row r's entries of w * x[p * x_step + off[col] / 2].
 * Decoding costs a few instructions per entry and call, the products run as in csr16's direct conv
 * without the index shift. Entries whose value is 0 (rel8/rel4 gap padding) are skipped: exact, and
 * their column may lie past the table. Counters count what the matrix-vector kernel counts, per window. */
#ifndef SN_CONV_DIRECT_H
#define SN_CONV_DIRECT_H

#include <stdint.h>

#include "sn_counters.h"
#include "sn_formats.h"

#define SN_CONV_PIECE 32u /* entries decoded at a time (128 bytes of stack) */

typedef struct {
    int16_t v[SN_CONV_PIECE];
    uint16_t o[SN_CONV_PIECE];   /* byte offsets into the window */
    uint16_t n;
    const int16_t *x;
    uint16_t n_pos, x_step;
    int32_t *acc;                /* the row's n_pos accumulators */
} sn_conv_piece_t;

/* The run over n_pos windows: acc[p] += sum_i v[i] * x[p * x_step + o[i] / 2], n >= 1, sums modulo
 * 2^32. A back-end with a faster one defines SN_CONV_RUN_BACKEND and it (kernels_mpy32/sn_mpy32.h). */
#ifndef SN_CONV_RUN_BACKEND
static inline void sn_conv_run(const int16_t *v, const uint16_t *o, uint16_t n, const int16_t *x,
                               uint16_t n_pos, uint16_t x_step, int32_t *acc)
{
    uint16_t p, i;
    for (p = 0; p < n_pos; p++, x += x_step) {
        uint32_t s = (uint32_t)acc[p];
        for (i = 0; i < n; i++)
            s += (uint32_t)((int32_t)v[i] * *(const int16_t *)((const uint8_t *)x + o[i]));
        acc[p] = (int32_t)s;
    }
}
#endif

static __attribute__((noinline)) void sn_conv_flush(sn_conv_piece_t *pc)
{
    if (pc->n)
        sn_conv_run(pc->v, pc->o, pc->n, pc->x, pc->n_pos, pc->x_step, pc->acc);
    pc->n = 0;
}

static inline void sn_conv_push(sn_conv_piece_t *pc, int16_t v, uint16_t o)
{
    if (v == 0)
        return;
    pc->v[pc->n] = v;
    pc->o[pc->n] = o;
    if (++pc->n == SN_CONV_PIECE)
        sn_conv_flush(pc);
}

static inline uint8_t sn_conv_setup(sn_conv_piece_t *pc, uint8_t level, uint8_t n_levels, const int16_t *x,
                                    uint16_t n_pos, uint16_t x_step, int32_t *acc)
{
    pc->n = 0;
    pc->x = x;
    pc->n_pos = n_pos;
    pc->x_step = x_step;
    pc->acc = acc;
    return level > n_levels ? n_levels : level;
}

static inline void sn_conv_bitmap_impl(const sn_bitmap_matrix *m, const uint16_t *off, uint8_t level,
                                       const int16_t *x, uint16_t n_pos, uint16_t x_step, int32_t *acc)
{
    const uint16_t row_bytes = (uint16_t)((m->cols + 7u) / 8u);
    const int16_t *v = m->values;
    const uint8_t *bm = m->bitmap;
    sn_conv_piece_t pc;
    uint16_t r;

    if (level == 0 || n_pos == 0)
        return;
    level = sn_conv_setup(&pc, level, m->n_levels, x, n_pos, x_step, acc);
    for (r = 0; r < m->rows; r++, pc.acc += n_pos) {
        const uint8_t *bits = bm;
        const int16_t *vr = v;
        uint8_t k;
        for (k = 0; k < level; k++) {
            const uint16_t *ob = off;
            uint16_t byte;
            for (byte = 0; byte < row_bytes; byte++, ob += 8) {
                uint8_t b = *bits++;
                const uint16_t *o = ob;
                for (; b; b >>= 1, o++)
                    if (b & 1u)
                        sn_conv_push(&pc, *vr++, *o);
            }
        }
        sn_conv_flush(&pc);
        SN_COUNT(weight_bytes_read, (uint32_t)n_pos * level * row_bytes);
        SN_COUNT(macs, (uint32_t)n_pos * (uint16_t)(vr - v));
        SN_COUNT(weight_bytes_read, 2u * (uint32_t)n_pos * (uint16_t)(vr - v));
        if (level < m->n_levels) {
            v += sn_table_get(m->row_nnz, m->row_nnz_u16, r);
            SN_COUNT(weight_bytes_read, (uint32_t)n_pos * SN_TABLE_BYTES(m->row_nnz_u16));
        } else {
            v = vr;
        }
        bm += (uint16_t)(m->n_levels * row_bytes);
    }
}

/* rel8 (nibbles = 0) and rel4 (nibbles = 1): per (row, level) segment the columns restart at 0. */
static inline void sn_conv_rel_impl(uint16_t rows, uint8_t n_levels, const void *counts, uint8_t counts_u16,
                                    const int16_t *v, const uint8_t *d, uint8_t nibbles, const uint16_t *off,
                                    uint8_t level, const int16_t *x, uint16_t n_pos, uint16_t x_step,
                                    int32_t *acc)
{
    uint16_t crow = 0, r;
    sn_conv_piece_t pc;

    if (level == 0 || n_pos == 0)
        return;
    level = sn_conv_setup(&pc, level, n_levels, x, n_pos, x_step, acc);
    for (r = 0; r < rows; r++, crow += n_levels, pc.acc += n_pos) {
        uint16_t i = 0, n_row;
        uint8_t k;
        for (k = 0; k < level; k++) {
            const uint16_t end = sn_table_get(counts, counts_u16, (uint16_t)(crow + k));
            uint16_t col = 0;
            SN_COUNT(weight_bytes_read, (uint32_t)n_pos * SN_TABLE_BYTES(counts_u16));
            SN_COUNT(macs, (uint32_t)n_pos * (uint16_t)(end - i));
            SN_COUNT(weight_bytes_read, (uint32_t)n_pos * (nibbles ? 2u * (uint32_t)(end - i) + (end - i) / 2u
                                                                  : 3u * (uint32_t)(end - i)));
            if (nibbles) {
                for (; i < end; i += 2) {
                    const uint8_t pair = d[i >> 1];
                    col = (uint16_t)(col + (pair & 0x0Fu));
                    if (v[i])
                        sn_conv_push(&pc, v[i], off[col]);
                    col = (uint16_t)(col + (pair >> 4));
                    if (v[i + 1u])
                        sn_conv_push(&pc, v[i + 1u], off[col]);
                }
            } else {
                for (; i < end; i++) {
                    col = (uint16_t)(col + d[i]);
                    if (v[i])
                        sn_conv_push(&pc, v[i], off[col]);
                }
            }
        }
        sn_conv_flush(&pc);
        n_row = i;
        if (level < n_levels) {
            n_row = sn_table_get(counts, counts_u16, (uint16_t)(crow + n_levels - 1u));
            SN_COUNT(weight_bytes_read, (uint32_t)n_pos * SN_TABLE_BYTES(counts_u16));
        }
        v += n_row;
        d += nibbles ? n_row / 2u : n_row;
    }
}

#endif
