/* Host CLI: sn_cli [-l LEVEL] [-c] < inputs.bin > logits.bin
 * Reads int16 records of input_len elements (already quantized with the input exponent) from stdin,
 * writes int16 logits to stdout; -c prints the operation counters per inference to stderr.
 * Bad input (an unknown option, a LEVEL that is not a number in 1..n_levels, a record cut short)
 * gives one line on stderr and exit status 2; a runtime failure exit status 1. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sn_runtime.h"

static int usage(const char *prog) {
    fprintf(stderr, "%s: error: usage: %s [-l LEVEL] [-c] < inputs.bin > logits.bin\n", prog, prog);
    return 2;
}

/* LEVEL as a whole decimal number in 1..n_levels, or -1 (atoi would take "2x" as 2 and "x" as 0). */
static long parse_level(const char *text, unsigned n_levels) {
    char *end;
    long v;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < 1 || v > (long)n_levels) {
        return -1;
    }
    return v;
}

int main(int argc, char **argv) {
    sn_info info;
    int i, counters = 0;
    const char *level_text = NULL;
    long level = 0;
    int16_t *in, *out;
    unsigned long n = 0;
    size_t got, want;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-l") && i + 1 < argc) {
            level_text = argv[++i];
        } else if (!strcmp(argv[i], "-c")) {
            counters = 1;
        } else {
            return usage(argv[0]);
        }
    }
    if (sn_init() != SN_OK) {
        fprintf(stderr, "%s: error: sn_init: invalid level selector\n", argv[0]);
        return 1;
    }
    sn_model_info(&info);
    if (level_text) {
        level = parse_level(level_text, info.n_levels);
        if (level < 0) {
            fprintf(stderr, "%s: error: -l '%.40s' is not a level of this model; give 1..%u\n", argv[0],
                    level_text, (unsigned)info.n_levels);
            return 2;
        }
        if (sn_set_level((uint8_t)level) != SN_OK) {
            fprintf(stderr, "%s: error: sn_set_level(%ld) failed\n", argv[0], level);
            return 1;
        }
    }
    want = 2u * info.input_len;
    in = malloc(want);
    out = malloc(2u * info.output_len);
    if (!in || !out) {
        fprintf(stderr, "%s: error: out of memory\n", argv[0]);
        return 1;
    }
    /* Whole records only: a record cut short is an error, not silently dropped. */
    while ((got = fread(in, 1, want, stdin)) > 0) {
        if (got != want) {
            fprintf(stderr, "%s: error: input record %lu has %lu bytes, a record is %lu bytes (%u int16 "
                    "values); the input is truncated or not for this model\n", argv[0], n,
                    (unsigned long)got, (unsigned long)want, (unsigned)info.input_len);
            return 2;
        }
        memset(&sn_counters, 0, sizeof sn_counters);
        if (sn_infer(in, out) != SN_OK) {
            fprintf(stderr, "%s: error: sn_infer failed on record %lu\n", argv[0], n);
            return 1;
        }
        if (fwrite(out, 2, info.output_len, stdout) != info.output_len) {
            fprintf(stderr, "%s: error: cannot write the output\n", argv[0]);
            return 1;
        }
        if (counters) {
            fprintf(stderr, "%lu macs=%u weight_bytes_read=%u act_bytes_read=%u act_bytes_written=%u "
                    "fram_bytes_written=%u\n", n, (unsigned)sn_counters.macs,
                    (unsigned)sn_counters.weight_bytes_read, (unsigned)sn_counters.act_bytes_read,
                    (unsigned)sn_counters.act_bytes_written, (unsigned)sn_counters.fram_bytes_written);
        }
        n++;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "%s: error: cannot read the input\n", argv[0]);
        return 1;
    }
    fprintf(stderr, "level %u: %lu inferences\n", sn_get_level(), n);
    return 0;
}
