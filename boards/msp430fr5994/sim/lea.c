/* Functional and cost model of the MSP430FR5994's LEA at the DSPLib interface (contract: lea.h).
 *
 * Arithmetic: the rules of DSPLib's C reference (python/sparsenest/compiler/lea_ref.py is the numpy copy the
 * tests hold this file to, bit for bit):
 *   - products of two Q15 values are exact (31 bits) and sums of them are exact: we model LEA's accumulator
 *     as wide enough for any LEA-RAM-sized vector (2048 products < 2^42 in magnitude);
 *   - msp_mac_q15: result = sat32(2 * sum) (Q30 sum shifted to Q31, saturated once at the end, as DSPLib's
 *     MPY32 path with MPYSAT does);
 *   - msp_matrix_mpy_q15, msp_fir_q15: y = sat16(floor(sum / 2^15)) (arithmetic shift, no rounding);
 *   - msp_add_q15, msp_offset_q15: sat16(a + b); msp_mpy_q15: (a * b) >> 15 kept to 16 bits (wraps);
 *   - msp_max_q15: the largest value and the index of its last occurrence.
 * Every input is read before any output is written, so in-place calls (dst == src) are well defined.
 * Where the LEA hardware itself may differ (overflow corner cases, tie index of max) is unconfirmed until a
 * board measures it.
 *
 * Cost: see sim_lea_costs in lea.h; the constants live in boards/msp430fr5994/board.toml.
 *
 * Host board: this file needs only the C library. boards/host can compile it next to its own shims and
 * pass a bus whose rd8/wr8 map the 16-bit LEA addresses 0x2C00..0x3BFF onto a 4 KB host array (and the
 * addresses of msp_max_q15's outputs onto wherever the host keeps them), then call sim_lea_call with the
 * same parameter block layout the simulator image uses.
 */
#include "lea.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LEA_RAM_BYTES (SIM_LEA_RAM_END - SIM_LEA_RAM_START)
#define MAX_ELEMS (LEA_RAM_BYTES / 2)   /* a checked operand never holds more Q15 values than this */

static sim_lea_costs g_costs;
static int g_costs_set;

int sim_lea_set_costs(const sim_lea_costs *c)
{
    const double v[] = {c->cycles_per_call, c->cycles_per_command, c->cycles_per_mac, c->cycles_per_element,
                        c->nj_per_call, c->nj_per_element};
    for (unsigned i = 0; i < sizeof v / sizeof v[0]; i++)
        if (!isfinite(v[i]) || v[i] < 0)
            return SIM_LEA_ECOSTS;
    g_costs = *c;
    g_costs_set = 1;
    return SIM_LEA_OK;
}

/* ----------------------------------------------------------------------------------- helpers */
typedef struct call {
    const sim_lea_bus *bus;
    uint32_t block;
    const char *name;        /* the DSPLib function, for messages */
    char *msg;
    int msg_len;
} call;

static int fail(const call *c, int code, const char *fmt, ...)
{
    if (c->msg && c->msg_len > 0) {
        int n = snprintf(c->msg, (size_t)c->msg_len, "%s: ", c->name);
        if (n >= 0 && n < c->msg_len) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(c->msg + n, (size_t)(c->msg_len - n), fmt, ap);
            va_end(ap);
        }
    }
    return code;
}

static uint16_t rd16(const sim_lea_bus *b, uint32_t a)
{
    return (uint16_t)(b->rd8(b->ctx, a) | ((uint16_t)b->rd8(b->ctx, a + 1) << 8));
}

static void wr16(const sim_lea_bus *b, uint32_t a, uint16_t v)
{
    b->wr8(b->ctx, a, (uint8_t)(v & 0xFF));
    b->wr8(b->ctx, a + 1, (uint8_t)(v >> 8));
}

static uint16_t word(const call *c, unsigned i) { return rd16(c->bus, c->block + 2u * i); }

static void read_q15(const call *c, uint32_t a, uint32_t n, int16_t *out)
{
    for (uint32_t i = 0; i < n; i++)
        out[i] = (int16_t)rd16(c->bus, a + 2u * i);
}

static void write_q15(const call *c, uint32_t a, uint32_t n, const int16_t *v)
{
    for (uint32_t i = 0; i < n; i++)
        wr16(c->bus, a + 2u * i, (uint16_t)v[i]);
}

/* An LEA operand of `bytes` bytes at addr: starts in LEA RAM on a 32-bit boundary and ends inside it. */
static int check_operand(const call *c, const char *what, uint32_t addr, uint64_t bytes)
{
    if (addr < SIM_LEA_RAM_START || addr >= SIM_LEA_RAM_END)
        return fail(c, SIM_LEA_EADDR, "%s at 0x%04X is outside LEA RAM 0x2C00-0x3BFF; "
                    "place it with SN_LEA_RAM", what, (unsigned)addr);
    if (addr % 4u)
        return fail(c, SIM_LEA_EADDR, "%s at 0x%04X is not 32-bit aligned; "
                    "LEA operands need address %% 4 == 0", what, (unsigned)addr);
    if (addr + bytes > SIM_LEA_RAM_END)
        return fail(c, SIM_LEA_ERANGE, "%s at 0x%04X with %llu bytes runs past the end of LEA RAM (0x3BFF); "
                    "shorten it or move it down", what, (unsigned)addr, (unsigned long long)bytes);
    return SIM_LEA_OK;
}

static int check_even_length(const call *c, const char *what, uint32_t n)
{
    if (n == 0 || n % 2u)
        return fail(c, SIM_LEA_ESIZE, "%s %u must be even and non-zero (LEA works on pairs of Q15 values); "
                    "pad with a zero element or skip the call", what, (unsigned)n);
    return SIM_LEA_OK;
}

static int16_t sat16(int64_t v) { return (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v); }

static int32_t sat32(int64_t v)
{
    return (int32_t)(v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : v);
}

/* floor(v / 2^15) without relying on the implementation-defined shift of a negative value */
static int64_t floor_q15(int64_t v) { return v >= 0 ? v / 32768 : -((-v + 32767) / 32768); }

static void charge(sim_lea_cost *cost, uint64_t extra_commands, uint64_t macs, uint64_t elements)
{
    const sim_lea_costs *k = &g_costs;
    /* One expression, evaluated left to right: lea_ref.call_cost does the same sum in the same order. */
    double cycles = k->cycles_per_call + (double)extra_commands * k->cycles_per_command
                    + (double)macs * k->cycles_per_mac + (double)elements * k->cycles_per_element;
    cost->cycles = (uint64_t)ceil(cycles);
    cost->lea_ops = macs + elements;
    cost->energy_nj = (double)(1 + extra_commands) * k->nj_per_call
                      + (double)(macs + elements) * k->nj_per_element;
}

#define TRY(expr) do { int rc_ = (expr); if (rc_ != SIM_LEA_OK) return rc_; } while (0)

/* ---------------------------------------------------------------------------------- functions */
static int lea_mac(const call *c, sim_lea_cost *cost)
{
    uint32_t n = word(c, 0), a = word(c, 1), b = word(c, 2), r = word(c, 3);
    TRY(check_even_length(c, "length", n));
    TRY(check_operand(c, "srcA", a, 2ull * n));
    TRY(check_operand(c, "srcB", b, 2ull * n));
    TRY(check_operand(c, "result", r, 4));
    int16_t x[MAX_ELEMS], y[MAX_ELEMS];
    read_q15(c, a, n, x);
    read_q15(c, b, n, y);
    int64_t sum = 0;
    for (uint32_t i = 0; i < n; i++)
        sum += (int32_t)x[i] * y[i];
    uint32_t res = (uint32_t)sat32(2 * sum);
    wr16(c->bus, r, (uint16_t)(res & 0xFFFF));
    wr16(c->bus, r + 2, (uint16_t)(res >> 16));
    charge(cost, 0, n, 0);
    return SIM_LEA_OK;
}

static int lea_matrix_mpy(const call *c, sim_lea_cost *cost)
{
    uint32_t ar = word(c, 0), ac = word(c, 1), br = word(c, 2), bc = word(c, 3);
    uint32_t a = word(c, 4), b = word(c, 5), d = word(c, 6);
    if (ac != br)
        return fail(c, SIM_LEA_ESIZE, "srcACols %u != srcBRows %u; A . B needs cols of A == rows of B",
                    (unsigned)ac, (unsigned)br);
    if (ar == 0)
        return fail(c, SIM_LEA_ESIZE, "srcARows is 0; skip the call");
    TRY(check_even_length(c, "srcACols", ac));
    TRY(check_even_length(c, "srcBCols", bc));
    TRY(check_operand(c, "srcA", a, 2ull * ar * ac));
    TRY(check_operand(c, "srcB", b, 2ull * br * bc));
    TRY(check_operand(c, "dst", d, 2ull * ar * bc));
    int16_t ma[MAX_ELEMS], mb[MAX_ELEMS], out[MAX_ELEMS];
    read_q15(c, a, ar * ac, ma);
    read_q15(c, b, br * bc, mb);
    for (uint32_t i = 0; i < ar; i++)
        for (uint32_t j = 0; j < bc; j++) {
            int64_t sum = 0;
            for (uint32_t k = 0; k < ac; k++)
                sum += (int32_t)ma[i * ac + k] * mb[k * bc + j];
            out[i * bc + j] = sat16(floor_q15(sum));
        }
    write_q15(c, d, ar * bc, out);
    /* DSPLib issues one LEA command per row of A */
    charge(cost, ar - 1, (uint64_t)ar * ac * bc, 0);
    return SIM_LEA_OK;
}

static int lea_fir(const call *c, sim_lea_cost *cost)
{
    uint32_t n = word(c, 0), taps = word(c, 1), h = word(c, 2), circular = word(c, 3);
    uint32_t s = word(c, 4), d = word(c, 5);
    TRY(check_even_length(c, "length", n));
    TRY(check_even_length(c, "tapLength", taps));
    if (circular > 1)
        return fail(c, SIM_LEA_ESIZE, "enableCircularBuffer is %u, must be 0 or 1", (unsigned)circular);
    uint32_t ring = 0, base = s, first = 0;
    if (circular) {
        if (n & (n - 1))
            return fail(c, SIM_LEA_ESIZE, "length %u must be a power of two with the circular buffer",
                        (unsigned)n);
        if (taps > 2 * n)
            return fail(c, SIM_LEA_ESIZE, "tapLength %u exceeds the circular buffer of 2*length = %u samples",
                        (unsigned)taps, (unsigned)(2 * n));
        ring = 2 * n;                                   /* samples */
        base = s & ~(uint32_t)(2 * ring - 1);           /* the ring is aligned to its byte size */
        first = (s - base) / 2;
        TRY(check_operand(c, "src", s, 2));
        TRY(check_operand(c, "src's circular buffer (aligned to 4*length bytes)", base, 2ull * ring));
    } else {
        /* DSPLib's rule: out of range when src + 2*(tapLength + length) passes the top of LEA RAM. It
         * names one sample more than the filter reads; with src 4-aligned and even lengths, the same test. */
        TRY(check_operand(c, "src", s, 2ull * (taps + n)));
    }
    TRY(check_operand(c, "coeffs", h, 2ull * taps));
    TRY(check_operand(c, "dst", d, 2ull * n));
    int16_t x[MAX_ELEMS], coef[MAX_ELEMS], out[MAX_ELEMS];
    uint32_t nx = circular ? ring : n + taps - 1;
    read_q15(c, base, nx, x);
    read_q15(c, h, taps, coef);
    for (uint32_t i = 0; i < n; i++) {
        int64_t sum = 0;
        for (uint32_t k = 0; k < taps; k++) {
            uint32_t at = circular ? (first + i + k) % ring : i + k;
            sum += (int32_t)x[at] * coef[taps - 1 - k];
        }
        out[i] = sat16(floor_q15(sum));
    }
    write_q15(c, d, n, out);
    charge(cost, 0, (uint64_t)n * taps, 0);
    return SIM_LEA_OK;
}

enum elementwise { EW_ADD, EW_MPY };

static int lea_binary(const call *c, sim_lea_cost *cost, enum elementwise op)
{
    uint32_t n = word(c, 0), a = word(c, 1), b = word(c, 2), d = word(c, 3);
    TRY(check_even_length(c, "length", n));
    TRY(check_operand(c, "srcA", a, 2ull * n));
    TRY(check_operand(c, "srcB", b, 2ull * n));
    TRY(check_operand(c, "dst", d, 2ull * n));
    int16_t x[MAX_ELEMS], y[MAX_ELEMS];
    read_q15(c, a, n, x);
    read_q15(c, b, n, y);
    for (uint32_t i = 0; i < n; i++)
        x[i] = op == EW_ADD ? sat16((int32_t)x[i] + y[i])
                            : (int16_t)(uint16_t)(floor_q15((int32_t)x[i] * y[i]) & 0xFFFF);
    write_q15(c, d, n, x);
    charge(cost, 0, 0, n);
    return SIM_LEA_OK;
}

static int lea_offset(const call *c, sim_lea_cost *cost)
{
    uint32_t n = word(c, 0), s = word(c, 2), d = word(c, 3);
    int16_t off = (int16_t)word(c, 1);
    TRY(check_even_length(c, "length", n));
    TRY(check_operand(c, "src", s, 2ull * n));
    TRY(check_operand(c, "dst", d, 2ull * n));
    int16_t x[MAX_ELEMS];
    read_q15(c, s, n, x);
    for (uint32_t i = 0; i < n; i++)
        x[i] = sat16((int32_t)x[i] + off);
    write_q15(c, d, n, x);
    charge(cost, 0, 0, n);
    return SIM_LEA_OK;
}

static int lea_max(const call *c, sim_lea_cost *cost)
{
    uint32_t n = word(c, 0), s = word(c, 1), pmax = word(c, 2), pidx = word(c, 3);
    TRY(check_even_length(c, "length", n));
    TRY(check_operand(c, "src", s, 2ull * n));
    if (pmax % 2u || pidx % 2u)
        return fail(c, SIM_LEA_EADDR, "max at 0x%04X / index at 0x%04X: both must be even (word) addresses",
                    (unsigned)pmax, (unsigned)pidx);
    int16_t x[MAX_ELEMS];
    read_q15(c, s, n, x);
    int16_t best = x[0];
    uint16_t at = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] >= best) {          /* ties: the last occurrence wins, as in DSPLib's reference */
            best = x[i];
            at = (uint16_t)i;
        }
    wr16(c->bus, pmax, (uint16_t)best);
    wr16(c->bus, pidx, at);
    charge(cost, 0, 0, n);
    return SIM_LEA_OK;
}

static int lea_fill(const call *c, sim_lea_cost *cost)
{
    uint32_t n = word(c, 0), d = word(c, 2);
    uint16_t v = word(c, 1);
    TRY(check_even_length(c, "length", n));
    TRY(check_operand(c, "dst", d, 2ull * n));
    for (uint32_t i = 0; i < n; i++)
        wr16(c->bus, d + 2u * i, v);
    charge(cost, 0, 0, n);
    return SIM_LEA_OK;
}

static int lea_copy(const call *c, sim_lea_cost *cost)
{
    uint32_t n = word(c, 0), s = word(c, 1), d = word(c, 2);
    TRY(check_even_length(c, "length", n));
    TRY(check_operand(c, "src", s, 2ull * n));
    TRY(check_operand(c, "dst", d, 2ull * n));
    int16_t x[MAX_ELEMS];
    read_q15(c, s, n, x);
    write_q15(c, d, n, x);
    charge(cost, 0, 0, n);
    return SIM_LEA_OK;
}

/* ------------------------------------------------------------------------------------- entry */
static const char *const FN_NAMES[] = {
    [SIM_LEA_FN_MAC_Q15] = "msp_mac_q15",       [SIM_LEA_FN_MATRIX_MPY_Q15] = "msp_matrix_mpy_q15",
    [SIM_LEA_FN_FIR_Q15] = "msp_fir_q15",       [SIM_LEA_FN_ADD_Q15] = "msp_add_q15",
    [SIM_LEA_FN_MPY_Q15] = "msp_mpy_q15",       [SIM_LEA_FN_OFFSET_Q15] = "msp_offset_q15",
    [SIM_LEA_FN_MAX_Q15] = "msp_max_q15",       [SIM_LEA_FN_FILL_Q15] = "msp_fill_q15",
    [SIM_LEA_FN_COPY_Q15] = "msp_copy_q15",
};

int sim_lea_call(const sim_lea_bus *bus, uint16_t fn, uint32_t params, sim_lea_cost *cost, char *msg,
                 int msg_len)
{
    call c = {bus, params, "sim_lea_call", msg, msg_len};
    sim_lea_cost unused;
    if (!cost)
        cost = &unused;                 /* a caller that does not want the cost may pass NULL */
    if (msg && msg_len > 0)
        msg[0] = '\0';
    memset(cost, 0, sizeof *cost);
    if (fn == 0 || fn >= sizeof FN_NAMES / sizeof FN_NAMES[0])
        return fail(&c, SIM_LEA_EFN, "unknown LEA function code %u at parameter block 0x%04X; the image's "
                    "dsplib_shim.c and the simulator's lea.h disagree", (unsigned)fn, (unsigned)params);
    c.name = FN_NAMES[fn];
    if (!g_costs_set)
        return fail(&c, SIM_LEA_ENOCOSTS, "LEA cost constants not set; call sim_lea_set_costs() with "
                    "sparsenest.compiler.lea_ref.lea_costs(platform) first");
    sim_lea_cost got = {0, 0, 0.0};
    int rc;
    switch (fn) {
    case SIM_LEA_FN_MAC_Q15:        rc = lea_mac(&c, &got); break;
    case SIM_LEA_FN_MATRIX_MPY_Q15: rc = lea_matrix_mpy(&c, &got); break;
    case SIM_LEA_FN_FIR_Q15:        rc = lea_fir(&c, &got); break;
    case SIM_LEA_FN_ADD_Q15:        rc = lea_binary(&c, &got, EW_ADD); break;
    case SIM_LEA_FN_MPY_Q15:        rc = lea_binary(&c, &got, EW_MPY); break;
    case SIM_LEA_FN_OFFSET_Q15:     rc = lea_offset(&c, &got); break;
    case SIM_LEA_FN_MAX_Q15:        rc = lea_max(&c, &got); break;
    case SIM_LEA_FN_FILL_Q15:       rc = lea_fill(&c, &got); break;
    default:                        rc = lea_copy(&c, &got); break;
    }
    if (rc == SIM_LEA_OK)
        *cost = got;
    return rc;
}
