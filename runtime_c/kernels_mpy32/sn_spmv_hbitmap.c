/* Hierarchical bitmap on the multiplier: the reference kernel's walk (union bitmap row by row, per
 * kept weight the chain of sparser stages down to its introducing level), products through MACS/OP2.
 * Three levels (the common case) run a row at a time in assembly with every cursor in a register; a
 * zero union byte costs one load and a test (measured, our FR5994 simulator: LeNet-5's fc1 at level 1,
 * 2,757 products over a union of 21,298 weights, 0.80 Mcycles, about 37 cycles per union weight). Other level counts run a C loop with one cursor struct per stage. The chain has no
 * multiply, so the sum stays open across it. */
#include "sn_mpy32.h"

typedef struct {
    const uint8_t *next; /* next byte to load */
    uint8_t byte;        /* current byte */
    uint8_t mask;        /* its next bit; 0: load the next byte */
} hb_cursor;

/* Next bit of a stage stream held as byte | 0x100 shifted right: 1 (the marker alone) means empty. */
#define HB_BIT(buf, p, bit)           \
    do {                              \
        if ((buf) == 1u)              \
            (buf) = (uint16_t)(*(p)++ | 0x100u); \
        (bit) = (uint16_t)((buf) & 1u); \
        (buf) >>= 1;                  \
    } while (0)

#if SN_MPY32_ASM
/* Three levels: the cursors of one call, kept in registers inside a row (sn_mpy32_hb3_row). */
typedef struct {
    const uint8_t *p2; /* stage 2: next byte */
    uint16_t b2;       /* stage 2: bits left, above them a marker bit (1: empty) */
    const uint8_t *p1; /* stage 1 */
    uint16_t b1;
    const int16_t *v1, *v2, *v3; /* next value introduced at level 1, 2, 3 */
    uint16_t level;
} hb3_state;

/* void sn_mpy32_hb3_row(hb3_state *s, const int16_t *x, const uint8_t *top, uint16_t nbytes)
 * RESHI:RESLO += the products of one row at s->level: per set bit of the row's union bytes top[0..nbytes)
 * one stage-2 bit, and when that is set one stage-1 bit, pick the value stream. Interrupts masked and
 * the sum cleared by the caller. Registers: r12 union bytes, r13 x at the column, r14 bytes left,
 * r15 the byte being shifted, r10/r11 stage 2 (next byte, bits), r8/r9 stage 1, r7/r6/r5 v1/v2/v3,
 * r4 the level. A stage's bits sit above a marker bit: `rra` gives the next bit in C, and a zero
 * result means the marker went out (empty: load the next byte and shift again). */
#define HB_MAC(vreg) SN_MACS_POSTINC(vreg) "mov @r13, " SN_OP2_STR "\n\t"
__asm__(".section .text.sn_mpy32_hb3_row,\"ax\",@progbits\n\t"
        ".globl sn_mpy32_hb3_row\n\t"
        ".type sn_mpy32_hb3_row,@function\n\t"
        ".p2align 1\n"
        "sn_mpy32_hb3_row:\n\t"
        "push r4\n\tpush r5\n\tpush r6\n\tpush r7\n\tpush r8\n\tpush r9\n\tpush r10\n\t"
        "push r12\n\t"
        "mov 0(r12), r10\n\tmov 2(r12), r11\n\tmov 4(r12), r8\n\tmov 6(r12), r9\n\t"
        "mov 8(r12), r7\n\tmov 10(r12), r6\n\tmov 12(r12), r5\n\tmov 14(r12), r4\n\t"
        "mov r14, r12\n\t"
        "mov r15, r14\n\t"
        "tst r14\n\t"
        "jz .Lhb3_done\n"
        ".Lhb3_byte:\n\t"
        "mov.b @r12+, r15\n\t"
        "tst r15\n\t"
        "jz .Lhb3_zero\n\t"
        "push r13\n"
        ".Lhb3_bit:\n\t"
        "rra r15\n\t"
        "jnc .Lhb3_next\n\t"
        "rra r11\n\t"
        "jnz .Lhb3_s2\n\t"
        "mov.b @r10+, r11\n\t"
        "bis #256, r11\n\t"
        "rra r11\n"
        ".Lhb3_s2:\n\t"
        "jc .Lhb3_in2\n\t"
        "cmp #3, r4\n\t"
        "jlo .Lhb3_next\n\t"
        HB_MAC(5)
        "jmp .Lhb3_next\n"
        ".Lhb3_in2:\n\t"
        "rra r9\n\t"
        "jnz .Lhb3_s1\n\t"
        "mov.b @r8+, r9\n\t"
        "bis #256, r9\n\t"
        "rra r9\n"
        ".Lhb3_s1:\n\t"
        "jc .Lhb3_in1\n\t"
        "cmp #2, r4\n\t"
        "jlo .Lhb3_next\n\t"
        HB_MAC(6)
        "jmp .Lhb3_next\n"
        ".Lhb3_in1:\n\t"
        HB_MAC(7)
        ".Lhb3_next:\n\t"
        "incd r13\n\t"
        "tst r15\n\t"
        "jnz .Lhb3_bit\n\t"
        "pop r13\n"
        ".Lhb3_zero:\n\t"
        "add #16, r13\n\t"
        "dec r14\n\t"
        "jnz .Lhb3_byte\n"
        ".Lhb3_done:\n\t"
        "pop r12\n\t"
        "mov r10, 0(r12)\n\tmov r11, 2(r12)\n\tmov r8, 4(r12)\n\tmov r9, 6(r12)\n\t"
        "mov r7, 8(r12)\n\tmov r6, 10(r12)\n\tmov r5, 12(r12)\n\t"
        "pop r10\n\tpop r9\n\tpop r8\n\tpop r7\n\tpop r6\n\tpop r5\n\tpop r4\n\t"
        "ret\n\t"
        ".size sn_mpy32_hb3_row, .-sn_mpy32_hb3_row\n\t"
        ".text");
#undef HB_MAC

void sn_mpy32_hb3_row(hb3_state *s, const int16_t *x, const uint8_t *top, uint16_t nbytes);

static void hb_spmv3(const sn_hbitmap_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const uint16_t row_bytes = (uint16_t)((m->cols + 7u) / 8u);
    const uint8_t *top = m->bitmap;
    hb3_state st;
    sn_sum_t sum;

    st.p2 = m->bitmap + m->stage_off[1];
    st.b2 = 1;
    st.p1 = m->bitmap + m->stage_off[0];
    st.b1 = 1;
    st.v1 = m->values;
    st.v2 = m->values + m->level_start[1];
    st.v3 = m->values + (level >= 3u ? m->level_start[2] : 0u);
    st.level = level;
    sn_sum_open(&sum);
    for (uint16_t r = 0; r < m->rows; r++, top += row_bytes) {
        sn_sum_clear(&sum);
        sn_mpy32_hb3_row(&st, x, top, row_bytes);
        acc[r] = sn_add32(acc[r], sn_sum_get(&sum));
    }
    sn_sum_close(&sum);
}
#else
/* Three levels (the common case): every cursor in a register, one copy of the loop per level (LEVEL
 * is a constant after inlining, so the tests of it disappear). Returns the products computed. */
static inline __attribute__((always_inline)) uint16_t hb_rows3(const sn_hbitmap_matrix *m, const int16_t *x,
                                                               int32_t *acc, const uint8_t level)
{
    const uint16_t row_bytes = (uint16_t)((m->cols + 7u) / 8u);
    const uint8_t *top = m->bitmap;
    const uint8_t *p2 = m->bitmap + m->stage_off[1];
    const uint8_t *p1 = m->bitmap + m->stage_off[0];
    const int16_t *v1 = m->values;
    const int16_t *v2 = m->values + m->level_start[1];
    const int16_t *v3 = m->values + (level >= 3u ? m->level_start[2] : 0u);
    uint16_t b2 = 1, b1 = 1;
    sn_sum_t sum;

    sn_sum_open(&sum);
    for (uint16_t r = 0; r < m->rows; r++) {
        sn_sum_clear(&sum);
        for (uint16_t i = 0; i < row_bytes; i++) {
            uint16_t b = *top++;
            const int16_t *xc = x + (uint16_t)(i * 8u);

            for (; b != 0; b >>= 1, xc++) {
                uint16_t bit;

                if (!(b & 1u))
                    continue;
                HB_BIT(b2, p2, bit);
                if (!bit) { /* introduced at level 3 */
                    if (level >= 3u)
                        sn_sum_mac(&sum, *v3++, *xc);
                    continue;
                }
                HB_BIT(b1, p1, bit);
                if (bit)
                    sn_sum_mac(&sum, *v1++, *xc);
                else if (level >= 2u)
                    sn_sum_mac(&sum, *v2++, *xc);
            }
        }
        acc[r] = sn_add32(acc[r], sn_sum_get(&sum));
    }
    sn_sum_close(&sum);
    SN_COUNT(weight_bytes_read, 4u + 2u * (uint32_t)level + (uint32_t)m->rows * row_bytes);
    SN_COUNT(weight_bytes_read, (uint32_t)(p2 - (m->bitmap + m->stage_off[1])) +
                                    (uint32_t)(p1 - (m->bitmap + m->stage_off[0])));
    return (uint16_t)((v1 - m->values) + (level >= 2u ? v2 - (m->values + m->level_start[1]) : 0) +
                      (level >= 3u ? v3 - (m->values + m->level_start[2]) : 0));
}

static void hb_spmv3(const sn_hbitmap_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    uint16_t macs = level == 1u ? hb_rows3(m, x, acc, 1) : level == 2u ? hb_rows3(m, x, acc, 2)
                                                                       : hb_rows3(m, x, acc, 3);

    SN_COUNT(macs, macs);
    SN_COUNT(weight_bytes_read, 2u * (uint32_t)macs);
    (void)macs;
}
#endif

void sn_spmv_hbitmap(const sn_hbitmap_matrix *m, uint8_t level, const int16_t *x, int32_t *acc)
{
    const uint16_t row_bytes = (uint16_t)((m->cols + 7u) / 8u);
    const uint8_t n_levels = m->n_levels;
    const uint8_t *top = m->bitmap;              /* stage n_levels: the union, row by row */
    hb_cursor stage[SN_HBITMAP_MAX_LEVELS];      /* stage t at [t - 1] */
    const int16_t *v[SN_HBITMAP_MAX_LEVELS];     /* level j's next value at [j - 1] */
    uint16_t r;
    uint8_t t;
    sn_sum_t sum;

    if (level == 0)
        return;
    if (level > n_levels)
        level = n_levels;
    if (n_levels == 3u) {
        hb_spmv3(m, level, x, acc);
        return;
    }
    for (t = 0; t + 1u < n_levels; t++) {
        stage[t].next = m->bitmap + m->stage_off[t];
        stage[t].byte = 0;
        stage[t].mask = 0;
    }
    for (t = 0; t < level; t++)
        v[t] = m->values + m->level_start[t];
    sn_sum_open(&sum);
    for (r = 0; r < m->rows; r++) {
        sn_sum_clear(&sum);
        for (uint16_t i = 0; i < row_bytes; i++) {
            uint8_t b = *top++;
            const int16_t *xc = x + (uint16_t)(i * 8u);

            for (; b != 0; b >>= 1, xc++) {
                hb_cursor *c = stage + (n_levels - 1u); /* one past stage n_levels - 1 */
                uint8_t j = n_levels;

                if (!(b & 1u))
                    continue;
                while (j > 1u) {
                    uint8_t bit;

                    c--;
                    if (c->mask == 0) {
                        c->byte = *c->next++;
                        c->mask = 1;
                    }
                    bit = c->byte & c->mask;
                    c->mask = (uint8_t)(c->mask << 1);
                    if (!bit)
                        break;
                    j--;
                }
                if (j <= level)
                    sn_sum_mac(&sum, *v[j - 1u]++, *xc);
            }
        }
        acc[r] = sn_add32(acc[r], sn_sum_get(&sum));
    }
    sn_sum_close(&sum);
    SN_COUNT(weight_bytes_read, 2u * (uint32_t)(n_levels - 1u) + 2u * (uint32_t)level);
    SN_COUNT(weight_bytes_read, (uint32_t)m->rows * row_bytes);
    for (t = 0; t + 1u < n_levels; t++)
        SN_COUNT(weight_bytes_read, stage[t].next - (m->bitmap + m->stage_off[t]));
    for (t = 0; t < level; t++) {
        SN_COUNT(macs, v[t] - (m->values + m->level_start[t]));
        SN_COUNT(weight_bytes_read, 2u * (uint32_t)(v[t] - (m->values + m->level_start[t])));
    }
}

/* Direct convolution (sn_conv_direct.h): the row's entries decoded once per call, run on every window. */
#include "sn_conv_direct.h"

SN_CONV_DEFINE(hbitmap, sn_conv_hbitmap_impl(m, off, level, x, n_pos, x_step, acc, sink))
