/* Far-memory reads where the board has no far memory (the host): the weights a generated model places
 * in far memory are ordinary arrays, so a far read is a copy; every one is counted (sn_far_reads,
 * sn_far_bytes) so tests can see the tiled path ran. Boards with far memory (SN_UPPER_CONST in their
 * sn_board.h, e.g. the MSP430FR5994's DMA) supply sn_far_read themselves and this file is empty. */
#include "sn_runtime.h"

#ifndef SN_UPPER_CONST
uint32_t sn_far_reads, sn_far_bytes;

void sn_far_read(void *dst, sn_far_addr_t src, uint16_t n) {
    memcpy(dst, (const void *)src, n);
    sn_far_reads++;
    sn_far_bytes += n;
}
#else
typedef int sn_far_board_provides_it; /* keeps the translation unit non-empty */
#endif
