/* The DSPLib functions of DSPLib.h that TI runs on the CPU (no LEA command), for the images that do not link
 * TI's DSPLib: the simulator image (its instructions are timed like any other code) and the host board.
 * A board build links TI's DSPLib instead and must not compile this file.
 * Arithmetic as DSPLib.h documents it; python/sparsenest/compiler/lea_ref.py holds the same rules. */
#include <stdint.h>

#include "DSPLib.h"

msp_status msp_scale_q15(const msp_scale_q15_params *params, const _q15 *src, _q15 *dst)
{
    uint16_t length = params->length;
    if (length & 1u)
        return MSP_SIZE_ERROR;
    if (params->shift > 15u)
        return MSP_SHIFT_SIZE_ERROR;
    uint8_t down = (uint8_t)(15u - params->shift);
    for (uint16_t i = 0; i < length; i++) {
        int32_t p = (int32_t)src[i] * params->scale;
        /* floor division by 2^down, then the low 16 bits (DSPLib's reference wraps, it does not saturate) */
        int32_t q = p >= 0 ? p >> down : -(int32_t)(((uint32_t)-p + ((1u << down) - 1u)) >> down);
        dst[i] = (_q15)(uint16_t)((uint32_t)q & 0xFFFFu);
    }
    return MSP_SUCCESS;
}
