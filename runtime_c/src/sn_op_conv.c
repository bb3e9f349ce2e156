/* Convolution (1-D and 2-D, grouped) and fully connected layers on the nested sparse kernels.
 *
 * A convolution runs one of two ways (the compiler picks, per layer: sn_layer.chunk):
 *  - im2col: per output position and group, gather the patch (zero padding applied) and call the
 *    layer's sparse kernel once on all the group's filters: acc[r] = bias[r] + sum w * patch.
 *    Patch columns are ordered (channel, ky, kx), the formats' column order.
 *  - direct: the matrix's indices are offsets into the input (padded once per layer into l->pad when
 *    the layer pads), so the kernel reads the input in place; one sn_model_conv call covers up to
 *    `chunk` positions of an output row, acc[r][p]. No per-position copy: at 90 % sparsity the im2col
 *    copy cost more cycles than the products.
 *
 * The loops use pointer and index increments only: on the MSP430 every multiply and divide is a
 * helper call, so the geometry is computed once per layer (sn_conv_geom), not per position. */
#include "model.h" /* SN_MODEL_IM2COL_CONVS, SN_MODEL_DIRECT_CONVS: only the paths used are built */
#include "sn_runtime.h"

#ifndef SN_MODEL_DIRECT_ACC_CONVS /* a model.h from before the switch */
#define SN_MODEL_DIRECT_ACC_CONVS 1
#endif
/* the accumulator path of direct convolutions (codegen_lower.direct_paths) */
#define SN_DIRECT_ACC (SN_MODEL_DIRECT_CONVS && SN_MODEL_DIRECT_ACC_CONVS)

#if SN_MODEL_IM2COL_CONVS
typedef struct {
    uint16_t cg;          /* input channels per group */
    uint16_t in_plane;    /* in_h * in_w */
    uint16_t row_step;    /* d_h * in_w: elements between two kernel rows */
    int16_t ext_h, ext_w; /* (k - 1) * d: the window's extent past its first row / column */
} sn_conv_geom;

/* patch = the window at (y0, x0) (top-left, may be negative) of `cg` channels starting at chan;
 * `off` = y0 * in_w + x0 modulo 2^16, exact (and used) only when the window lies inside the input.
 * Everything is copied into locals first: the patch stores could alias the descriptor's fields. */
static void sn_im2col(const sn_layer *l, const sn_conv_geom *geo, const int16_t *chan,
                      uint16_t off, int16_t y0, int16_t x0, int16_t *patch) {
    const uint16_t k_h = l->k_h, k_w = l->k_w, d_w = l->d_w, cg = geo->cg;
    const uint16_t in_plane = geo->in_plane, row_step = geo->row_step;
    const int16_t in_h = (int16_t)l->in_h, in_w = (int16_t)l->in_w;
    uint16_t c, ky, kx, n, reads;
    int16_t *p = patch;
    if (y0 >= 0 && x0 >= 0 && (int16_t)(y0 + geo->ext_h) < in_h && (int16_t)(x0 + geo->ext_w) < in_w) {
        /* the window lies inside the input: no padding tests */
        const int16_t *top = chan + off;
        for (c = 0; c < cg; c++, top += in_plane) {
            const int16_t *line = top;
            for (ky = 0; ky < k_h; ky++, line += row_step) {
                const int16_t *src = line;
                if (d_w == 1) {
                    for (kx = k_w; kx; kx--) {
                        *p++ = *src++;
                    }
                } else {
                    for (kx = k_w; kx; kx--, src += d_w) {
                        *p++ = *src;
                    }
                }
            }
        }
        n = reads = (uint16_t)(p - patch);
    } else if (d_w == 1) {
        /* padding: per kernel row, zeros left of the input, a copy, zeros right of it */
        const int16_t d_h = (int16_t)l->d_h;
        const uint16_t lo = x0 < 0 ? (uint16_t)-x0 : 0u;                         /* first kx inside */
        const int16_t right = (int16_t)(in_w - x0);                              /* kx < right inside */
        const uint16_t hi = right <= 0 ? 0u : ((uint16_t)right < k_w ? (uint16_t)right : k_w);
        const uint16_t inside = hi > lo ? (uint16_t)(hi - lo) : 0u;
        reads = 0;
        for (c = 0; c < cg; c++, chan += in_plane) {
            int16_t iy = y0;
            uint16_t roff = (uint16_t)(off + lo); /* (iy * in_w + x0 + lo) mod 2^16: exact for iy >= 0 */
            for (ky = 0; ky < k_h; ky++, iy = (int16_t)(iy + d_h), roff = (uint16_t)(roff + row_step)) {
                if (iy < 0 || iy >= in_h || !inside) {
                    for (kx = k_w; kx; kx--) {
                        *p++ = 0;
                    }
                } else {
                    const int16_t *src = chan + roff;
                    for (kx = lo; kx; kx--) {
                        *p++ = 0;
                    }
                    for (kx = inside; kx; kx--) {
                        *p++ = *src++;
                    }
                    for (kx = (uint16_t)(k_w - lo - inside); kx; kx--) {
                        *p++ = 0;
                    }
                    reads = (uint16_t)(reads + inside);
                }
            }
        }
        n = (uint16_t)(p - patch);
    } else {
        const int16_t d_h = (int16_t)l->d_h;
        reads = 0;
        for (c = 0; c < cg; c++, chan += in_plane) {
            int16_t iy = y0;
            for (ky = 0; ky < k_h; ky++, iy = (int16_t)(iy + d_h)) {
                int row_ok = iy >= 0 && iy < in_h;
                const int16_t *line = chan + (row_ok ? (uint16_t)((uint16_t)iy * (uint16_t)in_w) : 0);
                int16_t ix = x0;
                for (kx = 0; kx < k_w; kx++, ix = (int16_t)(ix + (int16_t)d_w)) {
                    if (row_ok && ix >= 0 && ix < in_w) {
                        *p++ = line[ix];
                        reads++;
                    } else {
                        *p++ = 0;
                    }
                }
            }
        }
        n = (uint16_t)(p - patch);
    }
    SN_COUNT(act_bytes_read, 2u * reads);
    (void)reads;
    SN_COUNT(act_bytes_written, 2u * n);
    (void)n;
}

#endif

/* sn_requantize(acc, s) + ReLU with the per-layer constants computed once. For s in 1..15 the
 * result is sat16((acc + 2^(s-1)) >> s) (round half up: the same value as the reference's
 * ((acc >> (s-1)) + 1) >> 1). It saturates exactly when the high word of t = acc + 2^(s-1) is
 * outside [-2^(s-1), 2^(s-1)), so the range checks are 16-bit compares, and an acc whose own high
 * word is already >= 2^(s-1) saturates before t could overflow. In-range values are shifted with
 * sn_shr_fit16. Other shifts use sn_requantize. */
typedef struct {
    int8_t shift;
    uint8_t relu;
    int16_t top;          /* upper clamp: relu_max for ReLU6, else 32767 (no clamp) */
    uint8_t fast;         /* shift in 1..15 */
    uint16_t m;           /* 2^(16 - shift) */
    int16_t bound;        /* 2^(shift - 1) */
    int32_t half;         /* 2^(shift - 1) */
} sn_requant_t;

static void sn_requant_init(sn_requant_t *q, const sn_layer *l) {
    q->shift = l->shift0;
    q->relu = l->relu;
    q->top = l->relu == SN_ACT_RELU_MAX ? l->relu_max : 32767;
    q->fast = q->shift >= 1 && q->shift <= 15;
    q->m = q->fast ? (uint16_t)(1u << (16 - q->shift)) : 0;
    q->bound = q->fast ? (int16_t)(1 << (q->shift - 1)) : 0;
    q->half = q->bound;
}

static inline int16_t sn_requant(int32_t acc, const sn_requant_t *q) {
    int16_t y;
    if (!q->fast) {
        y = sn_requantize(acc, q->shift);
    } else if ((int16_t)(uint16_t)((uint32_t)acc >> 16) >= q->bound) {
        y = 32767;
    } else {
        int32_t t = acc + q->half;
        int16_t th = (int16_t)(uint16_t)((uint32_t)t >> 16);
        if (th >= q->bound) {
            y = 32767;
        } else if (th < (int16_t)-q->bound) {
            y = -32768;
        } else {
            y = sn_shr_fit16(t, q->shift, q->m);
        }
    }
    if (q->relu && y < 0) {
        y = 0;
    }
    return y > q->top ? q->top : y;
}

#if SN_DIRECT_ACC && defined(SN_BOARD_SHR_FIT16) && defined(SN_BOARD_MPY32)
/* sn_board_shr_fit16 without its interrupt save/restore: sn_requant_row masks interrupts once per
 * row (at most `chunk` outputs) instead of once per element. */
#define SN_REQUANT_ROW_MASKED 1
static inline __attribute__((always_inline)) int16_t sn_shr_fit16_masked(uint32_t t, uint16_t m) {
    uint16_t a, b;
    MPY = (uint16_t)t;
    OP2 = m;
    __asm__ volatile("nop" ::: "memory"); /* MPY32 result latency */
    a = RESHI;
    MPY = (uint16_t)(t >> 16);
    OP2 = m;
    __asm__ volatile("nop" ::: "memory");
    b = RESLO;
    return (int16_t)(uint16_t)(a + b);
}
#endif

#if SN_DIRECT_ACC
/* Shifts outside 1..15 (rare): out of line, so the fast row stays small. */
static __attribute__((noinline)) void sn_requant_row_slow(const sn_requant_t *q, const int32_t *a, int16_t *o,
                                                          uint16_t n) {
    uint16_t p;
    for (p = 0; p < n; p++) {
        o[p] = sn_requant(a[p], q);
    }
}

/* o[p] = sn_requant(a[p], q), p < n: the same values, with the layer constants in locals and the
 * ReLU as a lower clamp (the direct conv's per-output cost is mostly this and the products). */
static void sn_requant_row(const sn_requant_t *q, const int32_t *a, int16_t *o, uint16_t n) {
    const int16_t bound = q->bound, nbound = (int16_t)-q->bound, floor = q->relu ? 0 : -32768, top = q->top;
    const uint16_t half = (uint16_t)q->bound, m = q->m;
    const int8_t s = q->shift;
    uint16_t p;
    if (!q->fast) {
        sn_requant_row_slow(q, a, o, n);
        return;
    }
#ifdef SN_REQUANT_ROW_MASKED
    const sn_irq_state_t irq = sn_irq_save();
    (void)s;
#endif
    for (p = 0; p < n; p++) {
        const uint32_t v = (uint32_t)a[p];
        const uint16_t lo = (uint16_t)v, tl = (uint16_t)(lo + half);
        int16_t hi = (int16_t)(uint16_t)(v >> 16), y;
        if (hi >= bound) {
            y = 32767;
        } else {
            hi = (int16_t)(hi + (tl < lo)); /* carry of t = acc + half */
            if (hi >= bound) {
                y = 32767;
            } else if (hi < nbound) {
                y = -32768;
            } else {
#ifdef SN_REQUANT_ROW_MASKED
                y = sn_shr_fit16_masked(((uint32_t)(uint16_t)hi << 16) | tl, m);
#else
                y = sn_shr_fit16((int32_t)(((uint32_t)(uint16_t)hi << 16) | tl), s, m);
#endif
            }
        }
        o[p] = y < floor ? floor : y > top ? top : y;
    }
#ifdef SN_REQUANT_ROW_MASKED
    sn_irq_restore(irq);
#endif
}
#endif

#if SN_DIRECT_ACC
/* sn_requant_row into FRAM: requantized in SRAM pieces, each written through the board hook. */
static void sn_requant_row_fram(const sn_requant_t *q, const int32_t *a, int16_t *o, uint16_t n) {
    int16_t tmp[SN_PUT_BATCH];
    while (n) {
        const uint16_t k = n < SN_PUT_BATCH ? n : (uint16_t)SN_PUT_BATCH;
        sn_requant_row(q, a, tmp, k);
        sn_fram_store(o, tmp, 2u * k);
        a += k;
        o += k;
        n = (uint16_t)(n - k);
    }
}
#endif

/* acc = bias; acc += W x (the format kernel); out[r * stride] = requantize(acc[r]) */
static void sn_matvec(const sn_layer *l, const sn_requant_t *q, uint16_t matrix, uint8_t level,
                      const int16_t *x, const int32_t *bias, uint16_t rows, int16_t *out,
                      uint16_t stride) {
    uint16_t r;
    int32_t *acc = l->acc;
    sn_put_t w;
#ifdef SN_COUNTERS
    uint32_t macs0 = sn_counters.macs;
#endif
    for (r = 0; r < rows; r++) {
        acc[r] = bias[r];
    }
    sn_model_spmv(matrix, level, x, acc);
#ifdef SN_COUNTERS
    SN_COUNT(act_bytes_read, 2u * (sn_counters.macs - macs0)); /* one x element per product */
#endif
    sn_put_init(&w, l->out_fram & SN_OUT_FRAM);
    for (r = 0; r < rows; r++, out += stride) {
        sn_put(&w, out, sn_requant(acc[r], q));
    }
    sn_put_flush(&w);
    SN_COUNT(act_bytes_written, 2u * rows);
}

/* Output positions [p0, p1) of group g, as (first row, first column): one division per call. */
static inline uint16_t sn_first_row(const sn_layer *l, uint16_t p0, uint16_t *ox) {
    const uint16_t oy = (uint16_t)(p0 / l->out_w);
    *ox = (uint16_t)(p0 - (uint16_t)(oy * l->out_w));
    return oy;
}

#if SN_MODEL_DIRECT_CONVS
/* pad = one group's `cg` input channels with p_h zero rows above and below and p_w zero columns
 * left and right of every row */
static void sn_pad_copy(const sn_layer *l, const int16_t *src, uint16_t cg) {
    const uint16_t in_h = l->in_h, in_w = l->in_w, p_w = l->p_w;
    const uint16_t wp = (uint16_t)(in_w + 2u * p_w);
    const uint16_t band = (uint16_t)(l->p_h * wp); /* elements of the zero rows above (and below) */
    int16_t *d = l->pad;
    uint16_t c, y, i;
    if (l->out_fram & SN_PAD_FRAM) { /* the same bytes, through the board's FRAM write hook */
        sn_put_t w;
        sn_put_init(&w, 1);
        for (c = 0; c < cg; c++) {
            for (i = 0; i < band; i++) {
                sn_put(&w, d++, 0);
            }
            for (y = 0; y < in_h; y++, src += in_w) {
                for (i = 0; i < p_w; i++) {
                    sn_put(&w, d++, 0);
                }
                for (i = 0; i < in_w; i++) {
                    sn_put(&w, d++, src[i]);
                }
                for (i = 0; i < p_w; i++) {
                    sn_put(&w, d++, 0);
                }
            }
            for (i = 0; i < band; i++) {
                sn_put(&w, d++, 0);
            }
        }
        sn_put_flush(&w);
    } else {
        for (c = 0; c < cg; c++) {
            memset(d, 0, 2u * band);
            d += band;
            for (y = 0; y < in_h; y++, d += wp, src += in_w) {
                memset(d, 0, 2u * p_w);
                memcpy(d + p_w, src, 2u * in_w);
                memset(d + p_w + in_w, 0, 2u * p_w);
            }
            memset(d, 0, 2u * band);
            d += band;
        }
    }
    SN_COUNT(act_bytes_read, 2u * (uint32_t)cg * in_h * in_w);
    SN_COUNT(act_bytes_written, 2u * (uint32_t)(d - l->pad));
}

/* Group g's output positions [p0, p1) (flattened oy * out_w + ox); the padded copy is made when
 * the range starts the group or `fresh` says it may be stale (a resumed inference). */
static void sn_conv_direct(const sn_layer *l, uint8_t level, uint16_t g, uint16_t p0, uint16_t p1,
                           uint8_t fresh) {
    const uint16_t rows = (uint16_t)(l->out_c / l->groups);
    const uint16_t out_w = l->out_w;
    const uint16_t out_plane = (uint16_t)(l->out_h * out_w);
    const uint16_t cg = (uint16_t)(l->in_c / l->groups);
    const uint16_t in_group = (uint16_t)(cg * l->in_h * l->in_w);
    const uint16_t x_w = l->pad ? (uint16_t)(l->in_w + 2u * l->p_w) : l->in_w; /* row length read */
    const uint16_t x_row = (uint16_t)(l->s_h * x_w); /* input elements between output rows */
    const uint16_t x_step = l->s_w, chunk = l->chunk;
    const uint8_t fram = l->out_fram & SN_OUT_FRAM;
    const int16_t *src = l->in0 + (uint16_t)(g * in_group);
    int16_t *out_g = l->out + (uint16_t)(g * (uint16_t)(rows * out_plane));
    const int32_t *bias = l->bias + (uint16_t)(g * rows);
    const int16_t *x = src;
    sn_requant_t q;
    sn_conv_sink_t sink;
    uint16_t oy, ox, n, p, row_off, end;
    sn_requant_init(&q, l);
    /* SRAM outputs at a shift in 1..15 (the usual case): the kernel starts every sum from the bias
     * and requantises it as it leaves the multiplier; otherwise (a model.h with direct_acc_convs)
     * bias here, requantisation below. */
    const uint8_t sunk = q.fast && !fram && !(l->out_fram & SN_OUT_ACC);
    (void)sunk;
    sink.bias = bias;
    sink.out_plane = out_plane;
    sink.shift = q.shift;
    sink.m = q.m;
    sink.bound = q.bound;
    sink.floor = q.relu ? 0 : -32768;
    sink.top = q.top;
    if (l->pad) {
        if (p0 == 0 || fresh) {
            sn_pad_copy(l, src, cg);
        }
        x = l->pad;
    }
    oy = sn_first_row(l, p0, &ox);
    row_off = (uint16_t)(oy * out_w);
    x += (uint16_t)(oy * x_row);
    for (p = p0; p < p1;) {
        end = (uint16_t)(p1 - row_off) < out_w ? (uint16_t)(p1 - row_off) : out_w;
        for (; ox < end; ox = (uint16_t)(ox + n)) {
            int16_t *o = out_g + row_off + ox;
#ifdef SN_COUNTERS
            uint32_t macs0 = sn_counters.macs;
#endif
            n = (uint16_t)(end - ox) < chunk ? (uint16_t)(end - ox) : chunk;
#if SN_DIRECT_ACC
            if (!sunk) {
                int32_t *a = l->acc;
                uint16_t r, k;
                for (r = 0; r < rows; r++) {
                    for (k = 0; k < n; k++) {
                        *a++ = bias[r];
                    }
                }
                sn_model_conv((uint16_t)(l->matrix + g), level, x + (uint16_t)(ox * x_step), n, x_step, l->acc, 0);
                a = l->acc;
                for (r = 0; r < rows; r++, o += out_plane, a += n) {
                    if (fram) {
                        sn_requant_row_fram(&q, a, o, n);
                    } else {
                        sn_requant_row(&q, a, o, n);
                    }
                }
            } else
#endif
            {
                sink.out = o;
                sn_model_conv((uint16_t)(l->matrix + g), level, x + (uint16_t)(ox * x_step), n, x_step, l->acc,
                              &sink);
            }
#ifdef SN_COUNTERS
            SN_COUNT(act_bytes_read, 2u * (sn_counters.macs - macs0)); /* one x element per product */
#endif
            SN_COUNT(act_bytes_written, 2u * (uint32_t)rows * n);
        }
        p = (uint16_t)(row_off + end);
        x += x_row;
        row_off = (uint16_t)(row_off + out_w);
        ox = 0;
    }
}
#endif

#if SN_MODEL_IM2COL_CONVS
/* Group g's output positions [p0, p1) (flattened oy * out_w + ox). */
static void sn_conv_im2col(const sn_layer *l, uint8_t level, uint16_t g, uint16_t p0, uint16_t p1) {
    const uint16_t rows = (uint16_t)(l->out_c / l->groups);
    const uint16_t out_w = l->out_w;
    const uint16_t out_plane = (uint16_t)(l->out_h * out_w);
    const int16_t s_h = (int16_t)l->s_h, s_w = (int16_t)l->s_w, p_w = (int16_t)l->p_w;
    const uint16_t in_w = l->in_w;
    const uint16_t y_step = (uint16_t)(l->s_h * in_w); /* input elements between output rows */
    int16_t *patch = l->patch;
    const int16_t *chan;
    int16_t *out;
    const int32_t *bias = l->bias + (uint16_t)(g * rows);
    sn_conv_geom geo;
    sn_requant_t q;
    uint16_t oy, ox, p, row_off;
    int16_t y0, x0;
    geo.cg = (uint16_t)(l->in_c / l->groups);
    geo.in_plane = (uint16_t)(l->in_h * in_w);
    geo.row_step = (uint16_t)(l->d_h * in_w);
    geo.ext_h = (int16_t)((l->k_h - 1u) * l->d_h);
    geo.ext_w = (int16_t)((l->k_w - 1u) * l->d_w);
    chan = l->in0 + (uint16_t)(g * (uint16_t)(geo.cg * geo.in_plane));
    out = l->out + (uint16_t)(g * (uint16_t)(rows * out_plane)) + p0;
    sn_requant_init(&q, l);
    oy = sn_first_row(l, p0, &ox);
    y0 = (int16_t)((int16_t)(oy * s_h) - (int16_t)l->p_h);
    x0 = (int16_t)((int16_t)(ox * s_w) - p_w);
    /* row_off = y0 * in_w modulo 2^16 (y0 may be negative) */
    row_off = (uint16_t)((uint32_t)(uint16_t)y0 * in_w);
    for (p = p0; p < p1; p++, out++) {
        const uint16_t off = (uint16_t)(row_off + (uint16_t)x0);
        sn_im2col(l, &geo, chan, off, y0, x0, patch);
        sn_matvec(l, &q, (uint16_t)(l->matrix + g), level, patch, bias, rows, out, out_plane);
        if (++ox == out_w) {
            ox = 0;
            x0 = (int16_t)-p_w;
            y0 = (int16_t)(y0 + s_h);
            row_off = (uint16_t)(row_off + y_step);
        } else {
            x0 = (int16_t)(x0 + s_w);
        }
    }
}
#endif

static void sn_conv_part(const sn_layer *l, uint8_t level, uint16_t g, uint16_t p0, uint16_t p1,
                         uint8_t fresh) {
#if SN_MODEL_DIRECT_CONVS
    if (l->chunk) {
        sn_conv_direct(l, level, g, p0, p1, fresh);
        return;
    }
#endif
#if SN_MODEL_IM2COL_CONVS
    sn_conv_im2col(l, level, g, p0, p1);
#endif
    (void)l;
    (void)level;
    (void)g;
    (void)p0;
    (void)p1;
    (void)fresh;
}

void sn_op_conv(const sn_layer *l, uint8_t level) {
    const uint16_t plane = (uint16_t)(l->out_h * l->out_w);
    uint16_t g;
    for (g = 0; g < l->groups; g++) {
        sn_conv_part(l, level, g, 0, plane, 1);
    }
}

/* Units of unit_pos consecutive output positions, group-major (sn_conv_unit_range). */
void sn_op_conv_unit(const sn_layer *l, uint8_t level, uint16_t unit, uint16_t unit_pos, uint8_t fresh) {
    uint16_t g, p0, p1;
    sn_conv_unit_range(l, unit, unit_pos, &g, &p0, &p1);
    sn_conv_part(l, level, g, p0, p1, fresh);
}

void sn_op_linear(const sn_layer *l, uint8_t level) {
    sn_requant_t q;
    sn_requant_init(&q, l);
    sn_matvec(l, &q, l->matrix, level, l->in0, l->bias, l->out_c, l->out, 1);
}
