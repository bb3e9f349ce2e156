/* Host board configuration: sections are ordinary memory; FRAM writes, memory regions and per-layer
 * counters are tracked by sn_host.c (built with -DSN_COUNTERS -DSN_LAYER_HOOK -DSN_WRITE_TRACKING). */
#ifndef SN_BOARD_H
#define SN_BOARD_H
#include <stdint.h>

#define SN_FRAM
#define SN_FRAM_UPPER
#define SN_PERSISTENT
#define SN_FRAM_RW
#define SN_SRAM

/* Named memory regions the generated model declares (under SN_WRITE_TRACKING), so every FRAM write
 * is logged as (region, offset, bytes). */
enum { SN_REGION_CONST = 0, SN_REGION_PERSISTENT = 1, SN_REGION_SRAM = 2, SN_REGION_FRAM_RW = 3 };
typedef struct {
    const char *name;
    const void *addr;
    uint32_t size;
    uint8_t kind;
} sn_region;
#endif
