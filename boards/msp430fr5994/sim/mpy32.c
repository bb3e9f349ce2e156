/* MPY32, the 32-bit hardware multiplier (SLAU367P chapter "32-Bit Hardware Multiplier (MPY32)").
 *
 * Register offsets from the base (0x04C0 on the chip, 0x0130 in mspdebug's simulator image):
 *   00 MPY  02 MPYS  04 MAC  06 MACS  08 OP2  0A RESLO  0C RESHI  0E SUMEXT
 *   10/12 MPY32L/H  14/16 MPYS32L/H  18/1A MAC32L/H  1C/1E MACS32L/H  20/22 OP2L/H
 *   24..2A RES0..RES3  2C MPY32CTL0 (bit 0 MPYC, 3:2 MPYM, 4 MPYFRAC, 5 MPYSAT, 6 MPYOP1_32, 7 MPYOP2_32)
 * Writing OP2 (or OP2H after OP2L) starts the operation. 16x16 results and accumulations use
 * RES0/RES1 (RESLO/RESHI) with SUMEXT as the sign (signed modes) or the carry (MAC); operations
 * with a 32-bit operand use all 64 bits. A byte write to an operand register gives an 8-bit
 * operand (sign-extended in the signed modes). MPYFRAC shifts the product left by one (Q15 x Q15
 * -> Q31); MPYSAT saturates the 32-bit (16x16) or 64-bit result to the signed range.
 *
 * Latency: a result register read by an instruction that starts fewer than `mpy_latency` MCLK
 * cycles (16x16; 2 * latency + 1 with a 32-bit operand) after the start of the instruction that
 * wrote OP2 stops the run. Default 3, SLAU367P 5.2.4.1 Table 5-5 (Result Availability, fractional
 * mode): 16x16 RES0/RES1 ready 3 MCLK cycles after OP2 is written (RES2/RES3 after 4); with a 32-bit
 * operand at most 7 (24/32 x 16, RES3), modelled as 7 for every result register. */
#include <string.h>

#include "sim.h"

enum { M_MPY = 0, M_MPYS = 1, M_MAC = 2, M_MACS = 3 };

void frsim_mpy_reset(frsim *s)
{
    memset(&s->mpy, 0, sizeof s->mpy);
}

static uint64_t res64(const frsim_mpy *m)
{
    return (uint64_t)m->res[0] | (uint64_t)m->res[1] << 16 | (uint64_t)m->res[2] << 32 | (uint64_t)m->res[3] << 48;
}

static void set_res64(frsim_mpy *m, uint64_t v)
{
    for (int i = 0; i < 4; i++)
        m->res[i] = (uint16_t)(v >> (16 * i));
}

static void multiply(frsim *s, int op2_32)
{
    frsim_mpy *m = &s->mpy;
    int sign = m->mode & 1, acc = m->mode & 2, wide = m->op1_32 || op2_32;
    uint32_t a = (uint32_t)m->op1_lo | (m->op1_32 ? (uint32_t)m->op1_hi << 16 : 0);
    uint32_t b = (uint32_t)m->op2_lo | (op2_32 ? (uint32_t)m->op2_hi << 16 : 0);
    int64_t sa = m->op1_32 ? (int32_t)a : (int16_t)a, sb = op2_32 ? (int32_t)b : (int16_t)b;
    int frac = (s->mpy.ctl0 & 0x10) != 0, sat = (s->mpy.ctl0 & 0x20) != 0;
    s->c.mpy_ops++;

    if (!wide) {
        /* 16x16: a 32-bit result with SUMEXT */
        int64_t p = sign ? sa * sb : (int64_t)((uint64_t)a * b);
        if (frac)
            p *= 2;
        int64_t r = p;
        uint16_t carry = 0;
        if (acc) {
            uint32_t old = (uint32_t)m->res[0] | (uint32_t)m->res[1] << 16;
            if (sign) {
                r = (int64_t)(int32_t)old + p;
            } else {
                uint64_t u = (uint64_t)old + (uint64_t)p;
                carry = (uint16_t)(u >> 32 & 1);
                r = (int64_t)u;
            }
        }
        if (sign && sat) {
            if (r > INT32_MAX)
                r = INT32_MAX;
            if (r < INT32_MIN)
                r = INT32_MIN;
        }
        uint32_t r32 = (uint32_t)r;
        m->res[0] = (uint16_t)r32;
        m->res[1] = (uint16_t)(r32 >> 16);
        if (sign) {
            m->sumext = (int32_t)r32 < 0 ? 0xFFFF : 0;
            m->res[2] = m->res[3] = m->sumext;
        } else {
            m->sumext = acc ? carry : 0;
            m->res[2] = m->res[3] = 0;
        }
        m->ctl0 = (uint16_t)((m->ctl0 & ~0x1u) | (m->sumext & 1));
    } else {
        /* a 32-bit operand: 64-bit result */
        __int128 p = sign ? (__int128)sa * sb : (__int128)((uint64_t)a * b);
        if (frac)
            p *= 2;
        __int128 r = p;
        uint16_t carry = 0;
        if (acc) {
            uint64_t old = res64(m);
            if (sign) {
                r = (__int128)(int64_t)old + p;
            } else {
                unsigned __int128 u = (unsigned __int128)old + (unsigned __int128)(uint64_t)p;
                carry = (uint16_t)(u >> 64 & 1);
                r = (__int128)u;
            }
        }
        if (sign && sat) {
            if (r > INT64_MAX)
                r = INT64_MAX;
            if (r < INT64_MIN)
                r = INT64_MIN;
        }
        set_res64(m, (uint64_t)r);
        m->sumext = sign ? ((int64_t)(uint64_t)r < 0 ? 0xFFFF : 0) : carry;
        m->ctl0 = (uint16_t)((m->ctl0 & ~0x1u) | (m->sumext & 1));
    }
    m->ctl0 = (uint16_t)((m->ctl0 & ~0xCCu) | (m->mode << 2) | (m->op1_32 ? 0x40 : 0) | (op2_32 ? 0x80 : 0));
    m->ready_at = s->c.cycles + (uint64_t)(wide ? 2 * s->mpy_latency + 1 : s->mpy_latency);
}

int frsim_mpy_read(frsim *s, uint32_t off, uint16_t *v)
{
    frsim_mpy *m = &s->mpy;
    switch (off) {
    case 0x00: case 0x02: case 0x04: case 0x06: case 0x10: case 0x14: case 0x18: case 0x1C:
        *v = m->op1_lo;
        return 0;
    case 0x12: case 0x16: case 0x1A: case 0x1E:
        *v = m->op1_hi;
        return 0;
    case 0x08: case 0x20:
        *v = m->op2_lo;
        return 0;
    case 0x22:
        *v = m->op2_hi;
        return 0;
    case 0x2C:
        *v = m->ctl0;
        return 0;
    }
    if (off == 0x0A || off == 0x0C || off == 0x0E || (off >= 0x24 && off <= 0x2A)) {
        if (s->c.cycles < m->ready_at)
            frsim_fault(s, "MPY32 result read at PC 0x%04X %u cycle(s) too early (modelled latency: %d cycles "
                        "from the OP2 write for 16x16; add a nop)", s->pc_of_insn,
                        (unsigned)(m->ready_at - s->c.cycles), s->mpy_latency);
        switch (off) {
        case 0x0A: case 0x24: *v = m->res[0]; break;
        case 0x0C: case 0x26: *v = m->res[1]; break;
        case 0x0E: *v = m->sumext; break;
        case 0x28: *v = m->res[2]; break;
        default: *v = m->res[3]; break;
        }
        return 0;
    }
    return 1;
}

int frsim_mpy_write(frsim *s, uint32_t off, uint16_t v, int byte)
{
    frsim_mpy *m = &s->mpy;
    uint32_t w = off & ~1u;
    if (byte && (off & 1))
        return 1;               /* high byte of a register alone: plain storage */
    if (w <= 0x06 || (w >= 0x10 && w <= 0x1E)) {
        int mode = w <= 0x06 ? (int)(w >> 1) : (int)((w - 0x10) >> 2);
        int sign = mode & 1;
        if (byte)
            v = sign ? (uint16_t)(int16_t)(int8_t)v : (uint8_t)v;
        if (w <= 0x06 || !(w & 2)) {    /* 16-bit register or the low half of a 32-bit one */
            m->op1_lo = v;
            m->op1_32 = w >= 0x10;
            m->op1_hi = (w >= 0x10 && sign && (v & 0x8000)) ? 0xFFFF : 0;
        } else {
            m->op1_hi = v;
            m->op1_32 = 1;
        }
        m->mode = (uint8_t)mode;
        return 0;
    }
    int sign = m->mode & 1;
    switch (w) {
    case 0x08:
        m->op2_lo = byte ? (sign ? (uint16_t)(int16_t)(int8_t)v : (uint8_t)v) : v;
        multiply(s, 0);
        return 0;
    case 0x20:
        m->op2_lo = v;
        return 0;
    case 0x22:
        m->op2_hi = v;
        multiply(s, 1);
        return 0;
    case 0x0A: case 0x24: m->res[0] = v; return 0;
    case 0x0C: case 0x26: m->res[1] = v; return 0;
    case 0x28: m->res[2] = v; return 0;
    case 0x2A: m->res[3] = v; return 0;
    case 0x2C: m->ctl0 = v & 0x3F; return 0;
    }
    return 1;
}
