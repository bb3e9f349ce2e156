/* Host CLI: sn_cli [-l LEVEL] [-c] < inputs.bin > logits.bin
 * Reads int16 records of input_len elements (already quantized with the input exponent) from stdin,
 * writes int16 logits to stdout; -c prints the operation counters per inference to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sn_runtime.h"

int main(int argc, char **argv) {
    sn_info info;
    int i, level = 0, counters = 0;
    int16_t *in, *out;
    unsigned long n = 0;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-l") && i + 1 < argc) {
            level = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "-c")) {
            counters = 1;
        } else {
            fprintf(stderr, "usage: %s [-l LEVEL] [-c] < inputs.bin > logits.bin\n", argv[0]);
            return 2;
        }
    }
    if (sn_init() != SN_OK) {
        fprintf(stderr, "sn_init: invalid level selector\n");
        return 1;
    }
    if (level && sn_set_level((uint8_t)level) != SN_OK) {
        fprintf(stderr, "sn_set_level(%d) failed\n", level);
        return 1;
    }
    sn_model_info(&info);
    in = malloc(2u * info.input_len);
    out = malloc(2u * info.output_len);
    while (fread(in, 2, info.input_len, stdin) == info.input_len) {
        memset(&sn_counters, 0, sizeof sn_counters);
        if (sn_infer(in, out) != SN_OK) {
            fprintf(stderr, "sn_infer failed\n");
            return 1;
        }
        fwrite(out, 2, info.output_len, stdout);
        if (counters) {
            fprintf(stderr, "%lu macs=%u weight_bytes_read=%u act_bytes_read=%u act_bytes_written=%u "
                    "fram_bytes_written=%u\n", n, (unsigned)sn_counters.macs,
                    (unsigned)sn_counters.weight_bytes_read, (unsigned)sn_counters.act_bytes_read,
                    (unsigned)sn_counters.act_bytes_written, (unsigned)sn_counters.fram_bytes_written);
        }
        n++;
    }
    fprintf(stderr, "level %u: %lu inferences\n", sn_get_level(), n);
    return 0;
}
