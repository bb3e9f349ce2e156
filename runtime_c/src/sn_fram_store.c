/* Runtime data written to FRAM (spilled activations, padded copies, the intermittent progress record)
 * goes through the board's write hook; a failed write (power failing) is remembered so the
 * intermittent driver stops after the unit it was running instead of committing it. */
#include "sn_runtime.h"

volatile uint8_t sn_power_lost;

int sn_fram_store(void *dst, const void *src, size_t nbytes) {
    if (sn_board_fram_write(dst, src, nbytes)) {
        sn_power_lost = 1;
        return 1;
    }
    return 0;
}
