/* Convolution (1-D and 2-D, grouped) and fully connected layers on the nested sparse kernels.
 *
 * A convolution gathers, per output position and group, the im2col patch (zero padding applied) and
 * calls the layer's sparse kernel once on all the group's filters: acc[r] = bias[r] + sum w * patch.
 * Patch columns are ordered (channel, ky, kx), the formats' column order. */
#include "sn_runtime.h"

static void sn_im2col(const sn_layer *l, uint16_t c0, uint16_t oy, uint16_t ox, int16_t *patch) {
    uint16_t cg = (uint16_t)(l->in_c / l->groups);
    uint16_t plane = (uint16_t)(l->in_h * l->in_w);
    int16_t y0 = (int16_t)((int16_t)(oy * l->s_h) - (int16_t)l->p_h);
    int16_t x0 = (int16_t)((int16_t)(ox * l->s_w) - (int16_t)l->p_w);
    uint16_t c, ky, kx, n = 0, reads = 0;
    for (c = 0; c < cg; c++) {
        const int16_t *chan = l->in0 + (uint16_t)(c0 + c) * plane;
        for (ky = 0; ky < l->k_h; ky++) {
            int16_t iy = (int16_t)(y0 + (int16_t)(ky * l->d_h));
            int row_ok = iy >= 0 && iy < (int16_t)l->in_h;
            const int16_t *line = chan + (row_ok ? (uint16_t)iy * l->in_w : 0);
            for (kx = 0; kx < l->k_w; kx++) {
                int16_t ix = (int16_t)(x0 + (int16_t)(kx * l->d_w));
                if (row_ok && ix >= 0 && ix < (int16_t)l->in_w) {
                    patch[n++] = line[ix];
                    reads++;
                } else {
                    patch[n++] = 0;
                }
            }
        }
    }
    SN_COUNT(act_bytes_read, 2u * reads);
    (void)reads;
    SN_COUNT(act_bytes_written, 2u * n);
}

/* acc = bias; acc += W x (the format kernel); out[r * stride] = requantize(acc[r]) */
static void sn_matvec(const sn_layer *l, uint16_t matrix, uint8_t level, const int16_t *x,
                      const int32_t *bias, uint16_t rows, int16_t *out, uint16_t stride) {
    uint16_t r;
    int32_t *acc = l->acc;
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
    for (r = 0; r < rows; r++) {
        int16_t y = sn_requantize(acc[r], l->shift0);
        out[(uint16_t)(r * stride)] = (l->relu && y < 0) ? 0 : y;
    }
    SN_COUNT(act_bytes_written, 2u * rows);
    if (l->out_fram) {
        SN_COUNT(fram_bytes_written, 2u * rows);
    }
}

void sn_op_conv(const sn_layer *l, uint8_t level) {
    uint16_t rows = (uint16_t)(l->out_c / l->groups);
    uint16_t cg = (uint16_t)(l->in_c / l->groups);
    uint16_t plane = (uint16_t)(l->out_h * l->out_w);
    uint16_t oy, ox, g;
    for (oy = 0; oy < l->out_h; oy++) {
        for (ox = 0; ox < l->out_w; ox++) {
            uint16_t pos = (uint16_t)(oy * l->out_w + ox);
            for (g = 0; g < l->groups; g++) {
                uint16_t r0 = (uint16_t)(g * rows);
                sn_im2col(l, (uint16_t)(g * cg), oy, ox, l->patch);
                sn_matvec(l, (uint16_t)(l->matrix + g), level, l->patch, l->bias + r0, rows,
                          l->out + (uint16_t)(r0 * plane) + pos, plane);
            }
        }
    }
}

void sn_op_linear(const sn_layer *l, uint8_t level) {
    sn_matvec(l, l->matrix, level, l->in0, l->bias, l->out_c, l->out, 1);
}
