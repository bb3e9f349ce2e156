/* Q15 dot products (see sn_mac.h).
 *
 * MSP430: the inner loops are inline assembly because clang does not fold a load into the
 * source operand of a store to the multiplier (it emits load-to-register then store, 3-4
 * instructions per element); `mov @Rn+, &MACS` / `mov @Rn+, &OP2` is 2 instructions, 10 cycles.
 * The operands are pinned to registers because the instruction is emitted as a .word.
 * Elsewhere: the portable C loops at the bottom. */
#include "sn_mac.h"

#if SN_MAC_HW

#define SN_STR_(x) #x
#define SN_STR(x) SN_STR_(x)
/* `mov @Rn+, &addr`: a valid MSP430 instruction that LLVM 19's assembler does not accept (it lacks
 * the indirect-autoincrement source with a memory destination), so it is emitted as its encoding:
 * format I, opcode 4 (MOV), As = 11, Ad = 1, destination R2 (absolute), source register n. */
#define MOV_POSTINC_ABS(n, addr) ".word 0x40B2 | (" #n " << 8), " SN_STR(addr) "\n\t"
#define MAC_A_B MOV_POSTINC_ABS(12, MACS_ADDR) MOV_POSTINC_ABS(13, OP2_ADDR)

int32_t sn_dot_q15(const int16_t *a, const int16_t *b, uint16_t n, int32_t acc)
{
    sn_mac_t m;
    sn_mac_begin(&m);
    register const int16_t *pa __asm__("r12") = a;
    register const int16_t *pb __asm__("r13") = b;
    register uint16_t k __asm__("r14") = n >> 2;
    if (k)
        __asm__ volatile("1:\n\t" MAC_A_B MAC_A_B MAC_A_B MAC_A_B "dec r14\n\tjnz 1b"
                         : "+r"(pa), "+r"(pb), "+r"(k)
                         :
                         : "memory");
    k = n & 3u;
    if (k)
        __asm__ volatile("1:\n\t" MAC_A_B "dec r14\n\tjnz 1b"
                         : "+r"(pa), "+r"(pb), "+r"(k)
                         :
                         : "memory");
    return (int32_t)((uint32_t)acc + (uint32_t)sn_mac_end(&m));
}

int32_t sn_dot_q15_strided(const int16_t *a, const int16_t *b, uint16_t n, uint16_t b_stride,
                           int32_t acc)
{
    sn_mac_t m;
    sn_mac_begin(&m);
    register const int16_t *pa __asm__("r12") = a;
    register const int16_t *pb __asm__("r13") = b;
    register uint16_t k __asm__("r14") = n;
    register uint16_t step __asm__("r15") = (uint16_t)(b_stride + b_stride); /* bytes */
    if (k)
        __asm__ volatile("1:\n\t" MOV_POSTINC_ABS(12, MACS_ADDR)
                         "mov @r13, &" SN_STR(OP2_ADDR) "\n\t"
                         "add r15, r13\n\t"
                         "dec r14\n\t"
                         "jnz 1b"
                         : "+r"(pa), "+r"(pb), "+r"(k)
                         : "r"(step)
                         : "memory");
    return (int32_t)((uint32_t)acc + (uint32_t)sn_mac_end(&m));
}

int32_t sn_dot_q15_gather(const int16_t *w, const uint16_t *idx, const int16_t *x, uint16_t n,
                          int32_t acc)
{
    sn_mac_t m;
    sn_mac_begin(&m);
    register const int16_t *pw __asm__("r12") = w;
    register const uint16_t *pi __asm__("r13") = idx;
    register uint16_t k __asm__("r14") = n;
    register const int16_t *px __asm__("r11") = x;
    register uint16_t t __asm__("r15");
    if (k)
        __asm__ volatile("1:\n\t" MOV_POSTINC_ABS(12, MACS_ADDR)
                         "mov @r13+, r15\n\t"
                         "rla r15\n\t"
                         "add r11, r15\n\t"
                         "mov @r15, &" SN_STR(OP2_ADDR) "\n\t"
                         "dec r14\n\t"
                         "jnz 1b"
                         : "+r"(pw), "+r"(pi), "+r"(k), "=&r"(t)
                         : "r"(px)
                         : "memory");
    return (int32_t)((uint32_t)acc + (uint32_t)sn_mac_end(&m));
}

#else /* portable C */

int32_t sn_dot_q15(const int16_t *a, const int16_t *b, uint16_t n, int32_t acc)
{
    uint32_t s = (uint32_t)acc;
    for (uint16_t i = 0; i < n; i++)
        s += (uint32_t)((int32_t)a[i] * (int32_t)b[i]);
    return (int32_t)s;
}

int32_t sn_dot_q15_strided(const int16_t *a, const int16_t *b, uint16_t n, uint16_t b_stride,
                           int32_t acc)
{
    uint32_t s = (uint32_t)acc;
    for (uint16_t i = 0; i < n; i++)
        s += (uint32_t)((int32_t)a[i] * (int32_t)b[(uint32_t)i * b_stride]);
    return (int32_t)s;
}

int32_t sn_dot_q15_gather(const int16_t *w, const uint16_t *idx, const int16_t *x, uint16_t n,
                          int32_t acc)
{
    uint32_t s = (uint32_t)acc;
    for (uint16_t i = 0; i < n; i++)
        s += (uint32_t)((int32_t)w[i] * (int32_t)x[idx[i]]);
    return (int32_t)s;
}

#endif
