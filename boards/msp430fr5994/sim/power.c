/* Reset and power loss, and the LEA port's call into the LEA model.
 *
 * frsim_reset is a brown-out reset (BOR): CPU registers, peripherals, the FRAM controller (NWAITS
 * back to 0) and the FRAM cache are reset; SR = 0, PC = the reset vector at 0xFFFE. Memory is not
 * touched. frsim_power_off models the supply falling below V_off: on top of the reset, the SRAM
 * (LEA RAM included) loses its contents, filled with a pseudo-random pattern from `seed` so that a
 * program which relies on SRAM surviving reads garbage, as it would on the chip. FRAM is kept. */
#include <string.h>

#include "sim.h"

#include "lea.h"

void frsim_reset(frsim *s)
{
    memset(s->r, 0, sizeof s->r);
    s->r[0] = (uint16_t)(s->mem[0xFFFE] | s->mem[0xFFFF] << 8);
    s->frctl0 = 0;
    frsim_cache_reset(s);
    frsim_mpy_reset(s);
    frsim_dma_reset(s);
    memset(s->mem, 0, FRSIM_PERIPH_END);     /* every other peripheral register */
    memset(s->lea_port, 0, sizeof s->lea_port);
    s->lea_ret = 0;
    s->lea_hold = 0;
    s->error = 0;
    s->msg[0] = 0;
    s->c.resets++;
}

void frsim_power_off(frsim *s, uint32_t seed)
{
    uint32_t x = seed ? seed : 0x9E3779B9u;
    for (uint32_t a = FRSIM_SRAM_START; a < FRSIM_SRAM_END; a++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        s->mem[a] = (uint8_t)x;
    }
    frsim_reset(s);
}

/* ---- LEA ------------------------------------------------------------------------------------- */

static uint8_t lea_rd8(void *ctx, uint32_t addr)
{
    frsim *s = ctx;
    return (uint8_t)frsim_bus_read(s, addr, 1);
}

static void lea_wr8(void *ctx, uint32_t addr, uint8_t v)
{
    frsim *s = ctx;
    frsim_bus_write(s, addr, v, 1);
}

/* Default until the LEA model (lea.c) is linked: every call stops the run with a clear message. */
__attribute__((weak)) int sim_lea_call(const sim_lea_bus *bus, uint16_t fn, uint32_t params, sim_lea_cost *cost,
                                       char *msg, int msg_len)
{
    (void)bus;
    (void)fn;
    (void)params;
    (void)cost;
    if (msg && msg_len > 0) {
        strncpy(msg, "LEA model not linked", (size_t)msg_len - 1);
        msg[msg_len - 1] = 0;
    }
    return -1;
}

/* A word write of the function code to 0x0FF4: params address from 0x0FF0 (low) / 0x0FF2 (high). */
void frsim_lea_trigger(frsim *s, uint16_t fn)
{
    sim_lea_bus bus = {s, lea_rd8, lea_wr8};
    sim_lea_cost cost = {0, 0, 0.0};
    char msg[160] = "";
    uint32_t params = (uint32_t)s->lea_port[0] | (uint32_t)(s->lea_port[1] & 0xF) << 16;
    /* the LEA's own memory traffic is part of its modelled cost, not CPU traffic */
    frsim_counters saved = s->c;
    int rc = sim_lea_call(&bus, fn, params, &cost, msg, (int)sizeof msg);
    s->c = saved;
    s->lea_ret = (int16_t)rc;
    s->c.lea_calls++;
    /* positive codes are TI's msp_status values for the firmware; negative ones are misuse */
    if (rc < 0) {
        frsim_fault(s, "LEA call %u (params 0x%05X) at PC 0x%04X failed (%d): %s", fn, params, s->pc_of_insn, rc,
                    msg[0] ? msg : "no message");
        return;
    }
    /* The call's results are in LEA RAM at once (SRAM: lost anyway if the supply fails before the
     * hold ends); its cycles are spent by frsim_run one budget at a time, so a power cut (a cycle
     * budget) can fall inside the call. */
    s->c.lea_cycles += cost.cycles;
    s->lea_hold = cost.cycles;
    s->c.lea_ops += cost.lea_ops;
    s->c.lea_energy_fj += (uint64_t)(cost.energy_nj * 1e6 + 0.5);
}

int frsim_lea_busy(const frsim *s)
{
    return s->lea_hold > 0x7FFFFFFF ? 0x7FFFFFFF : (int)s->lea_hold;
}
