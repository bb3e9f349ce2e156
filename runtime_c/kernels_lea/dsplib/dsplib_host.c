/* Our functional model of the DSPLib LEA functions the LEA engine calls, for the host board: the
 * arithmetic of boards/msp430fr5994/sim/lea.c and python/sparsenest/compiler/lea_ref.py (DSPLib's C
 * reference), on host pointers. The size and 32-bit alignment rules are checked as DSPLib checks them;
 * "inside LEA RAM" cannot be (host addresses), the simulator image checks it. Every input is read before
 * an output is written (in-place calls). A board build links TI's DSPLib, the simulator image the
 * shims (boards/msp430fr5994/sim/dsplib_shim.c); neither compiles this file. */
#include <stdint.h>

#include "DSPLib.h"

#define SN_HOST_LEA_MAX 2048u /* Q15 values in 4 KB of LEA RAM: no operand is longer */

static int misaligned(const void *p) { return ((uintptr_t)p & 3u) != 0; }

static int64_t floor_q15(int64_t v) { return v >= 0 ? v / 32768 : -((-v + 32767) / 32768); }

static _q15 sat16(int64_t v) { return (_q15)(v > 32767 ? 32767 : v < -32768 ? -32768 : v); }

msp_status msp_mac_q15(const msp_mac_q15_params *params, const _q15 *srcA, const _q15 *srcB, _iq31 *result) {
    uint16_t n = params->length, i;
    int64_t sum = 0;
    if (n == 0 || (n & 1u) || n > SN_HOST_LEA_MAX) {
        return MSP_SIZE_ERROR;
    }
    if (misaligned(srcA) || misaligned(srcB) || misaligned(result)) {
        return MSP_LEA_INVALID_ADDRESS;
    }
    for (i = 0; i < n; i++) {
        sum += (int32_t)srcA[i] * srcB[i];
    }
    sum *= 2;
    *result = (_iq31)(sum > INT32_MAX ? INT32_MAX : sum < INT32_MIN ? INT32_MIN : sum);
    return MSP_SUCCESS;
}

msp_status msp_fir_q15(const msp_fir_q15_params *params, const _q15 *src, _q15 *dst) {
    uint16_t n = params->length, taps = params->tapLength, i, k;
    _q15 out[SN_HOST_LEA_MAX];
    if (n == 0 || (n & 1u) || taps == 0 || (taps & 1u) || n > SN_HOST_LEA_MAX || params->enableCircularBuffer) {
        return MSP_SIZE_ERROR; /* the circular buffer is not modelled here: the engine never uses it */
    }
    if (misaligned(src) || misaligned(dst) || misaligned(params->coeffs)) {
        return MSP_LEA_INVALID_ADDRESS;
    }
    for (i = 0; i < n; i++) {
        int64_t sum = 0;
        for (k = 0; k < taps; k++) {
            sum += (int32_t)src[i + k] * params->coeffs[taps - 1u - k];
        }
        out[i] = sat16(floor_q15(sum));
    }
    for (i = 0; i < n; i++) {
        dst[i] = out[i];
    }
    return MSP_SUCCESS;
}

/* The element-wise functions' checks, as DSPLib makes them: an even, non-zero length, 32-bit aligned operands */
static msp_status ew_check(uint16_t n, const void *a, const void *b, const void *dst) {
    if (n == 0 || (n & 1u)) {
        return MSP_SIZE_ERROR;
    }
    return misaligned(a) || misaligned(b) || misaligned(dst) ? MSP_LEA_INVALID_ADDRESS : MSP_SUCCESS;
}

msp_status msp_add_q15(const msp_add_q15_params *params, const _q15 *srcA, const _q15 *srcB, _q15 *dst) {
    uint16_t n = params->length, i;
    msp_status rc = ew_check(n, srcA, srcB, dst);
    if (rc != MSP_SUCCESS) {
        return rc;
    }
    for (i = 0; i < n; i++) {
        dst[i] = sat16((int32_t)srcA[i] + srcB[i]);
    }
    return MSP_SUCCESS;
}

msp_status msp_offset_q15(const msp_offset_q15_params *params, const _q15 *src, _q15 *dst) {
    uint16_t n = params->length, i;
    msp_status rc = ew_check(n, src, src, dst);
    if (rc != MSP_SUCCESS) {
        return rc;
    }
    for (i = 0; i < n; i++) {
        dst[i] = sat16((int32_t)src[i] + params->offset);
    }
    return MSP_SUCCESS;
}

msp_status msp_mpy_q15(const msp_mpy_q15_params *params, const _q15 *srcA, const _q15 *srcB, _q15 *dst) {
    uint16_t n = params->length, i;
    msp_status rc = ew_check(n, srcA, srcB, dst);
    if (rc != MSP_SUCCESS) {
        return rc;
    }
    for (i = 0; i < n; i++) {
        /* floor(a * b / 2^15) kept to 16 bits: only -1 * -1 leaves int16 (and wraps), as lea.c */
        int32_t p = (int32_t)srcA[i] * srcB[i];
        int32_t q = p >= 0 ? p / 32768 : -(int32_t)(((uint32_t)-p + 32767u) / 32768u);
        dst[i] = (_q15)(uint16_t)((uint32_t)q & 0xFFFFu);
    }
    return MSP_SUCCESS;
}

msp_status msp_fill_q15(const msp_fill_q15_params *params, _q15 *dst) {
    uint16_t n = params->length, i;
    msp_status rc = ew_check(n, dst, dst, dst);
    if (rc != MSP_SUCCESS) {
        return rc;
    }
    for (i = 0; i < n; i++) {
        dst[i] = params->value;
    }
    return MSP_SUCCESS;
}
