/* The LEA engine's op kernels: linear and convolution layers on the MSP430FR5994's Low-Energy Accelerator
 * through DSPLib calls (runtime_c/kernels_lea/dsplib/DSPLib.h). The host board links our functional model
 * (dsplib/dsplib_host.c), the simulator image the shims of boards/msp430fr5994/sim/dsplib_shim.c, a board
 * build TI's DSPLib. Layouts: python/sparsenest/compiler/lea_plan.py; the arithmetic, bit for bit:
 * python/sparsenest/compiler/lea_golden.py.
 *
 * Every LEA operand lives in the layer's LEA scratch (l->lea_ram: the planner places it in the SRAM arena,
 * which is LEA RAM on the FR5994, 32-bit aligned); the CPU copies the operands in from wherever the
 * activations and weights are (SRAM or FRAM).
 *
 *  - linear (SN_OP_LEA_LINEAR): lea_meta = {1, groups, bw, L, maxn, then per group: row0, rows, segments,
 *    kept segments at level 1..L}; lea_idx = the groups' segment start columns in level order; lea_w = per
 *    group, per row, the row's weights segment after segment. Per group the kept segments of x are
 *    gathered once, then per row its weight prefix is read in (sn_far_read: DMA from upper FRAM) and one msp_mac_q15 gives 2*sum.
 *  - convolution (SN_OP_LEA_CONV, stride 1): lea_meta = {2, in_c, in_h, in_w, k_h, k_w, p_h, p_w, taps,
 *    band, L, then per output channel: first entry, kept entries at level 1..L}; lea_idx = entries
 *    (ic << 8 | ky) in level order; lea_w = per entry its kernel row reversed, zero-padded to `taps`.
 *    Per band of output rows the padded input planes (row stride even) are copied in once; per output channel one
 *    msp_fir_q15 per kept kernel row over the flattened plane (no im2col) and msp_add_q15 to sum them. */
#include "model.h" /* SN_MODEL_LEA_LAYERS: only built when a layer runs on LEA */
#include "sn_runtime.h"

#if SN_MODEL_LEA_LAYERS
#include "DSPLib.h"

static uint16_t sn_even(uint16_t n) { return (uint16_t)(n + (n & 1u)); }

/* elements of an operand of n elements rounded up to 32 bits */
static uint16_t sn_a4(uint16_t n) { return (uint16_t)((n + 1u) & ~1u); }

/* Copies into LEA RAM: the DMA controller on the chip (sn_far_read, about 2 cycles a word against ~8 a
 * byte for a CPU loop), memcpy elsewhere. */
static void sn_lea_load(void *dst, const void *src, uint16_t nbytes) {
#ifdef __MSP430__
    sn_far_read(dst, (sn_far_addr_t)(uintptr_t)src, nbytes);
#else
    memcpy(dst, src, nbytes);
#endif
}

/* The layer's fused activation: ReLU clamps at 0, ReLU6 (SN_ACT_RELU_MAX) also at relu_max. */
static inline int16_t sn_lea_act(const sn_layer *l, int16_t y) {
    if (l->relu && y < 0) {
        return 0;
    }
    return l->relu == SN_ACT_RELU_MAX && y > l->relu_max ? l->relu_max : y;
}

/* golden.requantize with the fused activation. The compiler keeps |bias| < 2^30 on LEA layers, so
 * acc = sum + bias never leaves int32 (lea_plan.MAX_BIAS). */
static int16_t sn_lea_requant(const sn_layer *l, int32_t acc, int8_t s) {
    int16_t y;
    if (s > 0) {
        y = sn_sat16(sn_rshift_round(acc, s));
    } else if (s == 0) {
        y = sn_sat16(acc);
    } else {
        int32_t c = sn_sat16(acc);
        y = sn_sat16(c * ((int32_t)1 << (-s > 16 ? 16 : -s)));
    }
    return sn_lea_act(l, y);
}

/* A DSPLib error here is a compiler bug (the planner checked every size and address): it is counted in
 * sn_lea_errors (the tests require 0) and the rest of the layer is skipped. */
#define SN_LEA_TRY(call)            \
    do {                            \
        if ((call) != MSP_SUCCESS) { \
            sn_lea_errors++;        \
            return;                 \
        }                           \
    } while (0)

uint16_t sn_lea_errors;

void sn_op_lea_linear(const sn_layer *l, uint8_t level) {
    const uint16_t *m = l->lea_meta;
    const uint16_t n_groups = m[1], bw = m[2], n_levels = m[3], maxn = m[4];
    const uint16_t *g = m + 5;
    const uint16_t *segs = l->lea_idx;
    sn_far_addr_t w = *l->lea_w; /* weights stream from (upper) FRAM by sn_far_read: DMA on the chip */
    _q15 *xl = l->lea_ram;
    _q15 *wl = xl + maxn;
    _iq31 *res = (_iq31 *)(void *)(wl + maxn);
    sn_put_t put;
    uint16_t gi, s, r;
    sn_put_init(&put, l->out_fram & SN_OUT_FRAM);
    for (gi = 0; gi < n_groups; gi++, g += 3u + n_levels) {
        const uint16_t r0 = g[0], rows = g[1], nseg = g[2], kept = g[2u + level];
        const uint16_t used = (uint16_t)(kept * bw), stride = (uint16_t)(nseg * bw);
        const uint16_t n = sn_even(used);
        msp_mac_q15_params mp;
        mp.length = n;
        for (s = 0; s < kept; s++) { /* the kept segments of x, gathered once per group */
            sn_lea_load(xl + s * bw, l->in0 + segs[s], (uint16_t)(2u * bw));
        }
        if (n != used) {
            xl[used] = 0;
            wl[used] = 0;
        }
        SN_COUNT(act_bytes_read, 2u * used);
        for (r = 0; r < rows; r++, w += 2u * (uint32_t)stride) {
            int32_t acc = 0;
            if (kept) {
                sn_far_read(wl, w, (uint16_t)(2u * used));
                SN_LEA_TRY(msp_mac_q15(&mp, xl, wl, res));
                acc = *res >> 1; /* exact 2*sum unless it saturated */
                SN_COUNT(macs, used);
                SN_COUNT(weight_bytes_read, 2u * used);
            }
            acc += l->bias[r0 + r];
            sn_put(&put, l->out + r0 + r, sn_lea_requant(l, acc, l->shift0));
        }
        segs += nseg;
        SN_COUNT(act_bytes_written, 2u * rows);
    }
    sn_put_flush(&put);
}

/* The band's zero-padded input rows [y0 - p_h, y0 - p_h + rin) of every channel, row stride wp. */
static void sn_lea_band_in(const sn_layer *l, _q15 *dst, uint16_t y0, uint16_t rin, uint16_t wp) {
    const uint16_t *m = l->lea_meta;
    const uint16_t in_c = m[1], in_h = m[2], in_w = m[3], p_h = m[6], p_w = m[7];
    uint16_t c, r;
    for (c = 0; c < in_c; c++) {
        for (r = 0; r < rin; r++, dst += wp) {
            int16_t iy = (int16_t)(y0 + r - p_h);
            if (iy < 0 || iy >= (int16_t)in_h) {
                memset(dst, 0, 2u * wp);
                continue;
            }
            memset(dst, 0, 2u * p_w);
            sn_lea_load(dst + p_w, l->in0 + ((uint32_t)c * in_h + (uint16_t)iy) * in_w, (uint16_t)(2u * in_w));
            memset(dst + p_w + in_w, 0, 2u * (uint16_t)(wp - p_w - in_w));
            SN_COUNT(act_bytes_read, 2u * in_w);
        }
    }
}

/* shift >= 15 requantises on LEA when floor(k / 2^down) fits msp_offset_q15's int16 (lea_plan.conv_rq_on_lea) */
static int sn_lea_rq_fits(int32_t k, uint8_t down) {
    const int32_t q = k >> (down > 15 ? 15 : down);
    return down <= 15 && q >= -32768L && q <= 32767L;
}

void sn_op_lea_conv(const sn_layer *l, uint8_t level) {
    const uint16_t *m = l->lea_meta;
    const uint16_t in_c = m[1], k_h = m[4], taps = m[8], band = m[9], n_levels = m[10];
    const uint16_t wp = sn_even((uint16_t)(m[3] + 2u * m[7])); /* even: FIR sources 32-bit aligned */
    const uint16_t out_c = l->out_c, out_h = l->out_h, out_w = l->out_w;
    /* shift0 >= 1 (lea_plan): up = 15 - shift0 doublings on LEA, or a right shift by down on the CPU */
    const uint8_t up = (uint8_t)(l->shift0 < 15 ? 15 - l->shift0 : 0);
    const uint8_t down = (uint8_t)(l->shift0 < 15 ? 0 : l->shift0 - 15);
    const uint16_t in_max = sn_a4((uint16_t)(in_c * (band + k_h - 1u) * wp + taps + 2u));
    const uint16_t out_max = sn_a4(sn_even((uint16_t)(band * wp)));
    _q15 *xin = l->lea_ram, *part = xin + in_max, *acc = part + out_max, *coef = acc + out_max;
    sn_put_t put;
    uint16_t y0, oc, j, oy, ox;
    uint8_t part_scale = 0; /* part holds the fill of 2^(15 - down), at least flen long */
    sn_put_init(&put, l->out_fram & SN_OUT_FRAM);
    for (y0 = 0; y0 < out_h; y0 = (uint16_t)(y0 + band)) {
        const uint16_t rows = (uint16_t)(out_h - y0 < band ? out_h - y0 : band);
        const uint16_t rin = (uint16_t)(rows + k_h - 1u);
        const uint16_t flen = sn_even((uint16_t)(rows * wp));
        const uint16_t *om = m + 11;
        msp_fir_q15_params fp;
        msp_add_q15_params ap;
        sn_lea_band_in(l, xin, y0, rin, wp);
        memset(xin + in_c * rin * wp, 0, 2u * (taps + 2u)); /* FIR reads past the last plane: zeros */
        fp.length = flen;
        fp.tapLength = taps;
        fp.coeffs = coef;
        fp.enableCircularBuffer = false;
        ap.length = flen;
        for (oc = 0; oc < out_c; oc++, om += 1u + n_levels) {
            const uint16_t first = om[0], kept = om[level];
            const int32_t k = l->lea_k[oc];
            int16_t *out = l->out + ((uint32_t)oc * out_h + y0) * out_w;
            for (j = 0; j < kept; j++) {
                const uint16_t e = l->lea_idx[first + j];
                const uint16_t ic = (uint16_t)(e >> 8), ky = (uint16_t)(e & 0xFFu); /* no divide helper */
                sn_far_read(coef, *l->lea_w + 2u * (uint32_t)(first + j) * taps, (uint16_t)(2u * taps));
                SN_LEA_TRY(msp_fir_q15(&fp, xin + (ic * rin + ky) * wp, j ? part : acc));
                part_scale = (uint8_t)(part_scale && !j);
                if (j) {
                    SN_LEA_TRY(msp_add_q15(&ap, acc, part, acc));
                }
                SN_COUNT(macs, (uint32_t)rows * out_w * m[5]); /* k_w: the padding tap is no MAC */
                SN_COUNT(weight_bytes_read, 2u * taps);
            }
            /* Requantisation on LEA where it is exact (lea_golden.conv): shift < 15: up saturating doublings,
             * then + k; shift >= 15: k = q * 2^down + r (0 <= r < 2^down), sat16(acc + r), floor(/ 2^down)
             * as msp_mpy_q15 by 2^(15 - down), + q. The CPU then only copies the valid columns out (with the
             * fused ReLU). No kept row, or q beyond int16: the CPU requantises (rare). */
            if (kept && (up || sn_lea_rq_fits(k, down))) {
                msp_offset_q15_params op;
                op.length = flen;
                if (up) {
                    for (j = 0; j < up; j++) {
                        SN_LEA_TRY(msp_add_q15(&ap, acc, acc, acc));
                    }
                    op.offset = (_q15)k;
                } else {
                    const int32_t q = k >> down;
                    if (down) {
                        msp_mpy_q15_params mp;
                        mp.length = flen;
                        if (!part_scale) { /* part keeps the fill until a FIR writes it */
                            msp_fill_q15_params fl;
                            fl.length = flen;
                            fl.value = (_q15)(1 << (15 - down));
                            SN_LEA_TRY(msp_fill_q15(&fl, part));
                        }
                        part_scale = 1;
                        op.offset = (_q15)(k - (q << down));
                        SN_LEA_TRY(msp_offset_q15(&op, acc, acc));
                        SN_LEA_TRY(msp_mpy_q15(&mp, acc, part, acc));
                    }
                    op.offset = (_q15)q;
                }
                SN_LEA_TRY(msp_offset_q15(&op, acc, acc));
                for (oy = 0; oy < rows; oy++) {
                    const _q15 *a = acc + oy * wp;
                    if (!put.fram && l->relu == SN_ACT_RELU) { /* the common case, a tight loop */
                        for (ox = out_w; ox; ox--, a++) {
                            *out++ = *a < 0 ? 0 : *a;
                        }
                        continue;
                    }
                    for (ox = 0; ox < out_w; ox++) {
                        sn_put(&put, out++, sn_lea_act(l, a[ox]));
                    }
                }
            } else if (up) {
                /* no kept row: acc = 0, so y = k for every output */
                for (oy = 0; oy < rows; oy++) {
                    for (ox = 0; ox < out_w; ox++) {
                        sn_put(&put, out++, sn_lea_act(l, (int16_t)k));
                    }
                }
            } else {
                /* on the CPU: y = (acc + k) >> down == requantize(acc * 2^15 + bias, shift) */
                for (oy = 0; oy < rows; oy++) {
                    const _q15 *a = acc + oy * wp;
                    for (ox = 0; ox < out_w; ox++) {
                        int16_t y = sn_sat16(((int32_t)(kept ? a[ox] : 0) + k) >> down);
                        sn_put(&put, out++, sn_lea_act(l, y));
                    }
                }
            }
            SN_COUNT(act_bytes_written, 2u * rows * out_w);
        }
    }
    sn_put_flush(&put);
}
#endif
