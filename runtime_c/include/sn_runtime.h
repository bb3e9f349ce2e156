/* sparsenest runtime internals: layer descriptors the generated model.c fills in, the board hooks,
 * and the op kernels (one function per op, uniform arguments: descriptor, level).
 *
 * Portability rules (the MCU has a 16-bit int): int16_t/int32_t only, products as (int32_t)a * b,
 * constants as (int32_t)1 << n, no float, no malloc, no libc beyond memcpy/memset.
 */
#ifndef SN_RUNTIME_H
#define SN_RUNTIME_H
#include <stddef.h>
#include <stdint.h>

#include "sn_board.h" /* per board (boards/<board>/sn_board.h): section macros, optional hooks */
#include "sn_counters.h"
#include "sn_formats.h" /* sn_conv_sink_t */
#include "sparsenest.h"

/* The only C library functions the runtime uses (the MSP430 board supplies them; no <string.h> there). */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);

/* Section macros. A board defines those it needs in its sn_board.h; the rest place nothing.
 *   SN_FRAM         read-only model data (weights, indices, metadata, descriptors): lower FRAM
 *                   (plain const data already lands there on the MSP430)
 *   SN_PERSISTENT   writable data that keeps its value across resets and is NOT re-initialised by
 *                   start-up code: the level selector and the staged working copy (loaded once, with
 *                   the image)
 *   SN_FRAM_RW      writable FRAM scratch without initial value (activations spilled from SRAM);
 *                   default: the board's SN_FRAM_NOINIT
 *   SN_SRAM         the SRAM activation arena (uninitialised); default: the board's SN_LEA_RAM, the
 *                   4 KB LEA-shared half of the FR5994's SRAM (the other half holds stack and globals) */
#ifndef SN_FRAM
#define SN_FRAM
#endif
#ifndef SN_PERSISTENT
#define SN_PERSISTENT
#endif
#ifndef SN_FRAM_RW
#ifdef SN_FRAM_NOINIT
#define SN_FRAM_RW SN_FRAM_NOINIT
#else
#define SN_FRAM_RW
#endif
#endif
#ifndef SN_SRAM
#ifdef SN_LEA_RAM
#define SN_SRAM SN_LEA_RAM
#else
#define SN_SRAM
#endif
#endif

/* Weights in far memory (upper FRAM on the MSP430FR5994, beyond 16-bit pointers) are streamed into an
 * SRAM tile with sn_far_read (generated model.c). A board with far memory defines SN_UPPER_CONST,
 * sn_far_addr_t, SN_DEFINE_FAR_ADDR and sn_far_read in its sn_board.h. Elsewhere (the host) far
 * memory is emulated: ordinary memory, and runtime_c/src/sn_far.c copies and counts every read
 * (sn_far_reads, sn_far_bytes).
 *   SN_FRAM_FAR     section of the streamed arrays
 *   SN_FAR_TILE     section of the tile buffer (default: the board's SN_NOINIT SRAM) */
#ifdef SN_UPPER_CONST
#define SN_FRAM_FAR SN_UPPER_CONST
#else
#define SN_FRAM_FAR
typedef uintptr_t sn_far_addr_t;
#define SN_DEFINE_FAR_ADDR(name, sym) static const sn_far_addr_t name = (sn_far_addr_t)(uintptr_t)&(sym)
void sn_far_read(void *dst, sn_far_addr_t src, uint16_t n);
extern uint32_t sn_far_reads, sn_far_bytes;
#endif
/* A far array: SN_FAR_ARRAY(ctype, ".short", name, n, values...). On the MSP430 it is assembly data in
 * .upper.rodata.<name>: clang limits C objects to 32 KB (16-bit size_t) and the code only ever uses
 * the array's far address (SN_DEFINE_FAR_ADDR), never the array. Elsewhere a const C array. */
#define SN_STR_ARGS_(...) #__VA_ARGS__
#define SN_STR_ARGS(...) SN_STR_ARGS_(__VA_ARGS__)
#if defined(SN_UPPER_CONST) && defined(__MSP430__)
#define SN_FAR_ARRAY(ctype, dir, name, n, ...)                                                     \
    __asm__(".pushsection .upper.rodata." #name ",\"a\",@progbits\n\t.balign 2\n\t.type " #name      \
            ",@object\n" #name ":\n\t" dir " " SN_STR_ARGS(__VA_ARGS__) "\n\t.size " #name ", .-" #name \
            "\n\t.popsection")
#else
#define SN_FAR_ARRAY(ctype, dir, name, n, ...) SN_FRAM_FAR static const ctype name[n] = {__VA_ARGS__}
#endif
/* A far array written at run time (a staged working copy streamed from upper FRAM): on the MSP430
 * assembly data in .upper.persistent.<name> (loaded when the device is programmed, never touched by
 * start-up), written only through sn_board_far_write; elsewhere a writable C array. */
#if defined(SN_UPPER_CONST) && defined(__MSP430__)
#define SN_FAR_PERSISTENT_ARRAY(ctype, dir, name, n, ...)                                          \
    __asm__(".pushsection .upper.persistent." #name ",\"aw\",@progbits\n\t.balign 2\n\t.type " #name  \
            ",@object\n" #name ":\n\t" dir " " SN_STR_ARGS(__VA_ARGS__) "\n\t.size " #name ", .-" #name \
            "\n\t.popsection")
#else
#define SN_FAR_PERSISTENT_ARRAY(ctype, dir, name, n, ...) static ctype name[n] = {__VA_ARGS__}
#endif
#ifndef SN_FAR_TILE
#ifdef SN_NOINIT
#define SN_FAR_TILE SN_NOINIT
#else
#define SN_FAR_TILE
#endif
#endif

/* Every runtime write to FRAM data that must survive a reset (selector, staged copy) goes through
 * the board: it returns 0 on success, non-zero when the write did not happen (power failing).
 * runtime_c/src/sn_board_default.c has a weak memcpy default; the host board tracks every call. */
int sn_board_fram_write(void *dst, const void *src, size_t nbytes);
/* The same from far memory (a staged master in upper FRAM); default: sn_far_read (board DMA). */
int sn_board_fram_write_far(void *dst, sn_far_addr_t src, size_t nbytes);
/* The same into far memory (a staged working copy in upper FRAM), from a far or near address
 * (sn_far_addr_t of a near pointer); default: the board's sn_far_copy (DMA), else memcpy. */
int sn_board_far_write(sn_far_addr_t dst, sn_far_addr_t src, size_t nbytes);

/* sn_board_fram_write for runtime data (activations, progress): a failed write sets sn_power_lost,
 * which the intermittent driver checks after each unit of work (runtime_c/src/sn_fram_store.c). */
extern volatile uint8_t sn_power_lost;
int sn_fram_store(void *dst, const void *src, size_t nbytes);

/* sn_layer.out_fram flags */
#define SN_OUT_FRAM 1u
#define SN_PAD_FRAM 2u
#define SN_OUT_ACC 4u   /* direct conv: rows finish in the accumulator (a pointwise conv over its input) */

/* An op's output stores: plain stores when the output is in SRAM; into FRAM, consecutive elements
 * are batched in this small SRAM buffer and written through sn_fram_store, so power-loss injection
 * and the host's write log see every activation byte. */
#define SN_PUT_BATCH 16u
typedef struct {
    int16_t *dst;
    uint8_t fram, n;
    int16_t buf[SN_PUT_BATCH];
} sn_put_t;

static inline void sn_put_init(sn_put_t *w, uint8_t fram) {
    w->dst = 0;
    w->fram = fram;
    w->n = 0;
}

static inline void sn_put_flush(sn_put_t *w) {
    if (w->n) {
        sn_fram_store(w->dst, w->buf, 2u * w->n);
        w->n = 0;
    }
}

static inline void sn_put(sn_put_t *w, int16_t *dst, int16_t v) {
    if (!w->fram) {
        *dst = v;
        return;
    }
    if (w->n && (w->n == SN_PUT_BATCH || dst != w->dst + w->n)) {
        sn_put_flush(w);
    }
    if (!w->n) {
        w->dst = dst;
    }
    w->buf[w->n++] = v;
}

/* Called after each layer when the board counts per layer (host board: -DSN_LAYER_HOOK). */
#ifdef SN_LAYER_HOOK
void sn_board_layer_done(uint16_t layer);
#define SN_LAYER_DONE(i) sn_board_layer_done(i)
#else
#define SN_LAYER_DONE(i) ((void)0)
#endif

enum {
    SN_OP_CONV = 1,    /* conv1d / conv2d (1d: in_h = out_h = kh = 1) */
    SN_OP_LINEAR = 2,
    SN_OP_MAXPOOL = 3,
    SN_OP_AVGPOOL = 4,
    SN_OP_GAVGPOOL = 5, /* global average pool to [C] */
    SN_OP_ADD = 6,
    SN_OP_RELU = 7,    /* stand-alone ReLU (usually fused into conv/linear instead) */
    SN_OP_LEA_LINEAR = 8, /* linear on the LEA engine (runtime_c/kernels_lea/sn_lea_ops.c) */
    SN_OP_LEA_CONV = 9    /* stride-1 convolution on the LEA engine */
};

/* sn_layer.relu: the activation applied to a step's output (a stand-alone relu step: SN_ACT_NONE is a
 * plain ReLU too). */
enum { SN_ACT_NONE = 0, SN_ACT_RELU = 1, SN_ACT_RELU_MAX = 2 };

/* One executed step. Tensors are int16, channel-major ([C][H][W]; 1-D: [C][W] with H = 1). */
typedef struct {
    uint8_t op;
    uint8_t relu;          /* conv/linear/relu: SN_ACT_RELU clamps the (requantized) output at 0,
                            * SN_ACT_RELU_MAX also at relu_max (ReLU6: 6 in the output's Q format) */
    uint8_t out_fram;      /* SN_OUT_FRAM: the output lives in FRAM; SN_PAD_FRAM: so does the padded
                            * copy (both written through sn_board_fram_write) */
    uint8_t groups;        /* conv: groups; matrices matrix .. matrix+groups-1, one per group */
    uint16_t matrix;       /* conv/linear: first matrix id for sn_model_spmv */
    const int16_t *in0;
    const int16_t *in1;    /* add: second input */
    int16_t *out;
    uint16_t in_c, in_h, in_w;
    uint16_t out_c, out_h, out_w;
    uint8_t k_h, k_w, s_h, s_w, p_h, p_w, d_h, d_w;
    int8_t shift0;         /* conv/linear: requantize shift; pools: divide shift; add: shift of in0 */
    int8_t shift1;         /* add: shift of in1 */
    int16_t mul;           /* avg pools: Q15 reciprocal (1 when the window is a power of two) */
    int16_t relu_max;      /* relu == SN_ACT_RELU_MAX: upper clamp of the activation */
    const int32_t *bias;   /* conv/linear: [out_c] */
    int16_t *patch;        /* conv: im2col scratch [in_c/groups * k_h * k_w] */
    int32_t *acc;          /* conv/linear: accumulator scratch [out_c/groups] (direct: x chunk) */
    uint16_t chunk;        /* conv: 0 = im2col; else direct, up to `chunk` output positions per call */
    int16_t *pad;          /* direct conv with padding: zero-padded copy of one group's input
                            * [in_c/groups][in_h + 2 p_h][in_w + 2 p_w]; 0 without padding */
    /* LEA engine layers (SN_OP_LEA_*; compile --engine): layout words, indices, weights, LEA RAM scratch */
    const uint16_t *lea_meta;
    const uint16_t *lea_idx;
    const sn_far_addr_t *lea_w;   /* far address of the weights (upper FRAM on the FR5994): sn_far_read */
    int16_t *lea_ram;
    const int32_t *lea_k;         /* LEA conv: requantisation constant per output channel (lea_plan.py) */
} sn_layer;

/* Staged switching: one array whose rows are copied from master to work by level segments. The
 * master is near (master) or in far memory (master_far: the address of its far address; 0 when
 * near), read only by switches, which fill the near working copy from it with
 * sn_board_fram_write_far (DMA on the MSP430FR5994). A working copy in far memory (work_far, work 0:
 * a matrix streamed from upper FRAM) is filled with sn_board_far_write (DMA to a 20-bit address). */
typedef struct {
    const uint8_t *master;
    const sn_far_addr_t *master_far;
    uint8_t *work;
    const void *seg;       /* [rows][n_levels + 1] byte offsets: uint16_t, or uint32_t if seg_u32 */
    uint8_t seg_u32;
    uint16_t rows;
    const sn_far_addr_t *work_far;
} sn_staged_array;

/* Intermittent builds: an activation's SRAM working copy, which the layers read and write, and its
 * FRAM home, which survives a power failure (runtime_c/src/sn_intermittent.c). */
typedef struct {
    int16_t *work;
    int16_t *home;
    uint16_t len;          /* int16 elements */
    uint16_t from, to;     /* layers it is live across: its writer (0 for the input) .. its last reader */
} sn_mirror;

typedef struct {
    uint8_t n_levels;
    uint8_t switching;     /* SN_SWITCH_RESIDENT / SN_SWITCH_STAGED */
    int8_t input_exp, output_exp;
    uint16_t n_layers;
    const sn_layer *layers;
    int16_t *input;        /* the planned buffer sn_infer copies the input into */
    const int16_t *output;
    uint16_t input_len, output_len;
    uint16_t *level_word;  /* SN_PERSISTENT selector: SN_SELECTOR_WORD(level, held) */
    uint16_t n_staged;
    const sn_staged_array *staged;
    const uint32_t *level_nnz;
    uint32_t const_bytes, work_bytes, sram_arena_bytes, fram_arena_bytes;
    uint8_t input_fram;    /* the input buffer is in FRAM (written through sn_board_fram_write) */
    /* Intermittent builds (compile --intermittent; 0 otherwise): progress record and work units. */
    uint16_t *progress;          /* SN_PERSISTENT [2]: state (SN_LEVEL_WORD of the running inference's
                                  * level, 0 = none started), units committed */
    const uint16_t *unit_base;   /* [n_layers + 1]: layer i runs units unit_base[i] .. unit_base[i+1]-1 */
    const uint16_t *unit_pos;    /* [n_layers]: output positions per unit (0: the whole layer is one) */
    const sn_mirror *mirrors;    /* [n_mirrors] SRAM working copies */
    uint16_t n_mirrors;
    const uint16_t *out_mirror;  /* [n_layers]: 1 + index of the layer output's mirror, 0: written home */
} sn_model;

/* Generated (model.c). */
extern const sn_model sn_the_model;
void sn_model_spmv(uint16_t matrix, uint8_t level, const int16_t *x, int32_t *acc);
/* Direct convolutions: sn_conv_<format> of the matrix (see sn_formats.h; sink NULL: acc += sums). */
void sn_model_conv(uint16_t matrix, uint8_t level, const int16_t *x, uint16_t n_pos, uint16_t x_step,
                   int32_t *acc, const sn_conv_sink_t *sink);

#define SN_LEVEL_WORD(l) ((uint16_t)((uint16_t)(l) | (uint16_t)((uint16_t)(~(l) & 0xffu) << 8)))

/* The level selector (sn_level.c): low byte the committed level, high byte the densest level the
 * staged working copy holds (>= level; n_levels when resident), each in bits 0-4 under the check
 * pattern 0b101 in bits 5-7, so a stray word (erased 0xFFFF, zero) is recognised and decoding is a
 * mask and a byte swap on the 16-bit CPU. One word, so level and held commit together.
 * compiler/codegen.py's selector_word() is its twin for the initial value. */
#define SN_SELECTOR_CHECK 0xA0A0u
#define SN_SELECTOR_WORD(l, h) ((uint16_t)((uint16_t)(l) | (uint16_t)((uint16_t)(h) << 8) | SN_SELECTOR_CHECK))

/* Graph execution helpers shared by sn_graph.c and sn_intermittent.c. */
typedef void (*sn_op_fn)(const sn_layer *, uint8_t);
sn_op_fn sn_op_for(uint8_t op);
int sn_copy_input(const sn_model *m, const int16_t *in);

/* Op kernels: uniform signature (descriptor, level) so a back-end can replace one by name. */
void sn_op_conv(const sn_layer *l, uint8_t level);
void sn_op_linear(const sn_layer *l, uint8_t level);
void sn_op_maxpool(const sn_layer *l, uint8_t level);
void sn_op_avgpool(const sn_layer *l, uint8_t level);
void sn_op_global_avgpool(const sn_layer *l, uint8_t level);
void sn_op_add(const sn_layer *l, uint8_t level);
void sn_op_relu(const sn_layer *l, uint8_t level);
void sn_op_lea_linear(const sn_layer *l, uint8_t level); /* runtime_c/kernels_lea/sn_lea_ops.c */
void sn_op_lea_conv(const sn_layer *l, uint8_t level);
extern uint16_t sn_lea_errors; /* DSPLib calls that failed (a compiler bug: 0 in every correct build) */
/* One unit of a convolution (intermittent builds): group g's output positions [unit*unit_pos mod plane
 * ...) (see sn_op_conv.c); fresh: the layer's padded copy must be (re)made first. */
void sn_op_conv_unit(const sn_layer *l, uint8_t level, uint16_t unit, uint16_t unit_pos, uint8_t fresh);

/* Units of unit_pos consecutive output positions, group-major: unit u covers group *g's positions
 * [*p0, *p1) (sn_op_conv_unit runs them, sn_infer_resume commits them). */
static inline void sn_conv_unit_range(const sn_layer *l, uint16_t unit, uint16_t unit_pos, uint16_t *g,
                                      uint16_t *p0, uint16_t *p1) {
    const uint16_t plane = (uint16_t)(l->out_h * l->out_w);
    const uint16_t per_group = (uint16_t)((plane + unit_pos - 1u) / unit_pos);
    *g = (uint16_t)(unit / per_group);
    *p0 = (uint16_t)((uint16_t)(unit - (uint16_t)(*g * per_group)) * unit_pos);
    *p1 = (uint16_t)(plane - *p0) < unit_pos ? plane : (uint16_t)(*p0 + unit_pos);
}

/* Arithmetic helpers shared by the ops (documented in compiler/golden.py). */
static inline int16_t sn_sat16(int32_t v) {
    return (int16_t)(v > 32767 ? 32767 : (v < -32768 ? -32768 : v));
}

/* Rounding arithmetic shift: s > 0 right with round half up, computed as ((v >> (s-1)) + 1) >> 1 so
 * it cannot overflow; s <= 0 left (callers keep |v| << -s inside int32). s must be <= 32. */
static inline int32_t sn_rshift_round(int32_t v, int8_t s) {
    if (s > 0) {
        return ((v >> (s - 1)) + 1) >> 1;
    }
    return v * ((int32_t)1 << (-s));
}

/* (int16_t)(t >> s) for s in 1..15 when the shifted value fits int16; m = 2^(16 - s). A board may
 * supply a faster sn_board_shr_fit16 (SN_BOARD_SHR_FIT16: the MSP430 uses its multiplier, where a
 * variable 32-bit shift is a helper call). */
static inline int16_t sn_shr_fit16(int32_t t, int8_t s, uint16_t m) {
#ifdef SN_BOARD_SHR_FIT16
    (void)s;
    return sn_board_shr_fit16(t, m);
#else
    (void)m;
    return (int16_t)(t >> s);
#endif
}

/* int32 accumulator -> int16 at the output exponent (shift s = e_w + e_x - e_y, in [-16, 32]). */
static inline int16_t sn_requantize(int32_t acc, int8_t s) {
    if (s > 0) {
        return sn_sat16(((acc >> (s - 1)) + 1) >> 1);
    }
    if (s == 0) {
        return sn_sat16(acc);
    }
    return sn_sat16((int32_t)sn_sat16(acc) * ((int32_t)1 << (-s > 16 ? 16 : -s)));
}

#endif
