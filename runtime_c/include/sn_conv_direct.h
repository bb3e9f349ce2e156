/* Direct convolutions for the formats whose column positions are absolute or reconstructible (csr16,
 * bitmap, rel8, rel4, block, pattern, hbitmap): shared by both kernel back-ends (runtime_c/kernels,
 * runtime_c/kernels_mpy32).
 *
 * Per row the entries of levels 1..level are decoded once per call into a small piece of (value, byte
 * offset of its input sample) pairs, with the column mapped through the layer's offset table
 * `off[col]` (bytes into the window read: codegen_lower.direct_conv); each piece then runs on all
 * n_pos windows of the call (sn_conv_run):
 *   acc[r * n_pos + p] += sum over row r's entries of w * x[p * x_step + off[col] / 2].
 * With a sink (sn_formats.h) the row's sums start from its bias and the last piece requantises them
 * straight into the output (sn_conv_requant), so there is no bias pass, no accumulator read back and no
 * separate requantisation loop; on the MPY32 the bias is preloaded into RESHI:RESLO and the sum is
 * requantised as it is read out of them. Entries whose value is 0 (rel8/rel4 gap padding, zeros inside
 * kept blocks) are skipped: exact, and a gap's column may lie past the table. Counters count what the
 * matrix-vector kernel counts, per window. */
#ifndef SN_CONV_DIRECT_H
#define SN_CONV_DIRECT_H

#include <stdint.h>

#include "sn_counters.h"
#include "sn_formats.h"

#define SN_CONV_PIECE 32u /* entries decoded at a time (128 bytes of stack) */
/* The run and the piece helpers are included by every format's kernel file: weak, so an image links
 * one copy (the others are dropped with their sections), where static would link one per format. */
#define SN_CONV_SHARED __attribute__((weak, noinline))

/* One row's run over the call's windows. */
typedef struct {
    const int16_t *x;             /* window 0 */
    uint16_t n_pos, x_step;
    int32_t *acc;                 /* the row's n_pos sums (with a sink: between the row's pieces only) */
    const sn_conv_sink_t *sink;   /* NULL: acc[p] += the sums */
    const int32_t *bias;          /* sink: the row's bias */
    int16_t *out;                 /* sink: the row's first output */
    uint8_t first;                /* sink: no piece of the row ran yet (the sums start from the bias) */
} sn_conv_job_t;

typedef struct {
    int16_t v[SN_CONV_PIECE];
    uint16_t o[SN_CONV_PIECE];   /* byte offsets into the window */
    uint16_t n;
    sn_conv_job_t j;
} sn_conv_piece_t;

/* golden.requantize with shift k->shift in 1..15, then the clamp, of a sum that started from
 * bias + 2^(s-1): t = acc + 2^(s-1) modulo 2^32, y = sat16(t >> s). |acc| < 2^31 (quantize.py), so a t
 * that wrapped (acc + 2^(s-1) >= 2^31) has high word -32768 and low word < 2^(s-1), which no
 * unwrapped t has: it saturates high. Otherwise t saturates exactly when its high word is outside
 * [-2^(s-1), 2^(s-1)); with a ReLU every negative t gives 0 without the shift. The in-range shift is
 * SN_CONV_SHR(lo, hi, k) = (int16_t)((hi:lo) >> shift). The MPY32 run below does the same steps in
 * assembly, the shift as two 16x16 products. */
#define SN_CONV_SHR(lo, hi, k) ((int16_t)((int32_t)(((uint32_t)(uint16_t)(hi) << 16) | (lo)) >> (k)->shift))

static inline __attribute__((always_inline)) int16_t sn_conv_requant(uint16_t lo, int16_t hi,
                                                                     const sn_conv_sink_t *k)
{
    int16_t y;
    if (hi < 0) {
        if (hi == -32768 && lo < (uint16_t)k->bound)
            return k->top;                        /* wrapped: acc + 2^(s-1) >= 2^31 */
        if (k->floor == 0 || hi < (int16_t)-k->bound)
            return k->floor;                      /* ReLU, or saturated low */
        return SN_CONV_SHR(lo, hi, k);            /* in range and negative: no clamp applies */
    }
    if (hi >= k->bound)
        return k->top;
    y = SN_CONV_SHR(lo, hi, k);
    return y > k->top ? k->top : y;
}

/* The run of n entries (v, byte offsets o) over the job's windows: per window p the sum starts from
 * acc[p] (or, a sink's first piece, from bias + 2^(s-1)), and ends in acc[p] (or, a sink's last piece,
 * requantised into out[p]). The MPY32 back-end (SN_MPY32_ASM, kernels_mpy32/sn_mpy32.h) runs it in
 * assembly on the multiplier, every other build in plain C. */
#if defined(SN_MPY32_ASM) && SN_MPY32_ASM
#define SN_CONV_MAC SN_MACS_POSTINC(12) "mov @r13+, r15\n\tadd r11, r15\n\tmov @r15, " SN_OP2_STR "\n\t"
/* code bytes skipped on entry to leave a multiple of four products: (-n mod 4) * 12 (no multiply helper) */
static const uint8_t sn_conv_entry[4] = {0, 12, 24, 36};

/* o holds byte offsets, so a product is 4 instructions (weight to MACS, offset, + window, sample to
 * OP2), four per loop pass; the loop is entered at the block that leaves a multiple of four (no pass
 * at all when n = 0). Per window the start value is written to RESLO/RESHI (bias + 2^(s-1), or
 * acc[p]), the products accumulate on it, and the sum is read out once: requantised to out[p] or
 * stored to acc[p]. The multiplier holds a sum throughout, so interrupts stay masked for the call.
 * Registers: r4 start values (bias: stays, acc: advances), r5 windows left, r6 outputs or acc, r7
 * entry, r8 passes, r9 o, r10 v, r11 window, r12-r15 scratch. */
SN_CONV_SHARED void sn_conv_run(const int16_t *v, const uint16_t *o, uint16_t n, sn_conv_job_t *j, uint8_t last)
{
    const sn_conv_sink_t *k = j->sink;
    const uint8_t from_bias = k && j->first;
    const uint16_t fin = k && last, sstep = from_bias ? 0u : 4u, step = (uint16_t)(j->x_step + j->x_step);
    const uint16_t m = k ? k->m : 0u;
    const int16_t bound = k ? k->bound : 0, floor = k ? k->floor : 0, top = k ? k->top : 0;
    uint32_t start;
    sn_irq_state_t irq;
    j->first = 0;
    if (!j->n_pos || (!k && !n))
        return;
    start = from_bias ? (uint32_t)*j->bias + (uint16_t)bound : 0u; /* bias + 2^(s-1) */
    {
        register const uint32_t *src __asm__("r4") = from_bias ? &start : (const uint32_t *)j->acc;
        register uint16_t left __asm__("r5") = j->n_pos;
        register void *dst __asm__("r6") = fin ? (void *)j->out : (void *)j->acc;
        register uint16_t entry __asm__("r7") = sn_conv_entry[(uint16_t)(0u - n) & 3u];
        register uint16_t passes __asm__("r8") = (uint16_t)((n + 3u) >> 2);
        register const uint16_t *po __asm__("r9") = o;
        register const int16_t *pv __asm__("r10") = v;
        register const int16_t *px __asm__("r11") = j->x;
        register uint16_t t12 __asm__("r12"), t13 __asm__("r13"), t14 __asm__("r14"), t15 __asm__("r15");
        irq = sn_irq_save();
        __asm__ volatile("tst r8\n\t"
                         "jnz .Lsn_r0%=\n\t"
                         "mov #.Lsn_rx%=, r7\n\t"   /* no products */
                         "jmp .Lsn_rw%=\n"
                         ".Lsn_r0%=:\n\t"
                         "add #.Lsn_rb%=, r7\n"
                         ".Lsn_rw%=:\n\t"
                         "mov 0(r4), &" SN_STR(RESLO_ADDR) "\n\t"
                         "mov 2(r4), &" SN_STR(RESHI_ADDR) "\n\t"
                         "add %[sstep], r4\n\t"
                         "mov r10, r12\n\t"
                         "mov r9, r13\n\t"
                         "mov r8, r14\n\t"
                         "mov r7, r0\n"
                         ".Lsn_rb%=:\n\t" SN_CONV_MAC SN_CONV_MAC SN_CONV_MAC SN_CONV_MAC
                         "dec r14\n\t"
                         "jnz .Lsn_rb%=\n"
                         ".Lsn_rx%=:\n\t"
                         "nop\n\t" /* last product's latency on MPY32 */
                         "mov &" SN_STR(RESLO_ADDR) ", r12\n\t"
                         "mov &" SN_STR(RESHI_ADDR) ", r13\n\t"
                         "add %[step], r11\n\t"
                         "tst %[fin]\n\t"
                         "jz .Lsn_ra%=\n\t"
                         "tst r13\n\t"
                         "jl .Lsn_rn%=\n\t"
                         "cmp %[bound], r13\n\t"    /* hi >= 2^(s-1): saturated high */
                         "jge .Lsn_rt%=\n"
                         ".Lsn_rs%=:\n\t"            /* y = (hi:lo) >> s = (lo * m) >> 16 + low(hi * m) */
                         "mov r12, &" SN_STR(MPY_ADDR) "\n\t"
                         "mov %[m], " SN_OP2_STR "\n\t"
                         "nop\n\t"
                         "mov &" SN_STR(RESHI_ADDR) ", r12\n\t"
                         "mov r13, &" SN_STR(MPY_ADDR) "\n\t"
                         "mov %[m], " SN_OP2_STR "\n\t"
                         "nop\n\t"
                         "add &" SN_STR(RESLO_ADDR) ", r12\n\t"
                         "cmp %[top], r12\n\t"      /* y >= top: top (ReLU6; 32767 otherwise) */
                         "jl .Lsn_ro%=\n"
                         ".Lsn_rt%=:\n\t"
                         "mov %[top], r12\n"
                         ".Lsn_ro%=:\n\t"
                         "mov r12, 0(r6)\n\t"
                         "incd r6\n"
                         ".Lsn_rd%=:\n\t"
                         "dec r5\n\t"
                         "jnz .Lsn_rw%=\n\t"
                         "jmp .Lsn_re%=\n"
                         ".Lsn_ra%=:\n\t"            /* no sink or not the row's last piece: acc[p] */
                         "mov r12, 0(r6)\n\t"
                         "mov r13, 2(r6)\n\t"
                         "add #4, r6\n\t"
                         "jmp .Lsn_rd%=\n"
                         ".Lsn_rn%=:\n\t"            /* hi < 0 */
                         "cmp #-32768, r13\n\t"
                         "jne .Lsn_rf%=\n\t"
                         "cmp %[bound], r12\n\t"
                         "jlo .Lsn_rt%=\n"            /* wrapped: saturated high */
                         ".Lsn_rf%=:\n\t"
                         "tst %[floor]\n\t"
                         "jz .Lsn_rl%=\n\t"          /* ReLU: 0 */
                         "clr r15\n\t"
                         "sub %[bound], r15\n\t"     /* -2^(s-1) */
                         "cmp r15, r13\n\t"
                         "jge .Lsn_rs%=\n"            /* hi >= -2^(s-1): in range */
                         ".Lsn_rl%=:\n\t"
                         "mov %[floor], r12\n\t"
                         "jmp .Lsn_ro%=\n"
                         ".Lsn_re%=:"
                         : "=&r"(t12), "=&r"(t13), "=&r"(t14), "=&r"(t15), "+r"(px), "+r"(src), "+r"(left),
                           "+r"(dst), "+r"(entry)
                         : "r"(pv), "r"(po), "r"(passes), [sstep] "m"(sstep), [step] "m"(step), [fin] "m"(fin),
                           [m] "m"(m), [bound] "m"(bound), [floor] "m"(floor), [top] "m"(top)
                         : "memory");
        sn_irq_restore(irq);
    }
}
#else
/* plain CPU: the same start and end values, sums modulo 2^32 */
SN_CONV_SHARED void sn_conv_run(const int16_t *v, const uint16_t *o, uint16_t n, sn_conv_job_t *j, uint8_t last)
{
    const sn_conv_sink_t *k = j->sink;
    const int16_t *x = j->x;
    uint16_t p, i;
    for (p = 0; p < j->n_pos; p++, x += j->x_step) {
        uint32_t s = k && j->first ? (uint32_t)*j->bias + (uint16_t)k->bound : (uint32_t)j->acc[p];
        for (i = 0; i < n; i++)
            s += (uint32_t)((int32_t)v[i] * *(const int16_t *)((const uint8_t *)x + o[i]));
        if (k && last)
            j->out[p] = sn_conv_requant((uint16_t)s, (int16_t)(uint16_t)(s >> 16), k);
        else
            j->acc[p] = (int32_t)s;
    }
    j->first = 0;
}
#endif

SN_CONV_SHARED void sn_conv_flush(sn_conv_piece_t *pc)
{
    if (pc->n)
        sn_conv_run(pc->v, pc->o, pc->n, &pc->j, 0);
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

static inline void sn_conv_job_init(sn_conv_job_t *j, const int16_t *x, uint16_t n_pos, uint16_t x_step,
                                    int32_t *acc, const sn_conv_sink_t *sink)
{
    j->x = x;
    j->n_pos = n_pos;
    j->x_step = x_step;
    j->acc = acc;
    j->sink = sink;
    j->first = 1;
    if (sink) {
        j->bias = sink->bias;
        j->out = sink->out;
    }
}

/* The next row: its sums start afresh. */
static inline void sn_conv_job_next(sn_conv_job_t *j)
{
    j->acc += j->n_pos;
    j->first = 1;
    if (j->sink) {
        j->bias++;
        j->out += j->sink->out_plane;
    }
}

static inline uint8_t sn_conv_setup(sn_conv_piece_t *pc, uint8_t level, uint8_t n_levels, const int16_t *x,
                                    uint16_t n_pos, uint16_t x_step, int32_t *acc, const sn_conv_sink_t *sink)
{
    pc->n = 0;
    sn_conv_job_init(&pc->j, x, n_pos, x_step, acc, sink);
    return level > n_levels ? n_levels : level;
}

/* The row's last piece (a sink's row is finished even when it has no entries: out = its bias,
 * requantised), then the next row. */
SN_CONV_SHARED void sn_conv_row_end(sn_conv_piece_t *pc)
{
    if (pc->n || (pc->j.sink && pc->j.n_pos))
        sn_conv_run(pc->v, pc->o, pc->n, &pc->j, 1);
    pc->n = 0;
    sn_conv_job_next(&pc->j);
}

/* Level 0 or no windows: a sink's rows still get their requantised bias (the matrix adds nothing). */
static inline void sn_conv_bias_only(uint16_t rows, const int16_t *x, uint16_t n_pos, uint16_t x_step,
                                     int32_t *acc, const sn_conv_sink_t *sink)
{
    sn_conv_job_t j;
    if (!sink || !n_pos)
        return;
    sn_conv_job_init(&j, x, n_pos, x_step, acc, sink);
    for (; rows; rows--) {
        sn_conv_run(0, 0, 0, &j, 1);
        sn_conv_job_next(&j);
    }
}

static inline void sn_conv_bitmap_impl(const sn_bitmap_matrix *m, const uint16_t *off, uint8_t level,
                                       const int16_t *x, uint16_t n_pos, uint16_t x_step, int32_t *acc,
                                       const sn_conv_sink_t *sink)
{
    const uint16_t row_bytes = (uint16_t)((m->cols + 7u) / 8u);
    const int16_t *v = m->values;
    const uint8_t *bm = m->bitmap;
    sn_conv_piece_t pc;
    uint16_t r;

    if (level == 0 || n_pos == 0) {
        sn_conv_bias_only(m->rows, x, n_pos, x_step, acc, sink);
        return;
    }
    level = sn_conv_setup(&pc, level, m->n_levels, x, n_pos, x_step, acc, sink);
    for (r = 0; r < m->rows; r++) {
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
        sn_conv_row_end(&pc);
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
                                    int32_t *acc, const sn_conv_sink_t *sink)
{
    uint16_t crow = 0, r;
    sn_conv_piece_t pc;

    if (level == 0 || n_pos == 0) {
        sn_conv_bias_only(rows, x, n_pos, x_step, acc, sink);
        return;
    }
    level = sn_conv_setup(&pc, level, n_levels, x, n_pos, x_step, acc, sink);
    for (r = 0; r < rows; r++, crow += n_levels) {
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
        sn_conv_row_end(&pc);
        n_row = i;
        if (level < n_levels) {
            n_row = sn_table_get(counts, counts_u16, (uint16_t)(crow + n_levels - 1u));
            SN_COUNT(weight_bytes_read, (uint32_t)n_pos * SN_TABLE_BYTES(counts_u16));
        }
        v += n_row;
        d += nibbles ? n_row / 2u : n_row;
    }
}

/* csr16 in a direct build: col_idx already holds the byte offsets, so a row's prefix is a run as is. */
static inline void sn_conv_csr16_impl(const sn_csr16_matrix *m, uint8_t level, const int16_t *x, uint16_t n_pos,
                                      uint16_t x_step, int32_t *acc, const sn_conv_sink_t *sink)
{
    const int16_t *v = m->values;
    const uint16_t *ci = m->col_idx;
    uint16_t crow = 0;
    uint16_t r;
    sn_conv_job_t j;

    if (level == 0 || n_pos == 0) {
        sn_conv_bias_only(m->rows, x, n_pos, x_step, acc, sink);
        return;
    }
    if (level > m->n_levels)
        level = m->n_levels;
    sn_conv_job_init(&j, x, n_pos, x_step, acc, sink);
    for (r = 0; r < m->rows; r++, crow += m->n_levels) {
        uint16_t n_row;
        uint16_t n = sn_table_get(m->counts, m->counts_u16, (uint16_t)(crow + level - 1u));
        n_row = level < m->n_levels ? sn_table_get(m->counts, m->counts_u16, (uint16_t)(crow + m->n_levels - 1u))
                                    : n;
        if (n || sink)
            sn_conv_run(v, ci, n, &j, 1);
        sn_conv_job_next(&j);
        SN_COUNT(weight_bytes_read, SN_TABLE_BYTES(m->counts_u16) * (level < m->n_levels ? 2u : 1u)); /* once per call */
        SN_COUNT(macs, (uint32_t)n * n_pos);
        SN_COUNT(weight_bytes_read, 4u * (uint32_t)n * n_pos);
        v += n_row;
        ci += n_row;
    }
}

/* block: a block row's kept blocks (ordered by level, then block column) give each of its rows
 * block_cols consecutive columns per block; the row's values of block j are row i of the block. */
static inline void sn_conv_block_impl(const sn_block_matrix *m, const uint16_t *off, uint8_t level,
                                      const int16_t *x, uint16_t n_pos, uint16_t x_step, int32_t *acc,
                                      const sn_conv_sink_t *sink)
{
    const int16_t *v = m->values;
    const uint16_t *bcol = m->block_col;
    const uint16_t bc = m->block_cols;
    uint16_t crow = 0, r0;
    sn_conv_piece_t pc;

    if (level == 0 || n_pos == 0) {
        sn_conv_bias_only(m->rows, x, n_pos, x_step, acc, sink);
        return;
    }
    level = sn_conv_setup(&pc, level, m->n_levels, x, n_pos, x_step, acc, sink);
    for (r0 = 0; r0 < m->rows; r0 += m->block_rows, crow += m->n_levels) {
        const uint16_t h = (uint16_t)(m->rows - r0) < m->block_rows ? (uint16_t)(m->rows - r0) : m->block_rows;
        uint16_t block_size = 0, n_row, n, i, jb, t;
        for (i = 0; i < h; i++)   /* h * bc without a multiply */
            block_size = (uint16_t)(block_size + bc);
        n = sn_table_get(m->counts, m->counts_u16, (uint16_t)(crow + level - 1u));
        n_row = level < m->n_levels ? sn_table_get(m->counts, m->counts_u16, (uint16_t)(crow + m->n_levels - 1u)) : n;
        SN_COUNT(weight_bytes_read, (uint32_t)n_pos * SN_TABLE_BYTES(m->counts_u16) * (level < m->n_levels ? 2u : 1u));
        for (i = 0; i < h; i++) {
            const int16_t *blk = v + (uint16_t)(i * bc); /* row i of block 0 */
            for (jb = 0; jb < n; jb++, blk += block_size) {
                const uint16_t c0 = (uint16_t)(bcol[jb] * bc);
                const uint16_t w = (uint16_t)(m->cols - c0) < bc ? (uint16_t)(m->cols - c0) : bc;
                for (t = 0; t < w; t++)
                    sn_conv_push(&pc, blk[t], off[c0 + t]);
                if (i == 0) {
                    SN_COUNT(macs, (uint32_t)n_pos * h * w);
                    SN_COUNT(weight_bytes_read, (uint32_t)n_pos * (2u + 2u * (uint32_t)h * w));
                }
            }
            sn_conv_row_end(&pc);
        }
        v += (uint32_t)n_row * block_size;
        bcol += n_row;
    }
}

/* pattern: per filter, kept kernels (pattern id, channel), each pattern_len[id] values at kernel
 * positions pattern_pos[id * stride + t]: column channel * kernel_size + position. */
static inline void sn_conv_pattern_impl(const sn_pattern_matrix *m, const uint16_t *off, uint8_t level,
                                        const int16_t *x, uint16_t n_pos, uint16_t x_step, int32_t *acc,
                                        const sn_conv_sink_t *sink)
{
    const uint16_t kernel_size = (uint16_t)(m->kernel_h * m->kernel_w);
    const int16_t *v = m->values;
    const uint8_t *pid = m->pattern_id;
    const uint16_t *chan = m->chan_idx;
    uint16_t crow = 0, r;
    sn_conv_piece_t pc;

    if (level == 0 || n_pos == 0) {
        sn_conv_bias_only(m->rows, x, n_pos, x_step, acc, sink);
        return;
    }
    level = sn_conv_setup(&pc, level, m->n_levels, x, n_pos, x_step, acc, sink);
    for (r = 0; r < m->rows; r++, crow += m->n_levels) {
        const int16_t *vk = v;
        uint16_t n = sn_table_get(m->counts, m->counts_u16, (uint16_t)(crow + level - 1u));
        uint16_t n_row = level < m->n_levels ? sn_table_get(m->counts, m->counts_u16,
                                                            (uint16_t)(crow + m->n_levels - 1u)) : n;
        uint16_t jk;
        SN_COUNT(weight_bytes_read, (uint32_t)n_pos * SN_TABLE_BYTES(m->counts_u16) * (level < m->n_levels ? 2u : 1u));
        for (jk = 0; jk < n; jk++) {
            const uint8_t p = pid[jk], len = m->pattern_len[p];
            const uint8_t *pos = m->pattern_pos + (uint16_t)(p * m->pattern_stride);
            const uint16_t *ok = off + (uint16_t)(chan[jk] * kernel_size);
            uint8_t t;
            for (t = 0; t < len; t++)
                sn_conv_push(&pc, vk[t], ok[pos[t]]);
            vk += len;
            SN_COUNT(macs, (uint32_t)n_pos * len);
            SN_COUNT(weight_bytes_read, (uint32_t)n_pos * (4u + 3u * (uint32_t)len));
        }
        sn_conv_row_end(&pc);
        if (level < m->n_levels) {
            v += sn_table_get(m->row_values, m->row_values_u16, r);
            SN_COUNT(weight_bytes_read, (uint32_t)n_pos * SN_TABLE_BYTES(m->row_values_u16));
        } else {
            v = vk;
        }
        pid += n_row;
        chan += n_row;
    }
}

/* hbitmap: the union bitmap row by row and, per kept weight, the chain of sparser stages down to its
 * introducing level (each stage one bit stream over the whole matrix, so every call walks all rows). */
static inline void sn_conv_hbitmap_impl(const sn_hbitmap_matrix *m, const uint16_t *off, uint8_t level,
                                        const int16_t *x, uint16_t n_pos, uint16_t x_step, int32_t *acc,
                                        const sn_conv_sink_t *sink)
{
    const uint16_t row_bytes = (uint16_t)((m->cols + 7u) / 8u);
    const uint8_t n_levels = m->n_levels;
    const uint8_t *top = m->bitmap;
    sn_hbitmap_cursor cur;
    const int16_t *v[SN_HBITMAP_MAX_LEVELS];
    sn_conv_piece_t pc;
    uint16_t r;
    uint8_t t;

    if (level == 0 || n_pos == 0) {
        sn_conv_bias_only(m->rows, x, n_pos, x_step, acc, sink);
        return;
    }
    level = sn_conv_setup(&pc, level, n_levels, x, n_pos, x_step, acc, sink);
    sn_hbitmap_cursor_init(&cur, m);
    for (t = 0; t < level; t++)
        v[t] = m->values + m->level_start[t];
    SN_COUNT(weight_bytes_read, (uint32_t)n_pos * (2u * (uint32_t)(n_levels - 1u) + 2u * (uint32_t)level));
    for (r = 0; r < m->rows; r++) {
        uint16_t i;
        for (i = 0; i < row_bytes; i++) {
            uint8_t b = *top++;
            const uint16_t *o = off + (uint16_t)(i * 8u);
            for (; b != 0; b >>= 1, o++) {
                uint8_t jl;
                if (!(b & 1u))
                    continue;
                jl = sn_hbitmap_next_level(&cur, n_levels, n_pos);
                if (jl <= level)
                    sn_conv_push(&pc, *v[jl - 1u]++, *o);
            }
        }
        sn_conv_row_end(&pc);
    }
    SN_COUNT(weight_bytes_read, (uint32_t)n_pos * m->rows * row_bytes);
    for (t = 0; t < level; t++) {
        SN_COUNT(macs, (uint32_t)n_pos * (uint16_t)(v[t] - (m->values + m->level_start[t])));
        SN_COUNT(weight_bytes_read, 2u * (uint32_t)n_pos * (uint16_t)(v[t] - (m->values + m->level_start[t])));
    }
}

/* sn_conv_<F> of a back-end: the shared decoding above with that back-end's run. */
#define SN_CONV_DEFINE(F, ...)                                                                          \
    void sn_conv_##F(const sn_##F##_matrix *m, const uint16_t *off, uint8_t level, const int16_t *x,     \
                     uint16_t n_pos, uint16_t x_step, int32_t *acc, const sn_conv_sink_t *sink)           \
    {                                                                                                   \
        __VA_ARGS__;                                                                                    \
    }

#endif
