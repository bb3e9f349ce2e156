/* sparsenest public API: run a compiled nested sparse model and switch its level.
 *
 * Levels are 1..n_levels, sparsest first. The level selector is one 16-bit word in persistent FRAM;
 * switching commits with a single write of that word after any data it needs is in place, so a power
 * loss at any moment leaves either the old or the new level usable, and sn_init() finds it.
 *
 * Typical use:
 *     if (sn_init() != SN_OK) ...;          // at every boot: recover the committed level
 *     sn_set_level(2);                        // whenever the energy budget changes
 *     sn_infer(input_q15, logits_q15);        // input quantized with sn_info.input_exp
 *
 * Intermittent builds (compile --intermittent) keep the inference's progress in FRAM, so it survives
 * power failures and each unit of work is committed exactly once:
 *     // at every boot, after sn_init():
 *     if (sn_infer_pending()) sn_infer_resume();   // finish the interrupted inference
 *     sn_infer_start(input_q15);                   // a new one, at the committed level
 *     sn_infer_resume();                           // SN_OK when it completed
 *     sn_infer_done(logits_q15);                   // 1: output copied
 * The level is the one committed when sn_infer_start ran; sn_set_level during an inference applies to
 * the next one. sn_infer() is start + resume + done in one call.
 * The input's FRAM home can be the application's sample buffer (no copy, no second buffer): when no
 * inference is pending, sn_input_buffer() returns it; sample into it and pass it to sn_infer_start. Read
 * the last logits (sn_infer_done) first: the home's bytes are reused by later activations.
 */
#ifndef SPARSENEST_H
#define SPARSENEST_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    SN_OK = 0,
    SN_ERR_LEVEL = -1, /* level outside 1..n_levels */
    SN_ERR_POWER = -2, /* a FRAM write failed (power loss): the old level is still committed */
    SN_ERR_STATE = -3  /* the level selector holds no valid level */
};

enum { SN_SWITCH_RESIDENT = 0, SN_SWITCH_STAGED = 1 };

typedef struct {
    uint8_t n_levels;
    uint8_t level;             /* committed level (0 if the selector is invalid) */
    uint8_t switching;         /* SN_SWITCH_RESIDENT or SN_SWITCH_STAGED */
    int8_t input_exp;          /* input_q = round(x * 2^input_exp) */
    int8_t output_exp;         /* logits = out_q / 2^output_exp */
    uint16_t input_len;        /* int16 elements */
    uint16_t output_len;
    uint16_t n_layers;
    uint32_t const_bytes;      /* weights, indices, metadata, switching tables (read-only FRAM) */
    uint32_t work_bytes;       /* staged working copy (writable persistent FRAM), 0 if resident */
    uint32_t sram_arena_bytes; /* activations + scratch in SRAM */
    uint32_t fram_arena_bytes; /* activations spilled to FRAM */
    const uint32_t *level_nnz; /* [n_levels]: weights computed with at each level */
} sn_info;

int sn_init(void);
int sn_set_level(uint8_t level);
uint8_t sn_get_level(void);
/* The densest level the staged working copy holds: switching to it or below writes only the selector
 * (n_levels for a resident build; 0 if the selector is invalid). */
uint8_t sn_get_held_level(void);
int sn_infer(const int16_t *in, int16_t *out);
/* The planned buffer sn_infer copies its input into (input_len int16, SRAM or lower FRAM; FRAM in an
 * intermittent build). A caller that writes the input there itself (a sensor, DMA from upper FRAM)
 * passes it to sn_infer / sn_infer_start: no copy. NULL while an intermittent inference is pending. */
int16_t *sn_input_buffer(void);
/* Intermittent builds only (SN_ERR_STATE otherwise). */
int sn_infer_start(const int16_t *in);  /* SN_OK, SN_ERR_POWER (nothing started), SN_ERR_STATE;
                                         * in == sn_input_buffer(): nothing to copy */
int sn_infer_resume(void);              /* SN_OK: completed; SN_ERR_POWER: call again after reboot;
                                         * SN_ERR_STATE: no inference started or invalid record */
int sn_infer_pending(void);             /* 1: an inference started and not completed */
int sn_infer_done(int16_t *out);        /* 1: the last inference completed, out copied; 0: not yet */
void sn_model_info(sn_info *info);

#ifdef __cplusplus
}
#endif
#endif
