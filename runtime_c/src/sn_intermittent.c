/* Intermittent inference: progress kept in FRAM so an inference survives power failures and every
 * unit of work is committed exactly once.
 *
 * The compiler (compile --intermittent) places the input and every activation in FRAM, with no
 * in-place op, and numbers the work in units: a whole layer, or for long convolutions a block of
 * output positions of one group (sn_op_conv_unit). A unit reads only tensors that no later unit
 * overwrites before the reading layer has finished (the planner's lifetimes), accumulates in SRAM
 * from the bias, and writes its own outputs in full, so re-running it after a failure writes the
 * same bytes: nothing is added twice, and a half-written output is never read because the unit is
 * committed only after all its writes.
 *
 * The progress record is two 16-bit words in SN_PERSISTENT FRAM, each written atomically:
 *   state  SN_LEVEL_WORD(level) of the running inference, 0 when none has been started
 *   done   units committed (the commit of unit u writes u + 1)
 * sn_infer_start: state = 0, input copied, done = 0, state = level (the commit). A failure before
 * the last write leaves "none started"; after it, sn_infer_resume finishes the inference at the level
 * stored in the record, whatever sn_set_level committed meanwhile (that applies to the next one). */
#include "sn_runtime.h"

static uint16_t sn_total_units(const sn_model *m) {
    return m->unit_base[m->n_layers];
}

static uint8_t sn_record_level(const sn_model *m) {
    uint16_t w = m->progress[0];
    uint8_t level = (uint8_t)(w & 0xffu);
    if (w != SN_LEVEL_WORD(level) || level < 1 || level > m->n_levels) {
        return 0;
    }
    return level;
}

static int sn_put_word(uint16_t *dst, uint16_t v) {
    return sn_fram_store(dst, &v, sizeof v) ? SN_ERR_POWER : SN_OK;
}

int sn_infer_start(const int16_t *in) {
    const sn_model *m = &sn_the_model;
    uint8_t level = sn_get_level();
    if (!m->progress) {
        return SN_ERR_STATE;
    }
    if (level == 0) {
        return SN_ERR_STATE;
    }
    sn_power_lost = 0;
    if (m->progress[0] != 0 && sn_put_word(&m->progress[0], 0) != SN_OK) {
        return SN_ERR_POWER;
    }
    if (sn_copy_input(m, in) || sn_put_word(&m->progress[1], 0) != SN_OK) {
        return SN_ERR_POWER;
    }
    return sn_put_word(&m->progress[0], SN_LEVEL_WORD(level));
}

int sn_infer_pending(void) {
    const sn_model *m = &sn_the_model;
    if (!m->progress || !sn_record_level(m)) {
        return 0;
    }
    return m->progress[1] < sn_total_units(m);
}

int sn_infer_resume(void) {
    const sn_model *m = &sn_the_model;
    uint8_t level;
    uint16_t i, done;
    if (!m->progress || (level = sn_record_level(m)) == 0) {
        return SN_ERR_STATE;
    }
    done = m->progress[1];
    if (done > sn_total_units(m)) {
        return SN_ERR_STATE;
    }
    sn_power_lost = 0;
    for (i = 0; i < m->n_layers; i++) {
        const sn_layer *l = &m->layers[i];
        const uint16_t first = m->unit_base[i], end = m->unit_base[i + 1];
        const uint16_t per = m->unit_pos[i];
        sn_op_fn fn;
        uint16_t u;
        if (done >= end) {
            continue;
        }
        fn = sn_op_for(l->op);
        if (!fn || (per && l->op != SN_OP_CONV)) {
            return SN_ERR_STATE;
        }
        for (u = done > first ? done : first; u < end; u++) {
            if (per) {
                /* fresh: the first unit run in this call may follow a reboot (SRAM scratch lost) */
                sn_op_conv_unit(l, level, (uint16_t)(u - first), per, (uint8_t)(u == done));
            } else {
                fn(l, level);
            }
            if (sn_power_lost || sn_put_word(&m->progress[1], (uint16_t)(u + 1u)) != SN_OK) {
                return SN_ERR_POWER;
            }
        }
        done = end;
        SN_LAYER_DONE(i);
    }
    return SN_OK;
}

int sn_infer_done(int16_t *out) {
    const sn_model *m = &sn_the_model;
    if (!m->progress || !sn_record_level(m)) {
        return SN_ERR_STATE;
    }
    if (m->progress[1] != sn_total_units(m)) {
        return 0;
    }
    memcpy(out, m->output, 2u * m->output_len);
    SN_COUNT(act_bytes_read, 2u * m->output_len);
    return 1;
}
