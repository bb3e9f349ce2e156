/* Board services that are not start-up: far (upper FRAM) reads and writes through the DMA controller. */
#include "sn_board.h"

#ifndef SN_FAR_DMA_CHANNEL
#define SN_FAR_DMA_CHANNEL 2
#endif

#if SN_SIM

/* mspdebug's simulator: flat 64 KB and no DMA; the sim image links .upper.rodata below 64 KB. */
void sn_far_read(void *dst, sn_far_addr_t src, uint16_t n)
{
    __builtin_memcpy(dst, (const void *)(uint16_t)src, n);
}

void sn_far_copy(sn_far_addr_t dst, sn_far_addr_t src, uint16_t n)
{
    __builtin_memcpy((void *)(uint16_t)dst, (const void *)(uint16_t)src, n);
}

#else

/* Block transfer, software trigger. The CPU stops while the block moves (about 2 MCLK cycles per
 * word), so there is nothing to wait for afterwards; DMAEN clears itself at the end.
 * Not exercised by the simulator (it has no DMA): check on a board before trusting timings. */
static inline __attribute__((always_inline)) void dma_block(uint16_t dst16, uint16_t dst_hi,
                                                           sn_far_addr_t src, uint16_t n)
{
    if (n == 0)
        return;
    uint16_t words = ((dst16 | (uint16_t)src | n) & 1u) == 0;
    uint16_t ctl = DMADT_BLOCK | DMADSTINCR_INC | DMASRCINCR_INC;
    if (!words)
        ctl |= DMADSTBYTE | DMASRCBYTE;

    sn_irq_state_t irq = sn_irq_save();
    DMAxCTL(SN_FAR_DMA_CHANNEL) = 0;
#if SN_FAR_DMA_CHANNEL < 2
    /* trigger select 0 = DMAREQ (software) for this channel */
    DMACTL0 &= (SN_FAR_DMA_CHANNEL == 0) ? 0xFFE0u : 0xE0FFu;
#elif SN_FAR_DMA_CHANNEL < 4
    DMACTL1 &= (SN_FAR_DMA_CHANNEL == 2) ? 0xFFE0u : 0xE0FFu;
#else
    DMACTL2 &= (SN_FAR_DMA_CHANNEL == 4) ? 0xFFE0u : 0xE0FFu;
#endif
    /* low half first: a 16-bit write to it clears address bits 19:16 */
    DMAxSAL(SN_FAR_DMA_CHANNEL) = (uint16_t)src;
    DMAxSAH(SN_FAR_DMA_CHANNEL) = (uint16_t)(src >> 16) & 0x000Fu;
    DMAxDAL(SN_FAR_DMA_CHANNEL) = dst16;
    DMAxDAH(SN_FAR_DMA_CHANNEL) = dst_hi;
    DMAxSZ(SN_FAR_DMA_CHANNEL) = words ? (uint16_t)(n >> 1) : n;
    DMAxCTL(SN_FAR_DMA_CHANNEL) = ctl | DMAEN;
    DMAxCTL(SN_FAR_DMA_CHANNEL) = ctl | DMAEN | DMAREQ;
    __asm__ volatile("nop" ::: "memory");
    while (DMAxCTL(SN_FAR_DMA_CHANNEL) & DMAEN)
        ;
    DMAxCTL(SN_FAR_DMA_CHANNEL) = 0;
    sn_irq_restore(irq);
}

void sn_far_read(void *dst, sn_far_addr_t src, uint16_t n)
{
    dma_block((uint16_t)(uintptr_t)dst, 0, src, n);
}

void sn_far_copy(sn_far_addr_t dst, sn_far_addr_t src, uint16_t n)
{
    dma_block((uint16_t)dst, (uint16_t)(dst >> 16) & 0x000Fu, src, n);
}

#endif
