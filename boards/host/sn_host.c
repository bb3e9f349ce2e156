/* Host board: emulated FRAM with per-write tracking and power-loss injection, operation counters
 * per inference and per layer, and a batch entry point for the Python driver (hostsim.py).
 * Host-only code: it may use the C library freely. */
#include <stdlib.h>
#include <string.h>

#include "sn_runtime.h"

#if defined(_WIN32)
#define SN_EXPORT __declspec(dllexport)
#else
#define SN_EXPORT __attribute__((visibility("default")))
#endif

extern const sn_region sn_model_regions[];
extern const uint16_t sn_model_n_regions;

sn_counter_set sn_counters;

/* ------------------------------------------------------------------ counters per layer */
static sn_counter_set *layer_counts;
static uint16_t layer_counts_n;
static sn_counter_set layer_mark;

static void counters_sub_add(sn_counter_set *dst, const sn_counter_set *now, const sn_counter_set *then) {
    dst->macs += now->macs - then->macs;
    dst->weight_bytes_read += now->weight_bytes_read - then->weight_bytes_read;
    dst->act_bytes_read += now->act_bytes_read - then->act_bytes_read;
    dst->act_bytes_written += now->act_bytes_written - then->act_bytes_written;
    dst->fram_bytes_written += now->fram_bytes_written - then->fram_bytes_written;
}

void sn_board_layer_done(uint16_t layer) {
    if (!layer_counts) {
        layer_counts_n = sn_the_model.n_layers;
        layer_counts = calloc(layer_counts_n ? layer_counts_n : 1, sizeof *layer_counts);
    }
    if (layer < layer_counts_n) {
        counters_sub_add(&layer_counts[layer], &sn_counters, &layer_mark);
    }
    layer_mark = sn_counters;
}

SN_EXPORT void sn_host_reset_counters(void) {
    memset(&sn_counters, 0, sizeof sn_counters);
    layer_mark = sn_counters;
    if (layer_counts) {
        memset(layer_counts, 0, layer_counts_n * sizeof *layer_counts);
    }
}

SN_EXPORT void sn_host_counters(sn_counter_set *out) { *out = sn_counters; }

SN_EXPORT int sn_host_layer_counters(uint16_t layer, sn_counter_set *out) {
    if (!layer_counts || layer >= layer_counts_n) {
        memset(out, 0, sizeof *out);
        return layer < sn_the_model.n_layers ? 0 : -1;
    }
    *out = layer_counts[layer];
    return 0;
}

/* ------------------------------------------------------------------ regions */
SN_EXPORT uint16_t sn_host_n_regions(void) { return sn_model_n_regions; }

SN_EXPORT int sn_host_region(uint16_t i, const char **name, uint32_t *size, uint8_t *kind) {
    if (i >= sn_model_n_regions) {
        return -1;
    }
    *name = sn_model_regions[i].name;
    *size = sn_model_regions[i].size;
    *kind = sn_model_regions[i].kind;
    return 0;
}

static int32_t region_of(const void *p, uint32_t *offset) {
    uint16_t i;
    const uint8_t *b = (const uint8_t *)p;
    for (i = 0; i < sn_model_n_regions; i++) {
        const uint8_t *a = (const uint8_t *)sn_model_regions[i].addr;
        if (b >= a && b < a + sn_model_regions[i].size) {
            *offset = (uint32_t)(b - a);
            return i;
        }
    }
    *offset = 0;
    return -1;
}

/* Persistent regions as loaded with the image, to start a test from a fresh device. */
static uint8_t **image_copy;

static void snapshot_image(void) {
    uint16_t i;
    if (image_copy) {
        return;
    }
    image_copy = calloc(sn_model_n_regions ? sn_model_n_regions : 1, sizeof *image_copy);
    for (i = 0; i < sn_model_n_regions; i++) {
        if (sn_model_regions[i].kind == SN_REGION_PERSISTENT) {
            image_copy[i] = malloc(sn_model_regions[i].size);
            memcpy(image_copy[i], sn_model_regions[i].addr, sn_model_regions[i].size);
        }
    }
}

__attribute__((constructor)) static void sn_host_load(void) { snapshot_image(); }

/* Re-flash: every persistent region back to its image contents. */
SN_EXPORT void sn_host_reset_persistent(void) {
    uint16_t i;
    snapshot_image();
    for (i = 0; i < sn_model_n_regions; i++) {
        if (image_copy[i]) {
            memcpy((void *)sn_model_regions[i].addr, image_copy[i], sn_model_regions[i].size);
        }
    }
}

/* ------------------------------------------------------------------ FRAM writes, power loss */
typedef struct {
    int32_t region;
    uint32_t offset;
    uint32_t requested;
    uint32_t written;
} write_rec;

static write_rec *wlog;
static uint32_t wlog_len, wlog_cap;
static int64_t power_budget = -1; /* bytes that still reach FRAM; -1: no failure scheduled */
static int power_failed;

SN_EXPORT void sn_host_power_fail_after(int64_t nbytes) { power_budget = nbytes; }
SN_EXPORT int sn_host_power_failed(void) { return power_failed; }

/* Power comes back: the failure is cleared and SRAM holds garbage (the runtime must not rely on it). */
SN_EXPORT void sn_host_power_restore(void) {
    uint16_t i;
    power_failed = 0;
    power_budget = -1;
    for (i = 0; i < sn_model_n_regions; i++) {
        if (sn_model_regions[i].kind == SN_REGION_SRAM) {
            memset((void *)sn_model_regions[i].addr, 0xA5, sn_model_regions[i].size);
        }
    }
}

SN_EXPORT uint32_t sn_host_log_len(void) { return wlog_len; }
SN_EXPORT void sn_host_log_clear(void) { wlog_len = 0; }

SN_EXPORT int sn_host_log_entry(uint32_t i, int32_t *region, uint32_t *offset, uint32_t *requested,
                                uint32_t *written) {
    if (i >= wlog_len) {
        return -1;
    }
    *region = wlog[i].region;
    *offset = wlog[i].offset;
    *requested = wlog[i].requested;
    *written = wlog[i].written;
    return 0;
}

/* FRAM is written in 16-bit words: a failing write keeps the whole words that fit the budget, so the
 * selector word is all-or-nothing, as on the device. */
int sn_board_fram_write(void *dst, const void *src, size_t nbytes) {
    size_t n = nbytes;
    write_rec rec;
    int fail = 0;
    if (power_failed) {
        n = 0;
        fail = 1;
    } else if (power_budget >= 0 && (int64_t)nbytes > power_budget) {
        n = (size_t)power_budget & ~(size_t)1;
        fail = 1;
    }
    if (n) {
        memcpy(dst, src, n);
    }
    if (power_budget >= 0) {
        power_budget -= (int64_t)n;
    }
    if (fail) {
        power_failed = 1;
        power_budget = 0;
    }
    SN_COUNT(fram_bytes_written, n);
    rec.region = region_of(dst, &rec.offset);
    rec.requested = (uint32_t)nbytes;
    rec.written = (uint32_t)n;
    if (wlog_len == wlog_cap) {
        wlog_cap = wlog_cap ? 2 * wlog_cap : 1024;
        wlog = realloc(wlog, wlog_cap * sizeof *wlog);
    }
    wlog[wlog_len++] = rec;
    return fail;
}

/* Far memory is ordinary memory here: a fill from a far staged master is a tracked FRAM write. */
int sn_board_fram_write_far(void *dst, sn_far_addr_t src, size_t nbytes) {
    return sn_board_fram_write(dst, (const void *)src, nbytes);
}

/* So is a working copy in far memory: its fill is a tracked FRAM write too. */
int sn_board_far_write(sn_far_addr_t dst, sn_far_addr_t src, size_t nbytes) {
    return sn_board_fram_write((void *)dst, (const void *)src, nbytes);
}

/* ------------------------------------------------------------------ batch inference */
SN_EXPORT int sn_host_infer_batch(const int16_t *in, int16_t *out, uint32_t n) {
    uint32_t i;
    for (i = 0; i < n; i++) {
        int rc;
        layer_mark = sn_counters;
        rc = sn_infer(in + (size_t)i * sn_the_model.input_len, out + (size_t)i * sn_the_model.output_len);
        if (rc != SN_OK) {
            return rc;
        }
    }
    return SN_OK;
}
