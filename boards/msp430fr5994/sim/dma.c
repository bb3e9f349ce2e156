/* The DMA controller (SLAU367P chapter "DMA Controller"; the FR5994 has 6 channels).
 *
 * Registers: DMACTL0..4 at 0x0500-0x0508 (trigger select: channel 2k in bits 4:0 and 2k+1 in bits
 * 12:8 of DMACTLk), DMAIV 0x050E; channel n at 0x0510 + 0x10 n: CTL, SAL, SAH, DAL, DAH, SZ.
 * SA/DA are 20-bit (a word write to the low half clears bits 19:16).
 * DMAxCTL: 0 DMAREQ, 1 DMAABORT, 2 DMAIE, 3 DMAIFG, 4 DMAEN, 5 DMALEVEL, 6 DMASRCBYTE,
 * 7 DMADSTBYTE, 9:8 DMASRCINCR, 11:10 DMADSTINCR (10 decrement, 11 increment), 14:12 DMADT
 * (0 single, 1 block, 2/3 burst-block, 4 repeated single, 5 repeated block, 6/7 repeated burst).
 *
 * Modelled: the software trigger (trigger select 0, DMAREQ), every transfer mode, byte/word in any
 * combination (a byte written to a word destination has a zero high byte), increments, 20-bit
 * addresses over the whole map, DMAIFG, DMAxSZ counting down and reloading. Burst-block transfers
 * run like block transfers (the CPU's interleaved cycles are not modelled). Hardware triggers
 * (timers, eUSCI, ...) never fire and DMA interrupts are not delivered.
 * Timing: the CPU is held for sync_cycles per trigger plus cycles_per_transfer per transfer, plus
 * the FRAM wait states of the transfers' FRAM reads (through the FRAM cache).
 * A block is moved one transfer per step (frsim_dma_step, driven by frsim_run), so a run that ends
 * on its cycle budget (a power cut) can stop inside a block, and the next run finishes it first. */
#include <string.h>

#include "sim.h"

int frsim_dma_timing(frsim *s, int sync, int per_transfer)
{
    if (sync < 0 || per_transfer < 1)
        return -1;
    s->dma_sync = sync;
    s->dma_per_transfer = per_transfer;
    return 0;
}

void frsim_dma_reset(frsim *s)
{
    memset(s->dma, 0, sizeof s->dma);
    memset(s->dmactl, 0, sizeof s->dmactl);
    s->dma_pending = 0;
    s->dma_active = -1;
}

static int trigger_select(const frsim *s, int ch)
{
    uint16_t r = s->dmactl[ch / 2];
    return (ch & 1 ? r >> 8 : r) & 0x1F;
}

int frsim_dma_read(frsim *s, uint32_t a, uint16_t *v)
{
    if (a < 0x0510) {
        uint32_t i = (a - 0x0500) / 2;
        if (i < 5) {
            *v = s->dmactl[i];
            return 0;
        }
        if (a == 0x050E) {               /* DMAIV: highest-priority pending flag, reading clears it */
            *v = 0;
            for (int ch = 0; ch < FRSIM_DMA_CH; ch++)
                if ((s->dma[ch].ctl & 0x000C) == 0x000C) {
                    *v = (uint16_t)(2 * (ch + 1));
                    s->dma[ch].ctl &= (uint16_t)~0x0008;
                    break;
                }
            return 0;
        }
        return 1;
    }
    int ch = (int)(a - 0x0510) / 0x10;
    if (ch >= FRSIM_DMA_CH)
        return 1;
    frsim_dma_ch *d = &s->dma[ch];
    switch ((a - 0x0510) & 0xF) {
    case 0x0: *v = d->ctl & 0x7FFF; return 0;
    case 0x2: *v = (uint16_t)d->sa; return 0;
    case 0x4: *v = (uint16_t)(d->sa >> 16); return 0;
    case 0x6: *v = (uint16_t)d->da; return 0;
    case 0x8: *v = (uint16_t)(d->da >> 16); return 0;
    case 0xA: *v = d->sz; return 0;
    }
    return 1;
}

int frsim_dma_write(frsim *s, uint32_t a, uint16_t v)
{
    if (a < 0x0510) {
        uint32_t i = (a - 0x0500) / 2;
        if (i < 5) {
            s->dmactl[i] = v;
            return 0;
        }
        return 1;
    }
    int ch = (int)(a - 0x0510) / 0x10;
    if (ch >= FRSIM_DMA_CH)
        return 1;
    frsim_dma_ch *d = &s->dma[ch];
    switch ((a - 0x0510) & 0xF) {
    case 0x0: {
        int was_enabled = d->ctl & 0x0010;
        d->ctl = v & (uint16_t)~0x0003;                 /* DMAREQ and DMAABORT read back as 0 */
        if ((v & 0x0010) && !was_enabled) {            /* enabling latches the working registers */
            d->tsa = d->sa;
            d->tda = d->da;
            d->tsz = d->sz;
        }
        if ((v & 0x0011) == 0x0011 && trigger_select(s, ch) == 0) {
            d->ctl |= 0x8000u;                          /* internal: a software request is pending */
            s->dma_pending = 1;
        }
        return 0;
    }
    case 0x2: d->sa = v; return 0;
    case 0x4: d->sa = (d->sa & 0xFFFF) | (uint32_t)(v & 0xF) << 16; return 0;
    case 0x6: d->da = v; return 0;
    case 0x8: d->da = (d->da & 0xFFFF) | (uint32_t)(v & 0xF) << 16; return 0;
    case 0xA:
        d->sz = v;
        d->sz_init = v;
        d->tsz = v;
        return 0;
    }
    return 1;
}

static uint32_t step_addr(uint32_t addr, int incr, int byte)
{
    int n = byte ? 1 : 2;
    if (incr == 3)
        return (addr + n) & 0xFFFFF;
    if (incr == 2)
        return (addr - n) & 0xFFFFF;
    return addr;
}

/* One transfer of the active channel; the FRAM wait states of its accesses count as DMA cycles
 * (the CPU is held), moved out of wait_cycles where frsim_bus_read/write put them. */
static void transfer(frsim *s, frsim_dma_ch *d)
{
    int sbyte = (d->ctl >> 6) & 1, dbyte = (d->ctl >> 7) & 1;
    uint64_t before = s->c.wait_cycles;
    uint16_t v = frsim_bus_read(s, d->tsa, sbyte);
    if (sbyte && !dbyte)
        v &= 0xFF;
    frsim_bus_write(s, d->tda, v, dbyte);
    d->tsa = step_addr(d->tsa, (d->ctl >> 8) & 3, sbyte);
    d->tda = step_addr(d->tda, (d->ctl >> 10) & 3, dbyte);
    s->c.dma_transfers++;
    s->c.dma_cycles += (uint64_t)s->dma_per_transfer + (s->c.wait_cycles - before);
    s->c.wait_cycles = before;                 /* already in cycles */
    s->c.cycles += (uint64_t)s->dma_per_transfer;
}

/* Start serving the highest-priority pending software request (channel 0 first): the sync cycles,
 * then the channel is active until its transfers are done (frsim_dma_step). */
static void start_next(frsim *s)
{
    s->dma_active = -1;
    for (int ch = 0; ch < FRSIM_DMA_CH; ch++) {
        frsim_dma_ch *d = &s->dma[ch];
        if (!(d->ctl & 0x8000u))
            continue;
        d->ctl &= (uint16_t)~0x8000u;
        s->c.dma_cycles += (uint64_t)s->dma_sync;
        s->c.cycles += (uint64_t)s->dma_sync;
        if (d->tsz == 0) {
            frsim_fault(s, "DMA channel %d triggered with DMA%dSZ = 0 (PC 0x%04X)", ch, ch, s->pc_of_insn);
            return;
        }
        s->dma_active = ch;
        return;
    }
}

int frsim_dma_busy(const frsim *s)
{
    return s->dma_active >= 0;
}

void frsim_dma_start(frsim *s)
{
    s->dma_pending = 0;
    s->dma_pc = s->pc_of_insn;
    start_next(s);
}

/* One transfer of the active channel: a block transfer is a run of these, so a power cut (a cycle
 * budget) can fall between any two of them; the totals are those of the whole block at once. */
void frsim_dma_step(frsim *s)
{
    frsim_dma_ch *d = &s->dma[s->dma_active];
    int dt = (d->ctl >> 12) & 7, repeated = dt >= 4, block = (dt & 3) != 0;
    transfer(s, d);
    d->tsz--;
    d->sz = d->tsz;
    if (s->error || (block && d->tsz))
        return;
    if (d->tsz == 0) {
        d->ctl |= 0x0008;                          /* DMAIFG */
        d->tsz = d->sz = d->sz_init;
        if (repeated) {
            d->tsa = d->sa;
            d->tda = d->da;
        } else {
            d->ctl &= (uint16_t)~0x0010;           /* DMAEN clears itself */
        }
    }
    start_next(s);
}
