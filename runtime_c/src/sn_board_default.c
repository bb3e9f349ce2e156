/* Default FRAM write hook for boards that need no tracking: FRAM is memory-mapped, so a write is a
 * copy (the board must leave the persistent section writable in its MPU settings). Weak, so a board
 * (the host board) can replace it. */
#include "sn_runtime.h"

__attribute__((weak)) int sn_board_fram_write(void *dst, const void *src, size_t nbytes) {
    memcpy(dst, src, nbytes);
    return 0;
}
