/* Operation counters for the cost model. Kernels call SN_COUNT(field, n); a board that wants
 * counts (the host board) builds with -DSN_COUNTERS and owns the global `sn_counters`.
 * On the MCU the macro compiles to nothing, so counting never costs cycles there. */
#ifndef SN_COUNTERS_H
#define SN_COUNTERS_H
#include <stdint.h>

typedef struct {
    uint32_t macs;               /* multiply-accumulates executed */
    uint32_t weight_bytes_read;  /* bytes of weights, indices and metadata read */
    uint32_t act_bytes_read;     /* bytes of activations read */
    uint32_t act_bytes_written;  /* bytes of activations written */
    uint32_t fram_bytes_written; /* bytes written to (emulated) FRAM by the runtime itself */
} sn_counter_set;

#ifdef SN_COUNTERS
extern sn_counter_set sn_counters;
#define SN_COUNT(field, n) (sn_counters.field += (uint32_t)(n))
#else
#define SN_COUNT(field, n) ((void)0)
#endif

#endif
