/* The FR5994 memory map, FRAM timing and the peripheral registers that are not MPY32/DMA.
 *
 * Map (SLASE54 "Memory Organization"): peripherals 0x0000-0x0FFF, BSL ROM 0x1000-0x17FF (not
 * modelled: an access stops the run), information FRAM 0x1800-0x19FF, TLV 0x1A00-0x1AFF (read-only),
 * SRAM 0x1C00-0x3BFF, lower FRAM + signatures + vectors 0x4000-0xFFFF, upper FRAM 0x10000-0x43FFF.
 *
 * FRAM timing: FRCTL0.NWAITS (bits 6:4) wait states on every FRAM access the read cache misses
 * (SLAU367P, FRCTL_A "Wait State Control" and "FRAM Cache"). Cache geometry is a parameter; the
 * default, 2 ways x 2 sets x 8-byte lines with LRU replacement, is the user's guide's description of
 * the FR59xx cache as recalled in this project (not re-checked against the PDF: a board should
 * confirm it). FRAM writes are write-through and cost `write_waits` extra cycles each (default 0:
 * assumption, the write is buffered). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

void frsim_fault(frsim *s, const char *fmt, ...)
{
    if (s->error)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->msg, sizeof s->msg, fmt, ap);
    va_end(ap);
    s->error = 1;
}

static int region(const frsim *s, uint32_t addr)
{
    return addr < FRSIM_MEM_SIZE ? s->page[addr >> 8] : RG_NONE;
}

/* ---- FRAM read cache --------------------------------------------------------------------------- */

void frsim_cache_reset(frsim *s)
{
    for (int i = 0; i < FRSIM_MAX_SETS; i++)
        for (int w = 0; w < FRSIM_MAX_WAYS; w++) {
            s->tags[i][w] = UINT32_MAX;
            s->lru[i][w] = (uint8_t)w;
        }
    s->last_line = UINT32_MAX;
}

void frsim_fram_access(frsim *s, uint32_t addr)
{
    uint32_t line = addr >> s->line_shift;
    s->c.fram_reads++;
    if (line == s->last_line)        /* the most recently used line: always resident */
        return;
    s->last_line = line;
    uint32_t set = line % (uint32_t)s->cache_sets;
    uint32_t *tags = s->tags[set];
    uint8_t *lru = s->lru[set];
    int ways = s->cache_ways, hit = -1;
    for (int w = 0; w < ways; w++)
        if (tags[w] == line) {
            hit = w;
            break;
        }
    if (hit < 0) {
        s->c.cache_misses++;
        s->c.wait_cycles += (s->frctl0 >> 4) & 7;
        s->c.cycles += (s->frctl0 >> 4) & 7;
        for (int w = 0; w < ways; w++)   /* evict the least recently used */
            if (lru[w] == ways - 1)
                hit = w;
        tags[hit] = line;
    }
    uint8_t old = lru[hit];
    for (int w = 0; w < ways; w++)
        if (lru[w] < old)
            lru[w]++;
    lru[hit] = 0;
}

/* ---- peripherals ------------------------------------------------------------------------------- */

#define FRCTL0_ADDR 0x0140
#define WDTCTL_ADDR 0x015C
#define UCA0TXBUF_ADDR 0x05CE
#define UCA0IFG_ADDR 0x05DC
#define DMA_FIRST 0x0500
#define DMA_LAST 0x056F

static uint16_t store_read(frsim *s, uint32_t a, int byte)
{
    return byte ? s->mem[a] : (uint16_t)(s->mem[a] | s->mem[a + 1] << 8);
}

static void store_write(frsim *s, uint32_t a, uint16_t v, int byte)
{
    s->mem[a] = (uint8_t)v;
    if (!byte)
        s->mem[a + 1] = (uint8_t)(v >> 8);
}

uint16_t frsim_io_read(frsim *s, uint32_t a, int byte)
{
    uint16_t v;
    uint32_t wa = a & ~1u;
    if (wa >= s->mpy_base && wa < s->mpy_base + 0x30) {
        if (frsim_mpy_read(s, wa - s->mpy_base, &v) == 0)
            return byte ? (uint8_t)(a & 1 ? v >> 8 : v) : v;
    } else if (wa >= DMA_FIRST && wa <= DMA_LAST) {
        if (frsim_dma_read(s, wa, &v) == 0)
            return byte ? (uint8_t)(a & 1 ? v >> 8 : v) : v;
    } else if (wa == FRCTL0_ADDR) {
        v = 0x9600 | (s->frctl0 & 0xFF);
        return byte ? (uint8_t)(a & 1 ? v >> 8 : v) : v;
    } else if (wa == WDTCTL_ADDR) {
        v = 0x6900 | s->mem[WDTCTL_ADDR];
        return byte ? (uint8_t)(a & 1 ? v >> 8 : v) : v;
    } else if (wa == UCA0IFG_ADDR) {
        v = 0x0002;                      /* UCTXIFG: the transmitter is always ready */
        return byte ? (uint8_t)(a & 1 ? v >> 8 : v) : v;
    } else if (wa == FRSIM_LEA_PORT + 4) {
        v = (uint16_t)s->lea_ret;
        return byte ? (uint8_t)(a & 1 ? v >> 8 : v) : v;
    }
    return store_read(s, a, byte);     /* any other register reads back what was written */
}

void frsim_io_write(frsim *s, uint32_t a, uint16_t v, int byte)
{
    uint32_t wa = a & ~1u;
    if (wa >= s->mpy_base && wa < s->mpy_base + 0x30) {
        if (frsim_mpy_write(s, a - s->mpy_base, v, byte) == 0)
            return;
    } else if (wa >= DMA_FIRST && wa <= DMA_LAST) {
        if (byte) {
            frsim_fault(s, "byte write to DMA register 0x%04X at PC 0x%04X: the simulator models word "
                        "access only", a, s->pc_of_insn);
            return;
        }
        if (frsim_dma_write(s, wa, v) == 0)
            return;
    } else if (wa == FRCTL0_ADDR) {
        if (byte) {
            if (!(a & 1))
                frsim_fault(s, "byte write to FRCTL0 at PC 0x%04X without the password", s->pc_of_insn);
            return;
        }
        if ((v >> 8) != 0xA5) {
            frsim_fault(s, "FRCTL0 written without the FRCTLPW password (0x%04X) at PC 0x%04X: the chip "
                        "would reset (PUC)", v, s->pc_of_insn);
            return;
        }
        s->frctl0 = v & 0xFF;
        return;
    } else if (wa == UCA0TXBUF_ADDR && !(a & 1)) {
        if (s->uart_len < sizeof s->uart)
            s->uart[s->uart_len++] = (uint8_t)v;
        return;
    } else if (wa >= FRSIM_LEA_PORT && wa < FRSIM_LEA_PORT + 6) {
        if (byte) {
            frsim_fault(s, "byte write to the LEA port 0x%04X at PC 0x%04X", a, s->pc_of_insn);
            return;
        }
        s->lea_port[(wa - FRSIM_LEA_PORT) / 2] = v;
        if (wa == FRSIM_LEA_PORT + 4)
            frsim_lea_trigger(s, v);
        return;
    }
    store_write(s, a, v, byte);
}

/* ---- counted accesses with 20-bit addresses (DMA, LEA) ------------------------------------------ */

uint16_t frsim_bus_read(frsim *s, uint32_t a, int byte)
{
    if (!byte && (a & 1)) {
        frsim_fault(s, "unaligned word read at 0x%05X (PC 0x%04X)", a, s->pc_of_insn);
        return 0;
    }
    switch (region(s, a)) {
    case RG_SRAM:
        s->c.sram_reads++;
        return store_read(s, a, byte);
    case RG_FRAM:
    case RG_TLV:
        frsim_fram_access(s, a);
        return store_read(s, a, byte);
    case RG_PERIPH:
        return frsim_io_read(s, a, byte);
    default:
        frsim_fault(s, "read outside the FR5994 memory map at 0x%05X (PC 0x%04X)", a, s->pc_of_insn);
        return 0;
    }
}

void frsim_bus_write(frsim *s, uint32_t a, uint16_t v, int byte)
{
    if (!byte && (a & 1)) {
        frsim_fault(s, "unaligned word write at 0x%05X (PC 0x%04X)", a, s->pc_of_insn);
        return;
    }
    switch (region(s, a)) {
    case RG_SRAM:
        s->c.sram_writes++;
        store_write(s, a, v, byte);
        return;
    case RG_FRAM:
        s->c.fram_writes++;
        s->c.wait_cycles += (uint64_t)s->write_waits;
        s->c.cycles += (uint64_t)s->write_waits;
        store_write(s, a, v, byte);
        return;
    case RG_PERIPH:
        frsim_io_write(s, a, v, byte);
        return;
    case RG_TLV:
        frsim_fault(s, "write to the read-only device descriptor (TLV) at 0x%05X (PC 0x%04X)", a, s->pc_of_insn);
        return;
    default:
        frsim_fault(s, "write outside the FR5994 memory map at 0x%05X (PC 0x%04X)", a, s->pc_of_insn);
    }
}

/* ---- host access (loading, inputs, outputs): no counting, no side effects ----------------------- */

static int host_range_ok(frsim *s, uint32_t addr, uint32_t n)
{
    if ((uint64_t)addr + n > FRSIM_MEM_SIZE)
        return 0;
    for (uint32_t a = addr; a < addr + n; a = (a | 0xFF) + 1)
        if (region(s, a) == RG_NONE)
            return 0;
    return 1;
}

int frsim_write_mem(frsim *s, uint32_t addr, const uint8_t *src, uint32_t n)
{
    if (!host_range_ok(s, addr, n))
        return -1;
    memcpy(s->mem + addr, src, n);
    return 0;
}

int frsim_read_mem(frsim *s, uint32_t addr, uint8_t *dst, uint32_t n)
{
    if (!host_range_ok(s, addr, n))
        return -1;
    memcpy(dst, s->mem + addr, n);
    return 0;
}

/* ---- construction ------------------------------------------------------------------------------ */

static void set_region(frsim *s, uint32_t start, uint32_t end, int kind)
{
    for (uint32_t a = start; a < end; a += 0x100)
        s->page[a >> 8] = (uint8_t)kind;
}

frsim *frsim_new(void)
{
    frsim *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->mem = calloc(1, FRSIM_MEM_SIZE);
    if (!s->mem) {
        free(s);
        return NULL;
    }
    set_region(s, 0, FRSIM_PERIPH_END, RG_PERIPH);
    set_region(s, FRSIM_INFO_START, FRSIM_TLV_START, RG_FRAM);
    set_region(s, FRSIM_TLV_START, FRSIM_TLV_START + 0x100, RG_TLV);
    set_region(s, FRSIM_SRAM_START, FRSIM_SRAM_END, RG_SRAM);
    set_region(s, FRSIM_FRAM_START, FRSIM_MEM_SIZE, RG_FRAM);
    memset(s->mem + FRSIM_FRAM_START, 0xFF, FRSIM_MEM_SIZE - FRSIM_FRAM_START);   /* erased FRAM */
    frsim_configure(s, 0x04C0, 3, 2, 2, 8, 0);
    frsim_dma_timing(s, 2, 2);
    frsim_init_tables(s);
    frsim_reset(s);
    return s;
}

int frsim_configure(frsim *s, uint32_t mpy_base, int mpy_latency, int cache_ways, int cache_sets,
                    int line_bytes, int write_waits)
{
    int shift = 0;
    while ((1 << shift) < line_bytes)
        shift++;
    if (cache_ways < 1 || cache_ways > FRSIM_MAX_WAYS || cache_sets < 1 || cache_sets > FRSIM_MAX_SETS ||
        (1 << shift) != line_bytes || line_bytes < 2 || line_bytes > 256 || (mpy_base != 0x04C0 &&
        mpy_base != 0x0130) || mpy_latency < 0 || write_waits < 0)
        return -1;
    s->mpy_base = mpy_base;
    s->mpy_latency = mpy_latency;
    s->cache_ways = cache_ways;
    s->cache_sets = cache_sets;
    s->line_shift = shift;
    s->write_waits = write_waits;
    frsim_cache_reset(s);
    return 0;
}

void frsim_free(frsim *s)
{
    if (!s)
        return;
    free(s->mem);
    free(s->profile);
    free(s);
}

const char *frsim_message(const frsim *s) { return s->msg; }
uint16_t *frsim_regs(frsim *s) { return s->r; }
/* The counters, with the derived ones filled in (kept out of the per-instruction path). */
frsim_counters *frsim_get_counters(frsim *s)
{
    uint64_t legacy = 0;
    for (int k = 0; k < FRSIM_FORMS; k++)
        legacy += s->hist[k] * s->cyc_legacy[k];
    s->c.legacy_cycles = legacy;
    s->c.cache_hits = s->c.fram_reads - s->c.cache_misses;
    return &s->c;
}
uint32_t *frsim_get_profile(frsim *s) { return s->profile; }

uint64_t *frsim_forms(frsim *s, int *n)
{
    *n = FRSIM_FORMS;
    return s->hist;
}

const uint8_t *frsim_cycle_table(const frsim *s, int legacy)
{
    return legacy ? s->cyc_legacy : s->cyc_cpux;
}

const uint8_t *frsim_uart(frsim *s, uint32_t *len)
{
    *len = s->uart_len;
    return s->uart;
}

int frsim_enable_profile(frsim *s, int on)
{
    if (on && !s->profile) {
        s->profile = calloc(0x8000, sizeof *s->profile);
        if (!s->profile)
            return -1;
    } else if (!on) {
        free(s->profile);
        s->profile = NULL;
    }
    return 0;
}

void frsim_clear_counters(frsim *s)
{
    memset(&s->c, 0, sizeof s->c);
    memset(s->hist, 0, sizeof s->hist);
    if (s->profile)
        memset(s->profile, 0, 0x8000 * sizeof *s->profile);
    s->uart_len = 0;
}

void frsim_set_break(frsim *s, uint32_t addr, int on)
{
    addr &= 0xFFFF;
    if (on)
        s->bp[addr >> 3] |= (uint8_t)(1u << (addr & 7));
    else
        s->bp[addr >> 3] &= (uint8_t)~(1u << (addr & 7));
}

/* The whole memory, for batch runs that restart from the freshly programmed image. */
void frsim_snapshot(const frsim *s, uint8_t *dst) { memcpy(dst, s->mem, FRSIM_MEM_SIZE); }
void frsim_restore(frsim *s, const uint8_t *src) { memcpy(s->mem, src, FRSIM_MEM_SIZE); }
