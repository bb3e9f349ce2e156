/* DSPLib's LEA functions in the simulator image: each packs its arguments into the parameter block that
 * lea.h documents and triggers the simulator's LEA model through the simulator-only port at 0x0FF0.
 *
 * A board build does not compile this file: it links TI's DSPLib (built with MSP_USE_LEA) against TI's
 * headers instead of runtime_c/kernels_lea/dsplib/DSPLib.h, with the same calls. DSPLib functions that TI
 * runs on the CPU (msp_scale_q15) are plain C in runtime_c/kernels_lea/dsplib/dsplib_cpu.c.
 *
 * Built with: clang-19 --target=msp430 -mmcu=msp430fr5994 -Werror
 *             -I runtime_c/kernels_lea/dsplib -I boards/msp430fr5994/sim
 */
#include <stdint.h>

#include "DSPLib.h"
#include "lea.h"

/* The block of the last call. One static block is enough: DSPLib itself holds one LEA lock, so calls do not
 * nest. Global (not static) so a debugger or test can read it; volatile so every word is stored before the
 * port write that hands it over. */
volatile uint16_t sim_lea_block[8];

#define SIM_PORT(a) (*(volatile uint16_t *)(uintptr_t)(a))

static uint16_t lea_addr(const volatile void *p) { return (uint16_t)(uintptr_t)p; }

static msp_status sim_lea_run(uint16_t fn)
{
    uint32_t block = (uint32_t)(uintptr_t)sim_lea_block;
    SIM_PORT(SIM_LEA_PORT_ADDR_LO) = (uint16_t)(block & 0xFFFFu);
    SIM_PORT(SIM_LEA_PORT_ADDR_HI) = (uint16_t)(block >> 16);
    SIM_PORT(SIM_LEA_PORT_CMD) = fn;                      /* the simulator runs the model here */
    /* 0 and the positive codes are msp_status values; negative ones mean the run was stopped */
    return (msp_status)(int16_t)SIM_PORT(SIM_LEA_PORT_CMD);
}

msp_status msp_mac_q15(const msp_mac_q15_params *params, const _q15 *srcA, const _q15 *srcB, _iq31 *result)
{
    sim_lea_block[0] = params->length;
    sim_lea_block[1] = lea_addr(srcA);
    sim_lea_block[2] = lea_addr(srcB);
    sim_lea_block[3] = lea_addr(result);
    return sim_lea_run(SIM_LEA_FN_MAC_Q15);
}

msp_status msp_matrix_mpy_q15(const msp_matrix_mpy_q15_params *params, const _q15 *srcA, const _q15 *srcB,
                              _q15 *dst)
{
    sim_lea_block[0] = params->srcARows;
    sim_lea_block[1] = params->srcACols;
    sim_lea_block[2] = params->srcBRows;
    sim_lea_block[3] = params->srcBCols;
    sim_lea_block[4] = lea_addr(srcA);
    sim_lea_block[5] = lea_addr(srcB);
    sim_lea_block[6] = lea_addr(dst);
    return sim_lea_run(SIM_LEA_FN_MATRIX_MPY_Q15);
}

msp_status msp_fir_q15(const msp_fir_q15_params *params, const _q15 *src, _q15 *dst)
{
    sim_lea_block[0] = params->length;
    sim_lea_block[1] = params->tapLength;
    sim_lea_block[2] = lea_addr(params->coeffs);
    sim_lea_block[3] = params->enableCircularBuffer ? 1u : 0u;
    sim_lea_block[4] = lea_addr(src);
    sim_lea_block[5] = lea_addr(dst);
    return sim_lea_run(SIM_LEA_FN_FIR_Q15);
}

static msp_status binary(uint16_t fn, uint16_t length, const _q15 *srcA, const _q15 *srcB, _q15 *dst)
{
    sim_lea_block[0] = length;
    sim_lea_block[1] = lea_addr(srcA);
    sim_lea_block[2] = lea_addr(srcB);
    sim_lea_block[3] = lea_addr(dst);
    return sim_lea_run(fn);
}

msp_status msp_add_q15(const msp_add_q15_params *params, const _q15 *srcA, const _q15 *srcB, _q15 *dst)
{
    return binary(SIM_LEA_FN_ADD_Q15, params->length, srcA, srcB, dst);
}

msp_status msp_mpy_q15(const msp_mpy_q15_params *params, const _q15 *srcA, const _q15 *srcB, _q15 *dst)
{
    return binary(SIM_LEA_FN_MPY_Q15, params->length, srcA, srcB, dst);
}

msp_status msp_offset_q15(const msp_offset_q15_params *params, const _q15 *src, _q15 *dst)
{
    sim_lea_block[0] = params->length;
    sim_lea_block[1] = (uint16_t)params->offset;
    sim_lea_block[2] = lea_addr(src);
    sim_lea_block[3] = lea_addr(dst);
    return sim_lea_run(SIM_LEA_FN_OFFSET_Q15);
}

msp_status msp_max_q15(const msp_max_q15_params *params, const _q15 *src, _q15 *max, uint16_t *index)
{
    sim_lea_block[0] = params->length;
    sim_lea_block[1] = lea_addr(src);
    sim_lea_block[2] = lea_addr(max);
    sim_lea_block[3] = lea_addr(index);
    return sim_lea_run(SIM_LEA_FN_MAX_Q15);
}

msp_status msp_fill_q15(const msp_fill_q15_params *params, _q15 *dst)
{
    sim_lea_block[0] = params->length;
    sim_lea_block[1] = (uint16_t)params->value;
    sim_lea_block[2] = lea_addr(dst);
    return sim_lea_run(SIM_LEA_FN_FILL_Q15);
}

msp_status msp_copy_q15(const msp_copy_q15_params *params, const _q15 *src, _q15 *dst)
{
    sim_lea_block[0] = params->length;
    sim_lea_block[1] = lea_addr(src);
    sim_lea_block[2] = lea_addr(dst);
    return sim_lea_run(SIM_LEA_FN_COPY_Q15);
}
