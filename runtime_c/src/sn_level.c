/* Level selection and switching.
 *
 * The selector is one 16-bit word in persistent FRAM (SN_SELECTOR_WORD): the committed level, the
 * densest level the staged working copy holds ("held", >= level; n_levels when resident) and a check
 * field, so a stray value is recognised. A switch writes data first, then that word (one atomic word
 * write), so level and held always change together:
 *   resident: every level is in FRAM already; the switch writes only the selector.
 *   staged:   the kernels read a working copy whose rows hold, invariantly, the master's bytes
 *             [seg[r][0], seg[r][held]) of every segmented array (level k reads the prefix up to
 *             seg[r][k], so the bytes above it do not matter). Going to b <= held writes only the
 *             selector: 3 -> 1 -> 3 copies nothing. Going to b > held copies exactly
 *             [seg[r][held], seg[r][b]) per row, bytes no level <= held reads, so a power loss before
 *             the selector write leaves the old level and held intact. No byte of a weight shared by
 *             the two levels is ever written, and only master bytes ever are. The copy is in lower
 *             FRAM, or in upper FRAM for a matrix streamed from there (filled by DMA to a far address). */
#include "sn_runtime.h"

/* The word, decoded and checked: 0 when it holds no valid (level, held) of this model. */
static uint16_t sn_selector(uint8_t *held) {
    const sn_model *m = &sn_the_model;
    uint16_t w = *(volatile const uint16_t *)m->level_word;
    uint8_t level = (uint8_t)(w & 0x1fu);
    uint8_t h = (uint8_t)((w >> 8) & 0x1fu);
    if ((w & 0xE0E0u) != SN_SELECTOR_CHECK || level < 1 || h < level || h > m->n_levels) {
        return 0;
    }
    *held = h;
    return level;
}

uint8_t sn_get_level(void) {
    uint8_t held;
    return (uint8_t)sn_selector(&held);
}

uint8_t sn_get_held_level(void) {
    uint8_t held = 0;
    return sn_selector(&held) ? held : 0;
}

int sn_init(void) {
    /* Nothing to redo: data is always written before the selector, so the selector names a level
     * (and a held level) whose bytes are complete. Only check that it is valid. */
    return sn_get_level() ? SN_OK : SN_ERR_STATE;
}

/* Per row the segment table row seg[r][0..L] is walked with a pointer (no row * (L + 1) multiply,
 * a helper call on the 16-bit MCU); the copy goes through the board's FRAM write, whose memcpy moves
 * words when master and working copy have the same alignment (codegen aligns both to 2). */
static inline int sn_stage_copy(const sn_staged_array *s, uint32_t lo, uint32_t n) {
    if (s->master_far) {
        return sn_board_fram_write_far(s->work + lo, *s->master_far + lo, (size_t)n);
    }
    return sn_board_fram_write(s->work + lo, s->master + lo, (size_t)n);
}

/* A working copy in upper FRAM (its matrix streams from there): each row's bytes go by DMA to a far
 * address. Its own loop, so the near copies' row loop below stays as tight as it was. */
__attribute__((noinline)) static int sn_stage_up_far(const sn_staged_array *s, uint8_t from, uint8_t to,
                                                     uint16_t stride) {
    sn_far_addr_t src = s->master_far ? *s->master_far : (sn_far_addr_t)(uintptr_t)s->master;
    sn_far_addr_t dst = *s->work_far;
    const uint16_t *seg16 = (const uint16_t *)s->seg;
    const uint32_t *seg32 = (const uint32_t *)s->seg;
    uint16_t r;
    for (r = 0; r < s->rows; r++, seg16 += stride, seg32 += stride) {
        uint32_t lo = s->seg_u32 ? seg32[from] : seg16[from];
        uint32_t hi = s->seg_u32 ? seg32[to] : seg16[to];
        SN_COUNT(weight_bytes_read, s->seg_u32 ? 8u : 4u);
        if (hi > lo) {
            SN_COUNT(weight_bytes_read, hi - lo);
            if (sn_board_far_write(dst + lo, src + lo, (size_t)(hi - lo))) {
                return SN_ERR_POWER;
            }
        }
    }
    return SN_OK;
}

/* Not inlined: the selector-only switch keeps a small prologue. */
__attribute__((noinline)) static int sn_stage_up(const sn_model *m, uint8_t from, uint8_t to) {
    uint16_t a, r;
    uint16_t stride = (uint16_t)(m->n_levels + 1u);
    for (a = 0; a < m->n_staged; a++) {
        const sn_staged_array *s = &m->staged[a];
        if (s->work_far) {
            if (sn_stage_up_far(s, from, to, stride)) {
                return SN_ERR_POWER;
            }
        } else if (s->seg_u32) {
            const uint32_t *seg = (const uint32_t *)s->seg;
            for (r = 0; r < s->rows; r++, seg += stride) {
                uint32_t lo = seg[from], hi = seg[to];
                SN_COUNT(weight_bytes_read, 8u); /* the two segment offsets */
                if (hi > lo) {
                    SN_COUNT(weight_bytes_read, hi - lo);
                    if (sn_stage_copy(s, lo, hi - lo)) {
                        return SN_ERR_POWER;
                    }
                }
            }
        } else {
            const uint16_t *seg = (const uint16_t *)s->seg;
            for (r = 0; r < s->rows; r++, seg += stride) {
                uint16_t lo = seg[from], hi = seg[to];
                SN_COUNT(weight_bytes_read, 4u);
                if (hi > lo) {
                    SN_COUNT(weight_bytes_read, (uint32_t)(hi - lo));
                    if (sn_stage_copy(s, lo, hi - lo)) {
                        return SN_ERR_POWER;
                    }
                }
            }
        }
    }
    return SN_OK;
}

int sn_set_level(uint8_t level) {
    const sn_model *m = &sn_the_model;
    uint8_t held = 0;
    uint8_t cur = (uint8_t)sn_selector(&held);
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
    if (m->switching == SN_SWITCH_STAGED && level > held) {
        int rc = sn_stage_up(m, held, level);
        if (rc != SN_OK) {
            return rc;
        }
        held = level;
    }
    word = SN_SELECTOR_WORD(level, held);
    if (sn_board_fram_write(m->level_word, &word, sizeof word)) {
        return SN_ERR_POWER;
    }
    return SN_OK;
}
