/* Element-wise ops: residual add (both inputs aligned to the output exponent with rounding shifts,
 * left shifts capped at 15 so the int32 sum is exact, then saturated) and stand-alone ReLU / ReLU6. */
#include "sn_runtime.h"

static uint16_t sn_len(const sn_layer *l) {
    return (uint16_t)(l->out_c * l->out_h * l->out_w);
}

void sn_op_add(const sn_layer *l, uint8_t level) {
    uint16_t i, n = sn_len(l);
    sn_put_t w;
    (void)level;
    sn_put_init(&w, l->out_fram & SN_OUT_FRAM);
    for (i = 0; i < n; i++) {
        int32_t a = sn_rshift_round(l->in0[i], l->shift0);
        int32_t b = sn_rshift_round(l->in1[i], l->shift1);
        sn_put(&w, l->out + i, sn_sat16(a + b));
    }
    sn_put_flush(&w);
    SN_COUNT(act_bytes_read, 4u * n);
    SN_COUNT(act_bytes_written, 2u * n);
}

void sn_op_relu(const sn_layer *l, uint8_t level) {
    uint16_t i, n = sn_len(l);
    const int16_t top = l->relu == SN_ACT_RELU_MAX ? l->relu_max : 32767;   /* ReLU6 */
    sn_put_t w;
    (void)level;
    sn_put_init(&w, l->out_fram & SN_OUT_FRAM);
    for (i = 0; i < n; i++) {
        int16_t v = l->in0[i];
        sn_put(&w, l->out + i, v < 0 ? 0 : v > top ? top : v);
    }
    sn_put_flush(&w);
    SN_COUNT(act_bytes_read, 2u * n);
    SN_COUNT(act_bytes_written, 2u * n);
}
