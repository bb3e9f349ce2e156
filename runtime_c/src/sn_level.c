/* Level selection and switching.
 *
 * The committed level is one 16-bit word in persistent FRAM, level | (~level & 0xff) << 8, so a
 * stray value is recognised. A switch writes data first, then that word (one atomic word write):
 *   resident: every level is in FRAM already; the switch writes only the selector.
 *   staged:   the kernels read a working copy whose rows hold, invariantly, the master's bytes
 *             [seg[r][0], seg[r][level]) of every segmented array. Going denser (a -> b) copies
 *             exactly [seg[r][a], seg[r][b]) per row: bytes level a never reads, so a power loss
 *             before the selector write leaves level a intact. Going sparser writes only the selector.
 *             No byte of a weight shared by the two levels is ever written. */
#include "sn_runtime.h"

static uint32_t sn_seg(const sn_staged_array *a, uint16_t row, uint8_t k, uint8_t n_levels) {
    uint32_t i = (uint32_t)row * (uint32_t)(n_levels + 1u) + k;
    return a->seg_u32 ? ((const uint32_t *)a->seg)[i] : ((const uint16_t *)a->seg)[i];
}

uint8_t sn_get_level(void) {
    const sn_model *m = &sn_the_model;
    uint16_t w = *(volatile const uint16_t *)m->level_word;
    uint8_t level = (uint8_t)(w & 0xffu);
    if ((uint8_t)(w >> 8) != (uint8_t)(~level & 0xffu) || level < 1 || level > m->n_levels) {
        return 0;
    }
    return level;
}

int sn_init(void) {
    /* Nothing to redo: data is always written before the selector, so the selector names a level
     * whose bytes are complete. Only check that it is valid. */
    return sn_get_level() ? SN_OK : SN_ERR_STATE;
}

static int sn_stage_up(const sn_model *m, uint8_t from, uint8_t to) {
    uint16_t a, r;
    for (a = 0; a < m->n_staged; a++) {
        const sn_staged_array *s = &m->staged[a];
        for (r = 0; r < s->rows; r++) {
            uint32_t lo = sn_seg(s, r, from, m->n_levels);
            uint32_t hi = sn_seg(s, r, to, m->n_levels);
            SN_COUNT(weight_bytes_read, s->seg_u32 ? 8u : 4u); /* the two segment offsets */
            if (hi > lo) {
                SN_COUNT(weight_bytes_read, hi - lo);
                if (sn_board_fram_write(s->work + lo, s->master + lo, (size_t)(hi - lo))) {
                    return SN_ERR_POWER;
                }
            }
        }
    }
    return SN_OK;
}

int sn_set_level(uint8_t level) {
    const sn_model *m = &sn_the_model;
    uint8_t cur = sn_get_level();
    uint16_t word;
    if (level < 1 || level > m->n_levels) {
        return SN_ERR_LEVEL;
    }
    if (cur == 0) {
        return SN_ERR_STATE;
    }
    if (level == cur) {
        return SN_OK;
    }
    if (m->switching == SN_SWITCH_STAGED && level > cur) {
        int rc = sn_stage_up(m, cur, level);
        if (rc != SN_OK) {
            return rc;
        }
    }
    word = SN_LEVEL_WORD(level);
    if (sn_board_fram_write(m->level_word, &word, sizeof word)) {
        return SN_ERR_POWER;
    }
    return SN_OK;
}
