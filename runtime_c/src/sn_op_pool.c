/* Max, average and global average pooling (1-D as H = 1). The exponent is kept; average pools
 * divide the int32 window sum by a rounding shift, through a Q15 reciprocal when the window is not a
 * power of two (compiler/golden.py documents the rule). Max-pool padding taps are skipped. */
#include "model.h" /* SN_MODEL_AVGPOOLS, SN_MODEL_GENERIC_MAXPOOLS: only the loops used are built */
#include "sn_runtime.h"

#ifndef SN_MODEL_AVGPOOLS /* a model.h from before these switches: build every loop */
#define SN_MODEL_AVGPOOLS 1
#endif
#ifndef SN_MODEL_GENERIC_MAXPOOLS
#define SN_MODEL_GENERIC_MAXPOOLS 1
#endif

#if SN_MODEL_AVGPOOLS || SN_MODEL_GENERIC_MAXPOOLS

/* Inlined once per op with is_max constant, so max-pool carries no int32 sum. Layer fields are copied
 * into locals (the output stores could alias them) and only pointer/index increments run inside the
 * loops: on the MSP430 every multiply is a helper call. Windows inside the input skip the tests. */
static inline __attribute__((always_inline)) void sn_pool(const sn_layer *l, int is_max) {
    const uint16_t out_c = l->out_c, out_h = l->out_h, out_w = l->out_w;
    const uint16_t k_h = l->k_h, k_w = l->k_w, in_w = l->in_w;
    const int16_t in_h = (int16_t)l->in_h, s_h = (int16_t)l->s_h, s_w = (int16_t)l->s_w;
    const uint16_t in_plane = (uint16_t)(l->in_h * in_w);
    const uint16_t y_step = (uint16_t)(l->s_h * in_w);
    const int16_t mul = l->mul;
    const int8_t shift = l->shift0;
    const uint16_t window = (uint16_t)(k_h * k_w);
    uint16_t c, oy, ox, ky, kx, n = 0, reads = 0;
    const int16_t *chan = l->in0;
    int16_t *out = l->out;
    sn_put_t w;
    sn_put_init(&w, l->out_fram & SN_OUT_FRAM);
    for (c = 0; c < out_c; c++, chan += in_plane) {
        int16_t y0 = (int16_t)-(int16_t)l->p_h;
        uint16_t row_off = (uint16_t)(0u - (uint16_t)((uint16_t)l->p_h * in_w)); /* y0 * in_w mod 2^16 */
        for (oy = 0; oy < out_h; oy++, y0 = (int16_t)(y0 + s_h), row_off = (uint16_t)(row_off + y_step)) {
            int16_t x0 = (int16_t)-(int16_t)l->p_w;
            const int rows_in = y0 >= 0 && (int16_t)(y0 + (int16_t)k_h) <= in_h;
            for (ox = 0; ox < out_w; ox++, x0 = (int16_t)(x0 + s_w)) {
                int16_t best = -32768;
                int32_t sum = 0;
                if (rows_in && x0 >= 0 && (int16_t)(x0 + (int16_t)k_w) <= (int16_t)in_w) {
                    const int16_t *line = chan + (uint16_t)(row_off + (uint16_t)x0);
                    for (ky = k_h; ky; ky--, line += in_w) {
                        const int16_t *p = line;
                        for (kx = k_w; kx; kx--) {
                            int16_t v = *p++;
                            if (is_max) {
                                if (v > best) {
                                    best = v;
                                }
                            } else {
                                sum += v;
                            }
                        }
                    }
                    reads = (uint16_t)(reads + window);
                } else {
                    int16_t iy = y0;
                    uint16_t off = row_off;
                    for (ky = 0; ky < k_h; ky++, iy++, off = (uint16_t)(off + in_w)) {
                        const int16_t *line;
                        int16_t ix = x0;
                        if (iy < 0 || iy >= in_h) {
                            continue;
                        }
                        line = chan + off;
                        for (kx = 0; kx < k_w; kx++, ix++) {
                            int16_t v;
                            if (ix < 0 || ix >= (int16_t)in_w) {
                                continue;
                            }
                            v = line[ix];
                            reads++;
                            if (is_max) {
                                if (v > best) {
                                    best = v;
                                }
                            } else {
                                sum += v;
                            }
                        }
                    }
                }
                sn_put(&w, out++, is_max ? best : sn_sat16(sn_rshift_round(sum * (int32_t)mul, shift)));
                n++;
            }
        }
    }
    sn_put_flush(&w);
    SN_COUNT(act_bytes_read, 2u * reads);
    (void)reads;
    SN_COUNT(act_bytes_written, 2u * n);
    (void)n;
}
#endif

/* 2x2 max-pool, stride 2, no padding, output in SRAM (LeNet's pools): two row pointers, four loads
 * and three compares per output, no bounds tests (the generic loop spends about 160 cycles on one). */
static void sn_maxpool_2x2(const sn_layer *l) {
    const uint16_t out_c = l->out_c, out_h = l->out_h, out_w = l->out_w, in_w = l->in_w;
    const uint16_t row_skip = (uint16_t)(2u * in_w - 2u * out_w);          /* to the next pair of rows */
    const uint16_t chan_skip = (uint16_t)((l->in_h - 2u * out_h) * in_w);  /* an odd last input row */
    const int16_t *a = l->in0;
    int16_t *o = l->out;
    uint16_t c, oy, ox;
    for (c = 0; c < out_c; c++, a += chan_skip) {
        for (oy = 0; oy < out_h; oy++, a += row_skip) {
            const int16_t *b = a + in_w;
            for (ox = out_w; ox; ox--, a += 2, b += 2) {
                int16_t v = a[0], t = a[1];
                if (t > v) {
                    v = t;
                }
                t = b[0];
                if (t > v) {
                    v = t;
                }
                t = b[1];
                if (t > v) {
                    v = t;
                }
                *o++ = v;
            }
        }
    }
    SN_COUNT(act_bytes_read, 8u * (uint32_t)out_c * out_h * out_w);
    SN_COUNT(act_bytes_written, 2u * (uint32_t)out_c * out_h * out_w);
}

void sn_op_maxpool(const sn_layer *l, uint8_t level) {
    (void)level;
    if (l->k_h == 2 && l->k_w == 2 && l->s_h == 2 && l->s_w == 2 && !l->p_h && !l->p_w &&
        !(l->out_fram & SN_OUT_FRAM) && l->in_h >= 2u * l->out_h && l->in_w >= 2u * l->out_w) {
        sn_maxpool_2x2(l);
        return;
    }
#if SN_MODEL_GENERIC_MAXPOOLS
    sn_pool(l, 1);
#endif
}

#if SN_MODEL_AVGPOOLS
void sn_op_avgpool(const sn_layer *l, uint8_t level) {
    (void)level;
    sn_pool(l, 0);
}

void sn_op_global_avgpool(const sn_layer *l, uint8_t level) {
    uint16_t plane = (uint16_t)(l->in_h * l->in_w);
    uint16_t c, i;
    sn_put_t w;
    (void)level;
    sn_put_init(&w, l->out_fram & SN_OUT_FRAM);
    for (c = 0; c < l->out_c; c++) {
        const int16_t *chan = l->in0 + (uint16_t)(c * plane);
        int32_t sum = 0;
        for (i = 0; i < plane; i++) {
            sum += chan[i];
        }
        sn_put(&w, l->out + c, sn_sat16(sn_rshift_round(sum * (int32_t)l->mul, l->shift0)));
    }
    sn_put_flush(&w);
    SN_COUNT(act_bytes_read, 2u * (uint32_t)l->out_c * plane);
    SN_COUNT(act_bytes_written, 2u * l->out_c);
}
#else
/* The model has no average pool (sn_op_for still names these). */
void sn_op_avgpool(const sn_layer *l, uint8_t level) {
    (void)l;
    (void)level;
}

void sn_op_global_avgpool(const sn_layer *l, uint8_t level) {
    (void)l;
    (void)level;
}
#endif
