/* Graph execution: copy the input into its planned buffer, run the layer table in order, copy the
 * output out. Every buffer address is fixed at compile time (compiler/planner.py). */
#include "model.h" /* SN_MODEL_LEA_LAYERS, SN_MODEL_INTERMITTENT */
#include "sn_runtime.h"

sn_op_fn sn_op_for(uint8_t op) {
    switch (op) {
    case SN_OP_CONV: return sn_op_conv;
    case SN_OP_LINEAR: return sn_op_linear;
    case SN_OP_MAXPOOL: return sn_op_maxpool;
    case SN_OP_AVGPOOL: return sn_op_avgpool;
    case SN_OP_GAVGPOOL: return sn_op_global_avgpool;
    case SN_OP_ADD: return sn_op_add;
    case SN_OP_RELU: return sn_op_relu;
#if SN_MODEL_LEA_LAYERS
    case SN_OP_LEA_LINEAR: return sn_op_lea_linear;
    case SN_OP_LEA_CONV: return sn_op_lea_conv;
#endif
    default: return 0;
    }
}

/* The input into its planned buffer (through the FRAM write hook when it lives in FRAM); nothing to
 * copy when the caller wrote it there (sn_input_buffer: the FR5994 app's DMA from upper FRAM). */
int sn_copy_input(const sn_model *m, const int16_t *in) {
    SN_COUNT(act_bytes_written, 2u * m->input_len);
    if (in == m->input) {
        return 0;
    }
    if (m->input_fram) {
        return sn_fram_store(m->input, in, 2u * m->input_len);
    }
    memcpy(m->input, in, 2u * m->input_len);
    return 0;
}

int sn_infer(const int16_t *in, int16_t *out) {
    const sn_model *m = &sn_the_model;
    uint8_t level = sn_get_level();
    uint16_t i;
    if (level == 0) {
        return SN_ERR_STATE;
    }
#if !defined(SN_MODEL_INTERMITTENT) || SN_MODEL_INTERMITTENT /* else not linked: 1 KB of lower FRAM */
    if (m->progress) { /* intermittent build: the same work, committed unit by unit */
        int rc = sn_infer_start(in);
        if (rc == SN_OK) {
            rc = sn_infer_resume();
        }
        if (rc == SN_OK && sn_infer_done(out) != 1) {
            rc = SN_ERR_STATE;
        }
        return rc;
    }
#endif
    sn_power_lost = 0;
    sn_copy_input(m, in);
    for (i = 0; i < m->n_layers; i++) {
        const sn_layer *l = &m->layers[i];
        sn_op_fn fn = sn_op_for(l->op);
        if (!fn) {
            return SN_ERR_STATE;
        }
        fn(l, level);
        SN_LAYER_DONE(i);
    }
    memcpy(out, m->output, 2u * m->output_len);
    SN_COUNT(act_bytes_read, 2u * m->output_len);
    return sn_power_lost ? SN_ERR_POWER : SN_OK;
}

int16_t *sn_input_buffer(void) {
#if !defined(SN_MODEL_INTERMITTENT) || SN_MODEL_INTERMITTENT
    if (sn_the_model.progress && sn_infer_pending()) {
        return 0; /* the interrupted inference still reads it */
    }
#endif
    return sn_the_model.input;
}

void sn_model_info(sn_info *info) {
    const sn_model *m = &sn_the_model;
    info->n_levels = m->n_levels;
    info->level = sn_get_level();
    info->switching = m->switching;
    info->input_exp = m->input_exp;
    info->output_exp = m->output_exp;
    info->input_len = m->input_len;
    info->output_len = m->output_len;
    info->n_layers = m->n_layers;
    info->const_bytes = m->const_bytes;
    info->work_bytes = m->work_bytes;
    info->sram_arena_bytes = m->sram_arena_bytes;
    info->fram_arena_bytes = m->fram_arena_bytes;
    info->level_nnz = m->level_nnz;
}
