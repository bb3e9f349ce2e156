/* Nested sparse weight formats: one struct per format and one reference kernel each
 * (runtime_c/kernels/sn_spmv_<format>.c). The encoder is sparsenest.compiler.formats; its module
 * docstring is the byte-level definition of every array below.
 *
 * Levels run 1..n_levels from sparsest to densest. Inside every segment row (a matrix row, a block row,
 * or the whole matrix for the rows/cols lists) the stored units are ordered by introducing level, so
 * level k reads a prefix of every row. counts[r * n_levels + k - 1] is the cumulative number of units
 * row r uses at level k; the kernels step over the unused tail with the row total (k = n_levels).
 *
 * Every kernel:  acc[r] += sum over row r's entries of levels 1..level of w * x[col],  r in [0, rows).
 * level 0 computes nothing; a level above n_levels is treated as n_levels. Kernels count
 * SN_COUNT(macs, products computed) and SN_COUNT(weight_bytes_read, bytes of values, indices and
 * metadata loaded) when built with -DSN_COUNTERS.
 *
 * Written for a 16-bit target: int is 16 bits there, so every width is explicit. */
#ifndef SN_FORMATS_H
#define SN_FORMATS_H

#include <stdint.h>

#include "sn_counters.h"

/* Small per-row tables (counts, row totals) are stored as uint8_t when every entry fits, else as
 * uint16_t, so the bytes in FRAM are exactly what the encoder accounted; the struct's *_u16 flag says
 * which. */
static inline uint16_t sn_table_get(const void *table, uint8_t is_u16, uint16_t i)
{
    return is_u16 ? ((const uint16_t *)table)[i] : (uint16_t)((const uint8_t *)table)[i];
}

#define SN_TABLE_BYTES(is_u16) ((is_u16) ? 2u : 1u)

/* From a cumulative counts table [rows][n_levels] (crow = r * n_levels): the entries row r reads at
 * `level` (1..n_levels), returned, and its entries over all levels in *n_row (to reach the next row).
 * Counts the table bytes read. */
static inline uint16_t sn_row_prefix(const void *counts, uint8_t is_u16, uint16_t crow, uint8_t level,
                                     uint8_t n_levels, uint16_t *n_row)
{
    uint16_t n = sn_table_get(counts, is_u16, (uint16_t)(crow + level - 1u));
    SN_COUNT(weight_bytes_read, SN_TABLE_BYTES(is_u16));
    *n_row = n;
    if (level < n_levels) {
        *n_row = sn_table_get(counts, is_u16, (uint16_t)(crow + n_levels - 1u));
        SN_COUNT(weight_bytes_read, SN_TABLE_BYTES(is_u16));
    }
    return n;
}

/* Every level has the same mask; pruned positions hold 0. values: rows * cols, row-major. */
typedef struct {
    uint16_t rows, cols;
    uint8_t n_levels;
    const int16_t *values;
} sn_dense_matrix;

/* Per entry: value + absolute column. */
typedef struct {
    uint16_t rows, cols;
    uint8_t n_levels;
    uint8_t counts_u16;
    const void *counts;        /* [rows * n_levels] cumulative entries per level */
    const int16_t *values;
    const uint16_t *col_idx;
} sn_csr16_matrix;

/* Per entry: value + 8-bit column delta, relative to the previous entry of the same (row, level)
 * segment; a segment's first delta is relative to column 0. Gaps over 255 use padding entries
 * (delta 255, value 0). */
typedef struct {
    uint16_t rows, cols;
    uint8_t n_levels;
    uint8_t counts_u16;
    const void *counts;        /* [rows * n_levels] cumulative entries (padding included) */
    const int16_t *values;
    const uint8_t *deltas;
} sn_rel8_matrix;

/* As rel8 with 4-bit deltas, two per byte (even entry: low nibble); every (row, level) segment has an
 * even number of entries (padding: delta 0 or 15, value 0). */
typedef struct {
    uint16_t rows, cols;
    uint8_t n_levels;
    uint8_t counts_u16;
    const void *counts;        /* [rows * n_levels] cumulative entries (padding included) */
    const int16_t *values;
    const uint8_t *deltas;     /* [entries / 2] */
} sn_rel4_matrix;

/* Per row and level, a bitmap of the columns that level adds (column c: bit c % 8 of byte c / 8);
 * values follow the set bits, level by level. */
typedef struct {
    uint16_t rows, cols;
    uint8_t n_levels;
    uint8_t row_nnz_u16;
    const void *row_nnz;       /* [rows] values per row over all levels */
    const int16_t *values;
    const uint8_t *bitmap;     /* [rows * n_levels * ceil(cols / 8)] */
} sn_bitmap_matrix;

/* Kept block_rows x block_cols blocks; a block row's kept blocks ordered by level, then column.
 * A block of a block row of height h stores h * block_cols values row-major (a partial last block
 * column is zero-padded to block_cols and the padding is never multiplied). */
typedef struct {
    uint16_t rows, cols;
    uint8_t n_levels;
    uint16_t block_rows, block_cols;
    uint8_t counts_u16;
    const void *counts;        /* [ceil(rows / block_rows) * n_levels] cumulative blocks */
    const int16_t *values;
    const uint16_t *block_col; /* block-column index per kept block */
} sn_block_matrix;

/* Kept-row list ordered by level, then row: row_idx[j] and its cols values. */
typedef struct {
    uint16_t rows, cols;
    uint8_t n_levels;
    uint8_t counts_u16;
    const void *counts;        /* [n_levels] cumulative kept rows */
    const int16_t *values;
    const uint16_t *row_idx;
} sn_rows_matrix;

/* Kept-column list ordered by level, then column: col_idx[j] and its rows values (column-major). */
typedef struct {
    uint16_t rows, cols;
    uint8_t n_levels;
    uint8_t counts_u16;
    const void *counts;        /* [n_levels] cumulative kept columns */
    const int16_t *values;
    const uint16_t *col_idx;
} sn_cols_matrix;

/* PCONV patterns: rows = filters, cols = channels * kernel_h * kernel_w. Per kept kernel (filter,
 * channel): a pattern id, the channel, and pattern_len[id] values at kernel positions
 * pattern_pos[id * pattern_stride + t] (= ky * kernel_w + kx). */
typedef struct {
    uint16_t rows, cols;
    uint8_t n_levels;
    uint8_t kernel_h, kernel_w;
    uint16_t n_patterns;
    uint8_t pattern_stride;
    uint8_t counts_u16;
    const void *counts;        /* [rows * n_levels] cumulative kept kernels */
    uint8_t row_values_u16;
    const void *row_values;    /* [rows] values per filter over all levels */
    const int16_t *values;
    const uint8_t *pattern_id;
    const uint16_t *chan_idx;
    const uint8_t *pattern_len; /* [n_patterns] */
    const uint8_t *pattern_pos; /* [n_patterns * pattern_stride] */
} sn_pattern_matrix;

/* Hierarchical bitmap of the level map (near its entropy bound). bitmap holds n_levels stages: stage
 * n_levels (offset 0) is the union, ceil(cols / 8) bytes per row (column c: bit c % 8 of byte c / 8);
 * stage t < n_levels (at byte stage_off[t - 1]) has one bit per weight kept at level t + 1, row-major
 * over the whole matrix, set when that weight is also kept at level t. values are level-major (every
 * weight introduced at level 1, row-major, then level 2, ...), level j's first at level_start[j - 1],
 * so level k reads a prefix of values; every level reads all stages. */
#define SN_HBITMAP_MAX_LEVELS 8 /* one value and one bit cursor per level (formats.HBITMAP_MAX_LEVELS) */
typedef struct {
    uint16_t rows, cols;
    uint8_t n_levels;
    const int16_t *values;
    const uint8_t *bitmap;
    const uint16_t *stage_off;   /* [n_levels] byte offset of stage t at [t - 1] (stage n_levels: 0) */
    const uint16_t *level_start; /* [n_levels] first value of level j at [j - 1] */
} sn_hbitmap_matrix;

/* hbitmap decoding, one kept weight of the union at a time: its introducing level (one sparser while the
 * next stage's bit is set), advancing each stage's bit cursor; stage bytes loaded count `per` each. */
typedef struct {
    const uint8_t *stage[SN_HBITMAP_MAX_LEVELS]; /* stage t at [t - 1]: next byte to load */
    uint8_t byte[SN_HBITMAP_MAX_LEVELS];         /* stage t's current byte ... */
    uint8_t mask[SN_HBITMAP_MAX_LEVELS];         /* ... and its next bit (0: load the next byte) */
} sn_hbitmap_cursor;

static inline void sn_hbitmap_cursor_init(sn_hbitmap_cursor *c, const sn_hbitmap_matrix *m)
{
    uint8_t t;
    for (t = 0; t + 1u < m->n_levels; t++) {
        c->stage[t] = m->bitmap + m->stage_off[t];
        c->mask[t] = 0;
        c->byte[t] = 0;
    }
}

static inline uint8_t sn_hbitmap_next_level(sn_hbitmap_cursor *c, uint8_t n_levels, uint16_t per)
{
    uint8_t j = n_levels;
    (void)per;
    while (j > 1u) {
        const uint8_t t = (uint8_t)(j - 2u); /* stage j - 1 */
        if (c->mask[t] == 0) {
            c->byte[t] = *c->stage[t]++;
            c->mask[t] = 1;
            SN_COUNT(weight_bytes_read, per);
        }
        if (!(c->byte[t] & c->mask[t])) {
            c->mask[t] = (uint8_t)(c->mask[t] << 1);
            break;
        }
        c->mask[t] = (uint8_t)(c->mask[t] << 1);
        j--;
    }
    return j;
}

void sn_spmv_dense(const sn_dense_matrix *m, uint8_t level, const int16_t *x, int32_t *acc);
void sn_spmv_csr16(const sn_csr16_matrix *m, uint8_t level, const int16_t *x, int32_t *acc);
void sn_spmv_rel8(const sn_rel8_matrix *m, uint8_t level, const int16_t *x, int32_t *acc);
void sn_spmv_rel4(const sn_rel4_matrix *m, uint8_t level, const int16_t *x, int32_t *acc);
void sn_spmv_bitmap(const sn_bitmap_matrix *m, uint8_t level, const int16_t *x, int32_t *acc);
void sn_spmv_block(const sn_block_matrix *m, uint8_t level, const int16_t *x, int32_t *acc);
void sn_spmv_rows(const sn_rows_matrix *m, uint8_t level, const int16_t *x, int32_t *acc);
void sn_spmv_cols(const sn_cols_matrix *m, uint8_t level, const int16_t *x, int32_t *acc);
void sn_spmv_pattern(const sn_pattern_matrix *m, uint8_t level, const int16_t *x, int32_t *acc);
void sn_spmv_hbitmap(const sn_hbitmap_matrix *m, uint8_t level, const int16_t *x, int32_t *acc);

/* Direct convolution (no im2col): the matrix's column indices are offsets into the input window, and
 * one call covers n_pos windows x_step elements apart:
 *   acc[r * n_pos + p] += sum over row r's entries of levels 1..level of w * x[p * x_step + idx / 2].
 * csr16's indices are the offsets themselves, in bytes (x + idx / 2).
 * With a sink (not NULL) the kernel finishes the layer instead: each row's sums start from the sink's
 * bias + 2^(shift-1) (on the MPY32: preloaded into the result registers) and are requantised as they
 * leave the multiplier into out[r * out_plane + p]; acc is then only scratch between a row's pieces. */
typedef struct {
    const int32_t *bias;   /* [rows] */
    int16_t *out;          /* row 0, window 0 (SRAM) */
    uint16_t out_plane;    /* elements between two rows' outputs */
    int8_t shift;          /* requantise shift, 1..15 (others take the acc path) */
    uint16_t m;            /* 2^(16 - shift) */
    int16_t bound;         /* 2^(shift - 1): the rounding half and the saturation bound of the high word */
    int16_t floor, top;    /* output clamp: ReLU (0) or -32768; ReLU6 bound or 32767 */
} sn_conv_sink_t;
/* The sink of rows [r0, ...): the same layer seen from a tile of rows (upper-FRAM tiles). */
static inline const sn_conv_sink_t *sn_conv_sink_rows(const sn_conv_sink_t *s, uint16_t r0, sn_conv_sink_t *tmp)
{
    if (!s || !r0)
        return s;
    *tmp = *s;
    tmp->bias += r0;
    tmp->out += (uint16_t)(r0 * s->out_plane);
    return tmp;
}
void sn_conv_csr16(const sn_csr16_matrix *m, uint8_t level, const int16_t *x, uint16_t n_pos,
                   uint16_t x_step, int32_t *acc, const sn_conv_sink_t *sink);
/* Formats whose columns are reconstructed (sn_conv_direct.h): off[col] is the byte offset of column
 * col's input sample in the window (a table per layer, shared by its rows and levels). */
#define SN_CONV_DECL(F) \
    void sn_conv_##F(const sn_##F##_matrix *m, const uint16_t *off, uint8_t level, const int16_t *x, \
                     uint16_t n_pos, uint16_t x_step, int32_t *acc, const sn_conv_sink_t *sink)
SN_CONV_DECL(bitmap);
SN_CONV_DECL(rel8);
SN_CONV_DECL(rel4);
SN_CONV_DECL(block);
SN_CONV_DECL(pattern);
SN_CONV_DECL(hbitmap);

#endif
