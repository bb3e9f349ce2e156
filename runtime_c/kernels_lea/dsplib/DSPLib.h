/* Declaration-only subset of the TI MSP DSP Library (DSPLib 1.30) API that sparsenest's LEA back-end calls.
 *
 * Written for sparsenest from the DSPLib API documentation (function names, parameter structs, status
 * codes and the LEA operand rules); it holds no TI code. Its purpose:
 *   - board build: put TI's DSPLib include folder first on the include path instead of this one and link
 *     TI's library (built with MSP_USE_LEA); the names, struct fields and argument order below are TI's, so
 *     the back-end's calls compile unchanged against either header;
 *   - simulator image: boards/msp430fr5994/sim/dsplib_shim.c implements these prototypes by handing a
 *     parameter block to the simulator's LEA model (boards/msp430fr5994/sim/lea.h);
 *   - host board: links the same functional model (boards/msp430fr5994/sim/lea.c) through a flat bus.
 *
 * LEA rules every function marked [LEA] checks (as DSPLib does with its diagnostics enabled):
 *   - every vector operand lies in LEA RAM, 0x2C00..0x3BFF (the top 4 KB of SRAM), and starts on a 32-bit
 *     boundary (address % 4 == 0); otherwise MSP_LEA_INVALID_ADDRESS;
 *   - an operand that starts inside LEA RAM but runs past its end gives MSP_LEA_OUT_OF_RANGE;
 *   - vector lengths are multiples of two (MSP_SIZE_ERROR otherwise).
 * Place LEA operands with the board's SN_LEA_RAM section macro (4-byte aligned). Use only TI's names from
 * this header, so that the same calls compile against TI's headers on a board.
 * Arithmetic (rounding, accumulator width, saturation) is documented per function below and in
 * python/sparsenest/compiler/lea_ref.py (the numpy reference the simulator is tested against).
 */
#ifndef SPARSENEST_DSPLIB_H
#define SPARSENEST_DSPLIB_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ types */
typedef int16_t _q15;    /* signed Q15: 1 sign bit, 15 fraction bits */
typedef int32_t _iq31;   /* signed Q31: 1 sign bit, 31 fraction bits */

typedef enum {
    MSP_SUCCESS = 0,
    MSP_SIZE_ERROR = 1,                 /* a length breaks the function's size rule */
    MSP_SHIFT_SIZE_ERROR = 2,           /* a shift count out of range */
    MSP_TABLE_SIZE_ERROR = 3,
    MSP_LEA_BUSY = 4,
    MSP_LEA_INVALID_ADDRESS = 5,        /* an operand does not start in LEA RAM or is not 32-bit aligned */
    MSP_LEA_OUT_OF_RANGE = 6,           /* an operand runs past the end of LEA RAM */
    MSP_LEA_SCALAR_INCONSISTENCY = 7,
    MSP_LEA_COMMAND_OVERFLOW = 8,
    MSP_LEA_INCORRECT_REVISION = 9
} msp_status;

/* Byte alignment of a circular FIR input buffer of n Q15 samples per block (the buffer holds 2n). */
#define MSP_ALIGN_FIR_Q15(n) ((n) * 4)

/* --------------------------------------------------------------------------------- vector [LEA] */
typedef struct msp_add_q15_params {
    uint16_t length;            /* elements, even */
} msp_add_q15_params;

typedef struct msp_mpy_q15_params {
    uint16_t length;            /* elements, even */
} msp_mpy_q15_params;

typedef struct msp_mac_q15_params {
    uint16_t length;            /* elements, even */
} msp_mac_q15_params;

typedef struct msp_offset_q15_params {
    uint16_t length;            /* elements, even */
    _q15 offset;                /* added to every element */
} msp_offset_q15_params;

typedef struct msp_max_q15_params {
    uint16_t length;            /* elements, even */
} msp_max_q15_params;

/* dst[i] = sat16(srcA[i] + srcB[i]) */
msp_status msp_add_q15(const msp_add_q15_params *params, const _q15 *srcA, const _q15 *srcB, _q15 *dst);

/* dst[i] = (srcA[i] * srcB[i]) >> 15, floor, kept to 16 bits (only -1 * -1 overflows: it wraps to 0x8000) */
msp_status msp_mpy_q15(const msp_mpy_q15_params *params, const _q15 *srcA, const _q15 *srcB, _q15 *dst);

/* *result = sat32(2 * sum_i srcA[i] * srcB[i]): the exact sum (wide accumulator), doubled to Q31, saturated
 * once (so exact only while |sum| < 2^30; a single -1 * -1 product saturates). result must lie in LEA RAM
 * like the sources. */
msp_status msp_mac_q15(const msp_mac_q15_params *params, const _q15 *srcA, const _q15 *srcB, _iq31 *result);

/* dst[i] = sat16(src[i] + offset) */
msp_status msp_offset_q15(const msp_offset_q15_params *params, const _q15 *src, _q15 *dst);

/* *max = the largest element, *index = the position of its last occurrence. max and index may lie anywhere
 * in RAM (the CPU stores them); src must lie in LEA RAM. */
msp_status msp_max_q15(const msp_max_q15_params *params, const _q15 *src, _q15 *max, uint16_t *index);

/* --------------------------------------------------------------------------------- utility [LEA] */
typedef struct msp_fill_q15_params {
    uint16_t length;            /* elements, even */
    _q15 value;
} msp_fill_q15_params;

typedef struct msp_copy_q15_params {
    uint16_t length;            /* elements, even */
} msp_copy_q15_params;

msp_status msp_fill_q15(const msp_fill_q15_params *params, _q15 *dst);
msp_status msp_copy_q15(const msp_copy_q15_params *params, const _q15 *src, _q15 *dst);

/* ---------------------------------------------------------------------------------- matrix [LEA] */
typedef struct msp_matrix_mpy_q15_params {
    uint16_t srcARows;          /* rows of A (DSPLib issues one LEA command per row) */
    uint16_t srcACols;          /* columns of A = rows of B, even */
    uint16_t srcBRows;
    uint16_t srcBCols;          /* columns of B, even */
} msp_matrix_mpy_q15_params;

/* dst (srcARows x srcBCols, row-major) = sat16(floor(A . B / 2^15)), exact sums before the shift. */
msp_status msp_matrix_mpy_q15(const msp_matrix_mpy_q15_params *params, const _q15 *srcA, const _q15 *srcB,
                              _q15 *dst);

/* ---------------------------------------------------------------------------------- filter [LEA] */
typedef struct msp_fir_q15_params {
    uint16_t length;            /* output samples, even (a power of two with the circular buffer) */
    uint16_t tapLength;         /* coefficients, even */
    const _q15 *coeffs;         /* in LEA RAM, 32-bit aligned */
    bool enableCircularBuffer;  /* src is a 2*length-sample ring aligned to MSP_ALIGN_FIR_Q15(length) */
} msp_fir_q15_params;

/* dst[i] = sat16(floor(sum_k src[i + k] * coeffs[tapLength - 1 - k] / 2^15)), k < tapLength: a true
 * convolution (coefficients read last to first); src holds length + tapLength - 1 samples, or, with the
 * circular buffer, sample i + k is read modulo the 2*length-sample ring that contains src. */
msp_status msp_fir_q15(const msp_fir_q15_params *params, const _q15 *src, _q15 *dst);

/* ------------------------------------------------------------------------------- vector [CPU] */
typedef struct msp_scale_q15_params {
    uint16_t length;            /* elements, even */
    _q15 scale;                 /* Q15 factor */
    uint8_t shift;              /* left shift of the product, 0..15 */
} msp_scale_q15_params;

/* dst[i] = (src[i] * scale) >> (15 - shift), floor, kept to 16 bits (wraps; no saturation). DSPLib runs this
 * one on the CPU (no LEA command), so its operands may lie anywhere and the simulator times its
 * instructions like any other code. */
msp_status msp_scale_q15(const msp_scale_q15_params *params, const _q15 *src, _q15 *dst);

#ifdef __cplusplus
}
#endif

#endif /* SPARSENEST_DSPLIB_H */
