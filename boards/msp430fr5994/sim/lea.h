/* LEA (Low-Energy Accelerator) model of the MSP430FR5994 simulator, at the DSPLib interface.
 *
 * The simulator image's DSPLib shims (dsplib_shim.c) pack each call into a parameter block in simulated
 * memory and trigger the model through a simulator-only port:
 *     0x0FF0  word: parameter block address, low 16 bits
 *     0x0FF2  word: parameter block address, high bits (0 in the 16-bit simulator image)
 *     0x0FF4  word write: SIM_LEA_FN_* code -> the core calls sim_lea_call(bus, fn, block, ...), holds the
 *             CPU for cost.cycles and charges cost.energy_nj;
 *             word read: the int16 return code of the last call (SIM_LEA_OK or SIM_LEA_E*).
 *
 * This file and lea.c depend on nothing but <stdint.h>/<string.h>/<math.h>: the core reaches memory only
 * through the bus callbacks, so the host board links the same model (see lea.c's head comment).
 *
 * Parameter block: little-endian 16-bit words, word i at block + 2*i. Addresses are 16-bit (every LEA
 * operand lies in LEA RAM; the image uses the small memory model). TI's struct fields come first in TI's
 * order, one word each (a bool is 0 or 1, a _q15 is its two's-complement bits), then the pointer
 * arguments in TI's order:
 *
 *   fn                       words
 *   SIM_LEA_FN_MAC_Q15        length, srcA, srcB, result
 *   SIM_LEA_FN_MATRIX_MPY_Q15 srcARows, srcACols, srcBRows, srcBCols, srcA, srcB, dst
 *   SIM_LEA_FN_FIR_Q15        length, tapLength, coeffs, enableCircularBuffer, src, dst
 *   SIM_LEA_FN_ADD_Q15        length, srcA, srcB, dst
 *   SIM_LEA_FN_MPY_Q15        length, srcA, srcB, dst
 *   SIM_LEA_FN_OFFSET_Q15     length, offset, src, dst
 *   SIM_LEA_FN_MAX_Q15        length, src, max, index          (max/index: any even RAM address)
 *   SIM_LEA_FN_FILL_Q15       length, value, dst
 *   SIM_LEA_FN_COPY_Q15       length, src, dst
 *
 * Return codes: 0 and the positive codes equal TI's msp_status values, so the shim returns them as they
 * are; negative codes are simulator misuse (unknown function, costs never set): the core should stop the
 * run with the message. On any error nothing is written and the cost is zero.
 */
#ifndef SPARSENEST_SIM_LEA_H
#define SPARSENEST_SIM_LEA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- contract with the simulator core */
/* cost of one call: cycles the CPU is held, lea_ops = MACs + vector elements, energy in nJ */
typedef struct sim_lea_cost { uint64_t cycles; uint64_t lea_ops; double energy_nj; } sim_lea_cost;
typedef struct sim_lea_bus {
    void *ctx;
    uint8_t  (*rd8)(void *ctx, uint32_t addr);
    void     (*wr8)(void *ctx, uint32_t addr, uint8_t v);
} sim_lea_bus;
int sim_lea_call(const sim_lea_bus *bus, uint16_t fn, uint32_t params, sim_lea_cost *cost, char *msg, int msg_len);
/* cost may be NULL; msg may be NULL (or msg_len 0): then no message is written */

/* -------------------------------------------------------------------------------- the MMIO port */
#define SIM_LEA_PORT_ADDR_LO 0x0FF0u
#define SIM_LEA_PORT_ADDR_HI 0x0FF2u
#define SIM_LEA_PORT_CMD     0x0FF4u

/* ------------------------------------------------------------------------------- function codes */
#define SIM_LEA_FN_MAC_Q15        1u
#define SIM_LEA_FN_MATRIX_MPY_Q15 2u
#define SIM_LEA_FN_FIR_Q15        3u
#define SIM_LEA_FN_ADD_Q15        4u
#define SIM_LEA_FN_MPY_Q15        5u
#define SIM_LEA_FN_OFFSET_Q15     6u
#define SIM_LEA_FN_MAX_Q15        7u
#define SIM_LEA_FN_FILL_Q15       8u
#define SIM_LEA_FN_COPY_Q15       9u

/* --------------------------------------------------------------------------------- return codes */
#define SIM_LEA_OK          0   /* MSP_SUCCESS */
#define SIM_LEA_ESIZE       1   /* MSP_SIZE_ERROR: odd/zero length, A cols != B rows, bad circular length */
#define SIM_LEA_EADDR       5   /* MSP_LEA_INVALID_ADDRESS: operand starts outside LEA RAM or not 4-aligned */
#define SIM_LEA_ERANGE      6   /* MSP_LEA_OUT_OF_RANGE: operand runs past the end of LEA RAM */
#define SIM_LEA_EFN        (-1) /* unknown SIM_LEA_FN_* code */
#define SIM_LEA_ENOCOSTS   (-2) /* sim_lea_set_costs() was never called */
#define SIM_LEA_ECOSTS     (-3) /* sim_lea_set_costs() got a negative or non-finite constant */

/* LEA RAM (data sheet memory organisation): 0x2C00..0x3BFF. */
#define SIM_LEA_RAM_START 0x2C00u
#define SIM_LEA_RAM_END   0x3C00u

/* ------------------------------------------------------------------------------------ the costs */
/* Every constant comes from boards/msp430fr5994/board.toml ([lea.*]); the driver passes them
 * once (sparsenest.compiler.lea_ref.lea_costs(platform) gives them in this order). A model until a board
 * measures it. Cycles of a call:
 *     cycles_per_call + extra_commands * cycles_per_command + macs * cycles_per_mac
 *                     + elements * cycles_per_element                 (rounded up to a whole cycle)
 * energy_nj = (1 + extra_commands) * nj_per_call + (macs + elements) * nj_per_element. */
typedef struct sim_lea_costs {
    double cycles_per_call;      /* lea.cycles_per_call: one DSPLib call, one LEA command */
    double cycles_per_command;   /* lea.cycles_per_command: each further command in one call (matrix rows) */
    double cycles_per_mac;       /* lea.cycles_per_element: one Q15 multiply-accumulate (MAC, FIR, matrix) */
    double cycles_per_element;   /* lea.cycles_per_vector_element: element of add/mpy/offset/max/fill/copy */
    double nj_per_call;          /* lea.nj_per_call */
    double nj_per_element;       /* lea.nj_per_element: per MAC or vector element */
} sim_lea_costs;

/* Returns SIM_LEA_OK, or SIM_LEA_ECOSTS (costs unchanged) for a negative or non-finite value. */
int sim_lea_set_costs(const sim_lea_costs *costs);

#ifdef __cplusplus
}
#endif

#endif /* SPARSENEST_SIM_LEA_H */
