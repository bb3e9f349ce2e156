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
 * sn_infer_start: state = 0, input copied (unless the application sampled into the home itself:
 * in == sn_input_buffer()), done = 0, state = level (the commit). A failure before
 * the last write leaves "none started"; after it, sn_infer_resume finishes the inference at the level
 * stored in the record, whatever sn_set_level committed meanwhile (that applies to the next one).
 *
 * Every activation's home is in FRAM; where the planner found room, the layers run on an SRAM
 * working copy instead (no FRAM wait states, no write hook per element). A unit's outputs are copied
 * home just before its commit (a failure during the copy leaves the unit uncommitted: it runs again
 * and copies the same bytes), and sn_infer_resume first reloads every working copy live at the layer
 * it starts with from its home: after a reboot SRAM holds garbage, and the committed units' outputs
 * are exactly what the homes hold. */
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
    if ((in && sn_copy_input(m, in)) || sn_put_word(&m->progress[1], 0) != SN_OK) {
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

/* Unit `unit` of layer i (per: positions per unit, 0 = the whole layer): its outputs, from the working
 * copy to the home (for a row unit one run of positions per output channel). Non-zero: power failing. */
static int sn_commit_outputs(const sn_model *m, uint16_t i, uint16_t unit, uint16_t per) {
    const sn_layer *l = &m->layers[i];
    const uint16_t k = m->out_mirror[i];
    const sn_mirror *w;
    uint16_t g, p0, p1, r, rows, plane, off;
    if (!k) {
        return 0;
    }
    w = &m->mirrors[k - 1u];
    if (!per) {
        return sn_fram_store(w->home, w->work, 2u * w->len);
    }
    sn_conv_unit_range(l, unit, per, &g, &p0, &p1);
    rows = (uint16_t)(l->out_c / l->groups);
    plane = (uint16_t)(l->out_h * l->out_w);
    off = (uint16_t)((uint16_t)(g * (uint16_t)(rows * plane)) + p0);
    for (r = 0; r < rows; r++, off = (uint16_t)(off + plane)) {
        if (sn_fram_store(w->home + off, w->work + off, 2u * (uint16_t)(p1 - p0))) {
            return 1;
        }
    }
    return 0;
}

/* The working copies live at layer i, reloaded from their homes (SRAM is not kept across a reboot). */
static void sn_reload_working(const sn_model *m, uint16_t i) {
    uint16_t k;
    for (k = 0; k < m->n_mirrors; k++) {
        const sn_mirror *w = &m->mirrors[k];
        if (w->from <= i && i <= w->to) {
            memcpy(w->work, w->home, 2u * w->len);
        }
    }
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
    for (i = 0; i < m->n_layers && done >= m->unit_base[i + 1]; i++) {
    }
    sn_reload_working(m, i);
    for (; i < m->n_layers; i++) {
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
            if (sn_power_lost || sn_commit_outputs(m, i, (uint16_t)(u - first), per) ||
                sn_put_word(&m->progress[1], (uint16_t)(u + 1u)) != SN_OK) {
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
