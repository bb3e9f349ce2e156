/* Default FRAM write hook for boards that need no tracking: FRAM is memory-mapped, so a write is a
 * copy (the board must leave the persistent section writable in its MPU settings). Weak, so a board
 * (the host board) can replace it. */
#include "sn_runtime.h"

__attribute__((weak)) int sn_board_fram_write(void *dst, const void *src, size_t nbytes) {
    memcpy(dst, src, nbytes);
    return 0;
}

/* A staged master in far memory fills the working copy through the board's far read (the DMA
 * controller on the MSP430FR5994), in pieces its 16-bit length takes. */
__attribute__((weak)) int sn_board_fram_write_far(void *dst, sn_far_addr_t src, size_t nbytes) {
    uint8_t *d = (uint8_t *)dst;
    while (nbytes) {
        uint16_t n = nbytes > 0x8000u ? 0x8000u : (uint16_t)nbytes;
        sn_far_read(d, src, n);
        d += n;
        src += n;
        nbytes -= n;
    }
    return 0;
}

/* A staged working copy in far memory is filled from its master (far or near) by the board's far
 * copy (DMA on the MSP430FR5994) in pieces its 16-bit length takes; a board without one has far
 * memory in its address space. */
__attribute__((weak)) int sn_board_far_write(sn_far_addr_t dst, sn_far_addr_t src, size_t nbytes) {
    while (nbytes) {
        uint16_t n = nbytes > 0x8000u ? 0x8000u : (uint16_t)nbytes;
#ifdef SN_BOARD_FAR_COPY
        sn_far_copy(dst, src, n);
#else
        memcpy((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
#endif
        dst += n;
        src += n;
        nbytes -= n;
    }
    return 0;
}
