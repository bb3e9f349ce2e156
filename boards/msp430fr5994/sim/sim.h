/* sparsenest's MSP430FR5994 simulator: public API (driven from Python through ctypes,
 * python/sparsenest/targets/fr5994sim.py) and the state shared by the core's modules.
 *
 *   cpu.c    decode/execute of the 16-bit MSP430 instruction set, CPUXv2 and mspdebug cycle tables
 *   mem.c    FR5994 memory map, FRAM wait states + read cache, peripheral dispatch, UART, LEA port
 *   mpy32.c  the 32-bit hardware multiplier (MPY32)
 *   dma.c    the DMA controller (6 channels, 20-bit addresses)
 *   power.c  reset, power loss (SRAM/registers/peripherals lost, FRAM kept)
 * Plain C11, no dependencies; built by python/sparsenest/targets/fr5994sim.py with the system gcc. */
#ifndef FRSIM_SIM_H
#define FRSIM_SIM_H

#include <stdint.h>

/* ---- memory map (data sheet SLASE54, 6.x "Memory Organization") ----------------------------- */
#define FRSIM_MEM_SIZE   0x44000u   /* 0x00000-0x43FFF: the end of upper FRAM */
#define FRSIM_PERIPH_END 0x1000u
#define FRSIM_INFO_START 0x1800u    /* information FRAM 0x1800-0x19FF */
#define FRSIM_TLV_START  0x1A00u    /* device descriptor (TLV), read-only, 0x1A00-0x1AFF */
#define FRSIM_SRAM_START 0x1C00u
#define FRSIM_SRAM_END   0x3C00u    /* LEA RAM = 0x2C00-0x3BFF, the top 4 KB of SRAM */
#define FRSIM_FRAM_START 0x4000u    /* lower FRAM 0x4000-0xFF7F, signatures + vectors to 0xFFFF */
#define FRSIM_UPPER_START 0x10000u  /* upper FRAM 0x10000-0x43FFF */
#define FRSIM_LEA_PORT   0x0FF0u    /* simulator-only LEA call port (unused on the FR5994) */

enum { RG_NONE = 0, RG_PERIPH, RG_SRAM, RG_FRAM, RG_TLV };

/* stop reasons of frsim_run */
enum { FRSIM_BUDGET = 0, FRSIM_BREAK = 1, FRSIM_HALT = 2, FRSIM_ERROR = 3 };

/* Instruction forms for the cycle tables and the per-form histogram (see cpu.c). */
#define FRSIM_SRC_CLASSES 9   /* Rn/#0, @Rn, @Rn+, #N, x(Rn)/EDE, &abs, #1, #2/#4, #-1/#8 */
#define FRSIM_DST_CLASSES 4   /* Rm, PC, x(Rm)/EDE, &abs */
#define FRSIM_F1_FORMS (3 * FRSIM_SRC_CLASSES * FRSIM_DST_CLASSES)   /* op class MOV, BIT/CMP, other */
#define FRSIM_F2_FORMS (7 * FRSIM_SRC_CLASSES)                        /* RRC SWPB RRA SXT PUSH CALL RETI */
#define FRSIM_FORMS (FRSIM_F1_FORMS + FRSIM_F2_FORMS + 1)             /* + jumps */

/* Counters (the Python driver mirrors this layout: keep them all uint64_t, in this order). */
typedef struct frsim_counters {
    uint64_t instructions;
    uint64_t cycles;          /* everything: cpu + wait + dma + lea */
    uint64_t cpu_cycles;      /* CPUXv2 table (SLAU367), no wait states */
    uint64_t legacy_cycles;   /* what Debian's mspdebug 0.22 counts for the same instructions */
    uint64_t wait_cycles;     /* FRAM wait states (cache misses x NWAITS, writes x write waits) */
    uint64_t dma_cycles;      /* CPU held by DMA transfers */
    uint64_t lea_cycles;      /* CPU held by LEA calls */
    uint64_t fram_reads;      /* CPU + DMA FRAM read accesses, instruction fetches included */
    uint64_t fram_writes;
    uint64_t cache_hits;
    uint64_t cache_misses;
    uint64_t sram_reads;
    uint64_t sram_writes;
    uint64_t dma_transfers;
    uint64_t lea_calls;
    uint64_t lea_ops;
    uint64_t mpy_ops;
    uint64_t resets;
    uint64_t lea_energy_fj;   /* LEA energy in femtojoules (integer so that the layout stays uint64) */
} frsim_counters;

#define FRSIM_MAX_WAYS 8
#define FRSIM_MAX_SETS 64
#define FRSIM_DMA_CH 6

typedef struct frsim_dma_ch {
    uint16_t ctl, sz, sz_init;
    uint32_t sa, da;           /* the registers as written */
    uint32_t tsa, tda;         /* working addresses */
    uint16_t tsz;              /* working count */
} frsim_dma_ch;

typedef struct frsim_mpy {
    uint16_t op1_lo, op1_hi, op2_lo, op2_hi;
    uint16_t res[4];
    uint16_t sumext, ctl0;
    uint8_t mode;      /* 0 MPY, 1 MPYS, 2 MAC, 3 MACS */
    uint8_t op1_32;    /* operand 1 written as 32 bits */
    uint64_t ready_at; /* cycle from which the result may be read */
} frsim_mpy;

typedef struct frsim {
    uint16_t r[16];
    uint8_t *mem;                   /* FRSIM_MEM_SIZE bytes, little-endian */
    uint8_t page[FRSIM_MEM_SIZE >> 8];
    frsim_counters c;
    uint64_t hist[FRSIM_FORMS];
    uint8_t cyc_cpux[FRSIM_FORMS], cyc_legacy[FRSIM_FORMS];
    uint8_t bp[0x10000 / 8];        /* breakpoints on 16-bit PCs */
    uint32_t *profile;              /* cycles per word address of the executing instruction, or NULL */
    uint32_t pc_of_insn;
    int error;
    char msg[256];

    /* configuration */
    uint32_t mpy_base;              /* 0x04C0 (chip) or 0x0130 (mspdebug sim image) */
    int mpy_latency;                /* cycles after OP2 before RES* are valid; reads earlier stop */
    int cache_ways, cache_sets, line_shift, write_waits;

    /* FRAM controller */
    uint16_t frctl0;
    uint32_t tags[FRSIM_MAX_SETS][FRSIM_MAX_WAYS];
    uint8_t lru[FRSIM_MAX_SETS][FRSIM_MAX_WAYS];
    uint32_t last_line;

    frsim_mpy mpy;
    frsim_dma_ch dma[FRSIM_DMA_CH];
    uint16_t dmactl[5];
    int dma_pending;
    int dma_active;                 /* channel moving a block now (the CPU held), -1 none */
    uint32_t dma_pc;                /* the instruction that triggered it (profile) */
    int dma_sync, dma_per_transfer;     /* CPU cycles held per trigger / per transfer */

    uint16_t lea_port[3];
    int16_t lea_ret;
    uint64_t lea_hold;              /* cycles the CPU is still held by the last LEA call */
    uint32_t lea_pc;                /* the instruction that made it (profile) */

    uint8_t uart[4096];
    uint32_t uart_len;
} frsim;

/* ---- API ------------------------------------------------------------------------------------ */
frsim *frsim_new(void);
void frsim_free(frsim *s);
int frsim_configure(frsim *s, uint32_t mpy_base, int mpy_latency, int cache_ways, int cache_sets,
                    int line_bytes, int write_waits);
int frsim_write_mem(frsim *s, uint32_t addr, const uint8_t *src, uint32_t n);
int frsim_read_mem(frsim *s, uint32_t addr, uint8_t *dst, uint32_t n);
void frsim_reset(frsim *s);
void frsim_power_off(frsim *s, uint32_t seed);
int frsim_dma_timing(frsim *s, int sync, int per_transfer);
int frsim_dma_busy(const frsim *s);     /* a run stopped inside a DMA block (the CPU is held) */
int frsim_lea_busy(const frsim *s);     /* cycles a LEA call still holds the CPU (a run stopped inside it) */
int frsim_run(frsim *s, uint64_t cycle_limit, uint64_t insn_limit);
void frsim_set_break(frsim *s, uint32_t addr, int on);
const char *frsim_message(const frsim *s);
uint16_t *frsim_regs(frsim *s);
frsim_counters *frsim_get_counters(frsim *s);
uint64_t *frsim_forms(frsim *s, int *n);
const uint8_t *frsim_cycle_table(const frsim *s, int legacy);
int frsim_enable_profile(frsim *s, int on);
uint32_t *frsim_get_profile(frsim *s);
const uint8_t *frsim_uart(frsim *s, uint32_t *len);
void frsim_clear_counters(frsim *s);
void frsim_snapshot(const frsim *s, uint8_t *dst);
void frsim_restore(frsim *s, const uint8_t *src);

/* ---- internal (between the core's modules) --------------------------------------------------- */
void frsim_fault(frsim *s, const char *fmt, ...);
uint16_t frsim_io_read(frsim *s, uint32_t addr, int byte);
void frsim_io_write(frsim *s, uint32_t addr, uint16_t v, int byte);
uint16_t frsim_bus_read(frsim *s, uint32_t addr, int byte);     /* counted, timed (DMA, LEA) */
void frsim_bus_write(frsim *s, uint32_t addr, uint16_t v, int byte);
void frsim_fram_access(frsim *s, uint32_t addr);                /* cache + wait states of one read */
void frsim_cache_reset(frsim *s);
void frsim_mpy_reset(frsim *s);
int frsim_mpy_read(frsim *s, uint32_t off, uint16_t *v);
int frsim_mpy_write(frsim *s, uint32_t off, uint16_t v, int byte);
void frsim_dma_reset(frsim *s);
int frsim_dma_read(frsim *s, uint32_t addr, uint16_t *v);
int frsim_dma_write(frsim *s, uint32_t addr, uint16_t v);
void frsim_dma_start(frsim *s);
void frsim_dma_step(frsim *s);
void frsim_lea_trigger(frsim *s, uint16_t fn);
void frsim_init_tables(frsim *s);

#endif
