/* The CPU: decode and execute the 16-bit MSP430 instruction set (everything clang-19 emits for
 * --target=msp430: formats I, II and III, byte and word forms, all seven addressing modes, the
 * constant generators), with two cycle tables:
 *
 * CPUXv2, the FR5xx/FR6xx CPU: the cycle tables of section 4.5.1.5 "MSP430 Instruction Execution" of
 * the CPUX chapter, read from a transcription of the MSP430FR2xx/FR4xx family user's guide (SLAU445I,
 * whose CPU is the same CPUXv2): Table 4-8 (RETI 5, RET 4), Table 4-9 (Format II), Table 4-10 (Format
 * I), jumps 2 cycles taken or not. SLAU367P (FR58xx/FR59xx/FR6xx) has the same section; its tables were
 * not found in a searchable copy. A board measurement should still confirm them.
 * Constant-generator operands (#0 #1 #2 #4 #8 #-1) count as register operands; MOV, BIT and CMP with
 * a memory destination take one cycle fewer than the other Format I instructions (Table 4-10 note 1).
 * With PC as destination: Rn and #N 3, @Rn and @Rn+ 4 (RET = MOV @SP+,PC: Table 4-8's 4), x(Rn),
 * EDE and &EDE 5.
 *
 * mspdebug 0.22, the old MSP430 table (SLAU144 "Instruction Cycles and Lengths") as Debian's mspdebug
 * 0.22 `sim` applies it (drivers/sim.c at tag v0.22), kept so that our counts can be checked against
 * it instruction for instruction: it charges constant-generator operands by their addressing mode
 * (#1 as indexed, #2/#4 as indirect, #-1/#8 as autoincrement; fixed upstream in v0.23) and a PUSH
 * @Rn+ five cycles.
 *
 * Where CPUXv2 differs from the old table: memory destinations of MOV/BIT/CMP (-1), PUSH @Rn/@Rn+/#N
 * (3, old 4), PUSH x(Rn) (4, old 5), CALL @Rn+/#N (4, old 5), CALL &abs (6, old 5), Format I with PC
 * as destination (Rn 3, old 2; @Rn/@Rn+ 4, old 2/3; x(Rn)/&abs 5, old 3). Upstream mspdebug's `simx` (CPUX timing
 * fitted to an FR5739) charges BR Rn / BR #N two cycles where the table says three.
 *
 * MSP430X instructions (extension words 0x1800-0x1FFF, address instructions 0x0000-0x0FFF,
 * PUSHM/POPM, CALLA) stop the run with the address: clang never emits them. */
#include "sim.h"

#define SR_C 0x0001u
#define SR_Z 0x0002u
#define SR_N 0x0004u
#define SR_GIE 0x0008u
#define SR_CPUOFF 0x0010u
#define SR_V 0x0100u
#define ARITH (SR_C | SR_Z | SR_N | SR_V)

enum { S_REG, S_IND, S_INC, S_IMM, S_IDX, S_ABS, S_CG1, S_CG_IND, S_CG_INC };  /* source classes */
enum { D_REG, D_PC, D_IDX, D_ABS };                                             /* destination classes */
enum { OP_MOV, OP_BITCMP, OP_OTHER };

#define F1KEY(op, src, dst) (((op) * FRSIM_SRC_CLASSES + (src)) * FRSIM_DST_CLASSES + (dst))
#define F2KEY(op, src) (FRSIM_F1_FORMS + (op) * FRSIM_SRC_CLASSES + (src))
#define JMPKEY (FRSIM_FORMS - 1)

/* ---- cycle tables ---------------------------------------------------------------------------- */

static const int src_as[FRSIM_SRC_CLASSES] = {0, 2, 3, 3, 1, 1, 1, 2, 3};   /* the As bits of each class */

static int is_cg(int src) { return src == S_REG || src >= S_CG1; }

static int cpux_f1(int op, int src, int dst)
{
    int kind = is_cg(src) ? 0 : (src == S_IDX || src == S_ABS) ? 2 : 1;   /* register, memory, indexed */
    if (dst == D_REG)
        return 1 + kind;
    if (dst == D_PC)
        return kind == 0 || src == S_IMM ? 3 : kind == 1 ? 4 : 5;
    return 4 + kind - (op != OP_OTHER);
}

static int cpux_f2(int op, int src)
{
    int reg = is_cg(src), idx = src == S_IDX || src == S_ABS;
    switch (op) {
    case 4: return idx ? 4 : 3;                               /* PUSH */
    case 5: return src == S_ABS ? 6 : idx ? 5 : 4;            /* CALL */
    case 6: return 5;                                         /* RETI */
    default: return reg ? 1 : idx ? 4 : 3;                    /* RRC SWPB RRA SXT */
    }
}

static int legacy_f1(int src, int dst)
{
    int as = src_as[src];
    if (dst == D_PC)
        return (as == 0 || as == 2) ? 2 : 3;
    return (as == 0 ? 1 : as == 1 ? 3 : 2) + (dst == D_IDX || dst == D_ABS ? 3 : 0);
}

static int legacy_f2(int op, int src)
{
    int as = src_as[src];
    switch (op) {
    case 4: return as == 0 ? 3 : (as == 2 || src == S_IMM) ? 4 : 5;
    case 5: return (as == 0 || as == 2) ? 4 : 5;
    case 6: return 5;
    default: return as == 1 ? 4 : as == 0 ? 1 : 3;
    }
}

void frsim_init_tables(frsim *s)
{
    for (int op = 0; op < 3; op++)
        for (int src = 0; src < FRSIM_SRC_CLASSES; src++)
            for (int dst = 0; dst < FRSIM_DST_CLASSES; dst++) {
                s->cyc_cpux[F1KEY(op, src, dst)] = (uint8_t)cpux_f1(op, src, dst);
                s->cyc_legacy[F1KEY(op, src, dst)] = (uint8_t)legacy_f1(src, dst);
            }
    for (int op = 0; op < 7; op++)
        for (int src = 0; src < FRSIM_SRC_CLASSES; src++) {
            s->cyc_cpux[F2KEY(op, src)] = (uint8_t)cpux_f2(op, src);
            s->cyc_legacy[F2KEY(op, src)] = (uint8_t)legacy_f2(op, src);
        }
    s->cyc_cpux[JMPKEY] = s->cyc_legacy[JMPKEY] = 2;
}

/* ---- memory access from the CPU (16-bit addresses) ------------------------------------------- */

static inline void fram_read(frsim *s, uint32_t a)
{
    if ((a >> s->line_shift) == s->last_line)
        s->c.fram_reads++;          /* a hit: cache_hits is derived (reads - misses) */
    else
        frsim_fram_access(s, a);
}

static inline uint16_t rd(frsim *s, uint16_t a, int byte)
{
    uint8_t kind = s->page[a >> 8];
    if (!byte && (a & 1)) {
        frsim_fault(s, "unaligned word read at 0x%04X (PC 0x%04X)", a, s->pc_of_insn);
        return 0;
    }
    if (kind == RG_SRAM) {
        s->c.sram_reads++;
    } else if (kind == RG_FRAM) {
        fram_read(s, a);
    } else {
        return frsim_bus_read(s, a, byte);
    }
    return byte ? s->mem[a] : (uint16_t)(s->mem[a] | s->mem[a + 1] << 8);
}

static inline void wr(frsim *s, uint16_t a, uint16_t v, int byte)
{
    uint8_t kind = s->page[a >> 8];
    if (!byte && (a & 1)) {
        frsim_fault(s, "unaligned word write at 0x%04X (PC 0x%04X)", a, s->pc_of_insn);
        return;
    }
    if (kind == RG_SRAM) {
        s->c.sram_writes++;
    } else if (kind == RG_FRAM) {
        s->c.fram_writes++;
        s->c.wait_cycles += (uint64_t)s->write_waits;
        s->c.cycles += (uint64_t)s->write_waits;
    } else {
        frsim_bus_write(s, a, v, byte);
        return;
    }
    s->mem[a] = (uint8_t)v;
    if (!byte)
        s->mem[a + 1] = (uint8_t)(v >> 8);
}

static inline uint16_t fetch(frsim *s)
{
    uint16_t pc = s->r[0];
    uint8_t kind = s->page[pc >> 8];
    if (kind != RG_FRAM && kind != RG_SRAM) {
        frsim_fault(s, "instruction fetch at 0x%04X outside FRAM/SRAM", pc);
        return 0x4303;
    }
    if (pc & 1) {
        frsim_fault(s, "instruction fetch at odd address 0x%04X", pc);
        return 0x4303;
    }
    if (kind == RG_FRAM)
        fram_read(s, pc);
    else
        s->c.sram_reads++;
    s->r[0] = (uint16_t)(pc + 2);
    return (uint16_t)(s->mem[pc] | s->mem[pc + 1] << 8);
}

/* ---- operands ---------------------------------------------------------------------------------- */

typedef struct operand {
    int cls;          /* S_* */
    int mem;          /* 1: in memory at addr */
    uint16_t addr;
    uint16_t val;
} operand;

static inline void source(frsim *s, int as, int reg, int byte, operand *o, int need_value)
{
    uint16_t mask = byte ? 0xFF : 0xFFFF;
    o->mem = 0;
    o->addr = 0;
    switch (as) {
    case 0:
        o->cls = S_REG;
        o->val = reg == 3 ? 0 : (uint16_t)(s->r[reg] & mask);
        return;
    case 1:
        if (reg == 3) {
            o->cls = S_CG1;
            o->val = 1;
            return;
        }
        {
            uint16_t base = reg == 2 ? 0 : s->r[reg];   /* PC: the address of the index word */
            uint16_t x = fetch(s);
            o->addr = (uint16_t)(x + base);
            o->cls = reg == 2 ? S_ABS : S_IDX;
        }
        break;
    case 2:
        if (reg == 2 || reg == 3) {
            o->cls = S_CG_IND;
            o->val = reg == 2 ? 4 : 2;
            return;
        }
        o->cls = S_IND;
        o->addr = s->r[reg];
        break;
    default:
        if (reg == 2 || reg == 3) {
            o->cls = S_CG_INC;
            o->val = reg == 2 ? 8 : mask;
            return;
        }
        if (reg == 0) {
            o->cls = S_IMM;
            o->val = (uint16_t)(fetch(s) & mask);
            return;
        }
        o->cls = S_INC;
        o->addr = s->r[reg];
        s->r[reg] = (uint16_t)(s->r[reg] + ((byte && reg != 1) ? 1 : 2));
        break;
    }
    o->mem = 1;
    if (need_value)
        o->val = rd(s, o->addr, byte);
}

static inline void store(frsim *s, const operand *o, int reg, int byte, uint16_t v)
{
    if (o->mem)
        wr(s, o->addr, v, byte);
    else
        s->r[reg] = byte ? (uint16_t)(v & 0xFF) : v;
}

static inline void nz(frsim *s, uint32_t r, uint32_t mask, uint32_t msb)
{
    if (!(r & mask))
        s->r[2] |= SR_Z;
    if (r & msb)
        s->r[2] |= SR_N;
}

/* ---- execution ------------------------------------------------------------------------------- */

static int step_format1(frsim *s, uint16_t ins)
{
    int opcode = ins >> 12, sreg = (ins >> 8) & 0xF, ad = (ins >> 7) & 1, byte = (ins >> 6) & 1;
    int as = (ins >> 4) & 3, dreg = ins & 0xF;
    uint32_t mask = byte ? 0xFF : 0xFFFF, msb = byte ? 0x80 : 0x8000;
    operand src, dst;
    source(s, as, sreg, byte, &src, 1);

    int dcls;
    dst.mem = 0;
    dst.addr = 0;
    if (ad) {
        if (dreg == 3) {
            frsim_fault(s, "destination mode x(R3) at PC 0x%04X is not a valid operand", s->pc_of_insn);
            return 0;
        }
        uint16_t base = dreg == 2 ? 0 : s->r[dreg];
        uint16_t x = fetch(s);
        dst.addr = (uint16_t)(x + base);
        dst.mem = 1;
        dcls = dreg == 2 ? D_ABS : D_IDX;
        if (opcode != 4)
            dst.val = rd(s, dst.addr, byte);
    } else {
        dcls = dreg == 0 ? D_PC : D_REG;
        dst.val = dreg == 3 ? 0 : (uint16_t)(s->r[dreg] & mask);
    }

    uint32_t a = src.val, b = dst.val, r = 0;
    uint16_t *sr = &s->r[2];
    int write = 1, opcls = OP_OTHER;
    switch (opcode) {
    case 4:                                                     /* MOV */
        r = a;
        opcls = OP_MOV;
        break;
    case 5: case 6: case 7: case 8: case 9: {                   /* ADD ADDC SUBC SUB CMP */
        uint32_t carry;
        if (opcode >= 7)
            a = ~a & mask;
        carry = (opcode == 6 || opcode == 7) ? (*sr & SR_C) : (opcode >= 8);
        r = a + b + carry;
        *sr &= (uint16_t)~ARITH;
        nz(s, r, mask, msb);
        if (r & (msb << 1))
            *sr |= SR_C;
        if (!((a ^ b) & msb) && ((a ^ r) & msb))
            *sr |= SR_V;
        if (opcode == 9) {
            write = 0;
            opcls = OP_BITCMP;
        }
        break;
    }
    case 10: {                                                  /* DADD: per-digit decimal carry */
        r = (*sr & SR_C) ? 1 : 0;
        for (int i = 0; i < 4; i++) {
            uint32_t digit_mask = 0xFu << (4 * i);
            r += (a & digit_mask) + (b & digit_mask);
            if ((r & (0x1Fu << (4 * i))) > (9u << (4 * i)))
                r += 6u << (4 * i);
        }
        *sr &= (uint16_t)~ARITH;
        nz(s, r, mask, msb);
        if (r & (msb << 1))
            *sr |= SR_C;
        break;
    }
    case 11: case 15:                                           /* BIT AND */
        r = a & b;
        *sr &= (uint16_t)~ARITH;
        *sr |= (r & mask) ? SR_C : SR_Z;
        if (r & msb)
            *sr |= SR_N;
        if (opcode == 11) {
            write = 0;
            opcls = OP_BITCMP;
        }
        break;
    case 12:                                                    /* BIC */
        r = b & ~a;
        break;
    case 13:                                                    /* BIS */
        r = b | a;
        break;
    default:                                                    /* 14: XOR */
        r = a ^ b;
        *sr &= (uint16_t)~ARITH;
        *sr |= (r & mask) ? SR_C : SR_Z;
        if (r & msb)
            *sr |= SR_N;
        if (a & b & msb)
            *sr |= SR_V;
        break;
    }
    if (write)
        store(s, &dst, dreg, byte, (uint16_t)(r & mask));
    return F1KEY(opcls, src.cls, dcls);
}

static int step_format2(frsim *s, uint16_t ins)
{
    int op = (ins >> 7) & 7, byte = (ins >> 6) & 1, as = (ins >> 4) & 3, reg = ins & 0xF;
    uint32_t mask = byte ? 0xFF : 0xFFFF, msb = byte ? 0x80 : 0x8000;
    uint16_t *sr = &s->r[2];
    operand o;
    if (op == 7) {
        frsim_fault(s, "MSP430X instruction 0x%04X (CALLA) at PC 0x%04X is not implemented", ins, s->pc_of_insn);
        return 0;
    }
    if (op == 6) {                                              /* RETI */
        s->r[2] = rd(s, s->r[1], 0);
        s->r[1] = (uint16_t)(s->r[1] + 2);
        s->r[0] = rd(s, s->r[1], 0);
        s->r[1] = (uint16_t)(s->r[1] + 2);
        return F2KEY(6, S_REG);
    }
    source(s, as, reg, byte, &o, 1);
    uint32_t v = o.val, r;
    switch (op) {
    case 0:                                                     /* RRC */
    case 2:                                                     /* RRA */
        r = (v >> 1) & ~msb;
        if (op == 0 ? (*sr & SR_C) : (v & msb))
            r |= msb;
        *sr &= (uint16_t)~ARITH;
        nz(s, r, mask, msb);
        if (v & 1)
            *sr |= SR_C;
        break;
    case 1:                                                     /* SWPB */
        r = ((v & 0xFF) << 8) | ((v >> 8) & 0xFF);
        byte = 0;
        break;
    case 3:                                                     /* SXT */
        r = (uint16_t)(int16_t)(int8_t)(uint8_t)v;
        *sr &= (uint16_t)~ARITH;
        if (v & 0x80)
            *sr |= SR_N;
        *sr |= (r & 0xFFFF) ? SR_C : SR_Z;
        byte = 0;
        break;
    case 4:                                                     /* PUSH */
        s->r[1] = (uint16_t)(s->r[1] - 2);
        wr(s, s->r[1], (uint16_t)v, byte);
        return F2KEY(4, o.cls);
    default:                                                    /* 5: CALL */
        s->r[1] = (uint16_t)(s->r[1] - 2);
        wr(s, s->r[1], s->r[0], 0);
        s->r[0] = (uint16_t)v;
        return F2KEY(5, o.cls);
    }
    if (o.cls >= S_CG1 || o.cls == S_IMM)
        return F2KEY(op, o.cls);                                /* a constant: nowhere to write */
    store(s, &o, reg, byte, (uint16_t)(r & (byte ? 0xFF : 0xFFFF)));
    return F2KEY(op, o.cls);
}

static int step_jump(frsim *s, uint16_t ins)
{
    uint16_t sr = s->r[2];
    int take;
    switch ((ins >> 10) & 7) {
    case 0: take = !(sr & SR_Z); break;                         /* JNE/JNZ */
    case 1: take = (sr & SR_Z) != 0; break;                     /* JEQ/JZ */
    case 2: take = !(sr & SR_C); break;                         /* JNC/JLO */
    case 3: take = (sr & SR_C) != 0; break;                     /* JC/JHS */
    case 4: take = (sr & SR_N) != 0; break;                     /* JN */
    case 5: take = !(sr & SR_N) == !(sr & SR_V); break;         /* JGE */
    case 6: take = !(sr & SR_N) != !(sr & SR_V); break;         /* JL */
    default: take = 1; break;                                   /* JMP */
    }
    if (take) {
        int16_t off = (int16_t)((ins & 0x3FF) << 6) >> 5;      /* sign-extended words -> bytes */
        s->r[0] = (uint16_t)(s->r[0] + off);
    }
    return JMPKEY;
}

static inline int step(frsim *s)
{
    uint16_t pc = s->r[0];
    s->pc_of_insn = pc;
    uint16_t ins = fetch(s);
    if (ins >= 0x4000)
        return step_format1(s, ins);
    if (ins >= 0x2000)
        return step_jump(s, ins);
    if ((ins & 0xFC00) == 0x1000)
        return step_format2(s, ins);
    if (ins >= 0x1800)
        frsim_fault(s, "MSP430X extension word 0x%04X at PC 0x%04X: MSP430X instructions are not implemented", ins, pc);
    else if (ins >= 0x1400)
        frsim_fault(s, "MSP430X PUSHM/POPM 0x%04X at PC 0x%04X is not implemented", ins, pc);
    else
        frsim_fault(s, "MSP430X address instruction 0x%04X (MOVA/CALLA/...) at PC 0x%04X is not implemented", ins, pc);
    return -1;
}

/* Move the active DMA block one transfer at a time until it ends (0) or the cycle budget is spent
 * (1: the run stops inside the block and the next run continues it). */
static int dma_continue(frsim *s, uint64_t cycle_limit)
{
    while (s->dma_active >= 0 && !s->error) {
        if (s->c.cycles >= cycle_limit)
            return 1;
        uint64_t before = s->c.cycles;
        frsim_dma_step(s);
        if (s->profile)
            s->profile[s->dma_pc >> 1] += (uint32_t)(s->c.cycles - before);
    }
    return 0;
}

/* The CPU held by a LEA call (frsim_lea_trigger): up to the budget. Non-zero: the budget ended inside. */
static int lea_continue(frsim *s, uint64_t cycle_limit)
{
    uint64_t take = s->c.cycles >= cycle_limit ? 0 : cycle_limit - s->c.cycles;
    if (take > s->lea_hold)
        take = s->lea_hold;
    s->c.cycles += take;
    s->lea_hold -= take;
    if (s->profile)
        s->profile[s->lea_pc >> 1] += (uint32_t)take;
    return s->lea_hold > 0;
}

int frsim_run(frsim *s, uint64_t cycle_limit, uint64_t insn_limit)
{
    int first = 1;
    if (s->error)
        return FRSIM_ERROR;
    if (s->lea_hold) {              /* the last run stopped inside a LEA call */
        if (lea_continue(s, cycle_limit))
            return FRSIM_BUDGET;
        first = 0;
    }
    if (s->dma_active >= 0) {       /* the last run stopped inside a DMA block: the CPU is still held */
        if (dma_continue(s, cycle_limit))
            return FRSIM_BUDGET;
        if (s->error)
            return FRSIM_ERROR;
        first = 0;                  /* the next instruction is reached as if in one run */
    }
    for (;;) {
        if (s->c.cycles >= cycle_limit || s->c.instructions >= insn_limit)
            return FRSIM_BUDGET;
        uint16_t pc = s->r[0];
        if (!first && (s->bp[pc >> 3] >> (pc & 7) & 1))
            return FRSIM_BREAK;
        first = 0;
        if (s->r[2] & SR_CPUOFF)
            return FRSIM_HALT;      /* no interrupt source is modelled: low-power mode is the end */
        uint64_t before = s->c.cycles;
        int key = step(s);
        if (s->error) {
            s->r[0] = (uint16_t)s->pc_of_insn;    /* the stopping instruction is not counted */
            return FRSIM_ERROR;
        }
        unsigned cyc = s->cyc_cpux[key];
        s->hist[key]++;             /* legacy_cycles is derived from the histogram */
        s->c.instructions++;
        s->c.cpu_cycles += cyc;
        s->c.cycles += cyc;         /* wait, DMA and LEA cycles are added where they happen */
        if (s->profile)
            s->profile[pc >> 1] += (uint32_t)(s->c.cycles - before);
        if (s->lea_hold) {          /* a LEA call: the CPU is held for its modelled cycles */
            s->lea_pc = pc;
            if (lea_continue(s, cycle_limit))
                return FRSIM_BUDGET;
        }
        if (s->dma_pending) {       /* a software DMA request: the CPU is held until it is served */
            frsim_dma_start(s);
            if (dma_continue(s, cycle_limit))
                return FRSIM_BUDGET;
        }
        if (s->error)
            return FRSIM_ERROR;
    }
}
