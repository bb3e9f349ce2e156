/* sparsenest firmware application for the MSP430FR5994 (boards/msp430fr5994/app/app.c).
 *
 * The application runs a schedule of inference steps on inputs embedded in the image. Each step
 * names an input and either a level (1..L) or an energy reading (level 0), which a threshold policy
 * turns into a level; the step switches level (sn_set_level), runs sn_infer, and appends a record
 * (level used, return codes, logits, argmax, timer ticks) to the results buffer in FRAM. On a board
 * each record is also printed on the LaunchPad's back-channel UART (eUSCI_A0, 115200 8N1); in the
 * simulator image the text goes to __sn_uart_log.
 *
 * Everything the host reads or writes has a fixed little-endian layout; python/sparsenest/targets/firmware.py
 * is the other side (it generates app_config.h and app_data.c for a compiled model, loads other
 * inputs/schedules in the simulator with load_raw, and parses sn_app_results).
 *
 *   sn_app_inputs[SN_APP_N_INPUTS][SN_MODEL_INPUT_LEN]  int16 Q15 inputs   .upper.rodata (upper FRAM on the
 *                                                        chip: read by DMA into sn_input_buffer())
 *   sn_app_schedule[SN_APP_MAX_STEPS], sn_app_n_steps    the schedule        .persistent
 *   sn_app_thresholds[SN_MODEL_N_LEVELS - 1]             energy -> level     .rodata
 *   sn_app_results                                       header + records    .fram.noinit
 *
 * Marker functions for the simulator driver (breakpoints; each is an empty non-inlined call):
 * sn_app_mark(SN_APP_MARK_SWITCH) before sn_set_level, sn_app_mark(SN_APP_MARK_INFER) before
 * sn_infer, sn_board_layer_done(i) after each layer (runtime hook, -DSN_LAYER_HOOK),
 * sn_app_mark(SN_APP_MARK_DONE) after sn_infer. */
#ifndef SN_APP_H
#define SN_APP_H

#include <stdint.h>

#include "app_config.h" /* generated: SN_APP_N_INPUTS, SN_APP_MAX_STEPS */
#include "model.h"      /* generated: SN_MODEL_INPUT_LEN, SN_MODEL_OUTPUT_LEN, SN_MODEL_N_LEVELS */
#include "sn_board.h"

#define SN_APP_MAGIC 0x4E53u   /* "SN" */
#define SN_APP_VERSION 1u
#define SN_APP_ENERGY_NONE 0xFFFFu
#define SN_APP_ENERGY_FULL 1000u /* energy readings are permille of the store's capacity */

enum { SN_APP_MARK_SWITCH = 1, SN_APP_MARK_INFER = 2, SN_APP_MARK_DONE = 3 };
enum { SN_APP_ERR_INPUT = -10 }; /* a step names an input index >= SN_APP_N_INPUTS */

typedef struct {       /* 4 bytes */
    uint8_t input;     /* index into sn_app_inputs */
    uint8_t level;     /* 1..L, or 0: take the level from the energy reading */
    uint16_t energy;   /* energy reading for level 0 steps (permille); see sn_app_read_energy */
} sn_app_step;

typedef struct {       /* 20 + 2 * SN_MODEL_OUTPUT_LEN bytes */
    uint8_t step;
    uint8_t requested; /* the step's level field (0: energy) */
    uint8_t level;     /* level the inference ran at (sn_get_level() after the switch) */
    uint8_t input;
    int8_t rc_switch;  /* sn_set_level's return code */
    int8_t rc_infer;   /* sn_infer's return code */
    uint16_t pred;     /* argmax of out */
    uint16_t energy;   /* reading used, SN_APP_ENERGY_NONE for a fixed-level step */
    uint16_t reserved;
    uint32_t switch_ticks; /* chip: Timer_A0 ticks (SMCLK / 64) spent in sn_set_level; sim: 0 */
    uint32_t infer_ticks;  /* chip: ticks spent in sn_infer; sim: 0 */
    int16_t out[SN_MODEL_OUTPUT_LEN];
} sn_app_record;

typedef struct {       /* 20 bytes */
    uint16_t magic;    /* SN_APP_MAGIC once main() started */
    uint16_t version;
    uint16_t n_steps;  /* steps scheduled */
    uint16_t n_done;   /* records written */
    int16_t status;    /* 0, or the first non-zero return code */
    uint8_t n_levels;
    uint8_t switching; /* SN_SWITCH_RESIDENT / SN_SWITCH_STAGED */
    uint16_t out_len;
    uint16_t record_bytes;
    uint32_t tick_hz;  /* timer ticks per second (0: no timer, the simulator) */
} sn_app_header;

typedef struct {
    sn_app_header hdr;
    sn_app_record rec[SN_APP_MAX_STEPS];
} sn_app_results_t;

extern const int16_t sn_app_inputs[SN_APP_N_INPUTS][SN_MODEL_INPUT_LEN]; /* far: sn_far_read only */
extern sn_app_step sn_app_schedule[SN_APP_MAX_STEPS];
extern uint16_t sn_app_n_steps;
extern const uint16_t sn_app_thresholds[SN_MODEL_N_LEVELS > 1 ? SN_MODEL_N_LEVELS - 1 : 1];
extern sn_app_results_t sn_app_results;

/* Level for an energy reading: 1 + the number of thresholds the reading reaches (ascending table). */
uint8_t sn_app_level_for_energy(uint16_t energy);
/* The energy reading for a level-0 step. Default (weak): the step's scheduled value, which replays
 * a recorded or synthetic harvesting trace; a board port overrides it with its sensor (e.g. the
 * storage capacitor's voltage through ADC12_B), scaled to permille. */
uint16_t sn_app_read_energy(const sn_app_step *step);
void sn_app_mark(uint16_t what);

#endif
