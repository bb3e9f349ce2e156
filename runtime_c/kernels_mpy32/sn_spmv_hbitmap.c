/* Hierarchical bitmap on the multiplier: the reference kernel's walk (union bitmap row by row, per
 * kept weight the chain of sparser stages down to its introducing level), products through MACS/OP2.
 * Per stage the cursor (next byte, current byte, next bit) sits in one small struct; a zero union byte
 * costs one load and a test. The chain has no multiply, so the sum stays open across it. */
#include "sn_mpy32.h"

typedef struct {
    const uint8_t *next; /* next byte to load */
    uint8_t byte;        /* current byte */
    uint8_t mask;        /* its next bit; 0: load the next byte */
} hb_cursor;

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
