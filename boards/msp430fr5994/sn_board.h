/* sparsenest board interface for the MSP430FR5994: where data lives, far (upper FRAM) reads,
 * interrupt masking and interrupt handlers. Compiles on the host too (everything degrades to plain
 * C), so model code can use these macros unconditionally.
 *
 * Placement macros (section names are what boards/msp430fr5994/sections.ld places):
 *   SN_PERSISTENT   ".persistent"   lower FRAM; initial value written when the device is
 *                                   programmed, never touched by start-up: survives reset and
 *                                   power loss (level selector, staged-weight working copies).
 *                                   Give it an initializer; it is its value after programming.
 *   SN_FRAM_NOINIT  ".fram.noinit"  lower FRAM, not loaded, not initialised (large scratch).
 *   SN_NOINIT       ".noinit"       SRAM, not initialised by start-up (debugger-injected inputs).
 *   SN_LEA_RAM      ".lea.noinit"   LEA-shared SRAM 0x2C00-0x3BFF, not initialised.
 *   SN_UPPER_CONST  ".upper.rodata" upper FRAM 0x10000-0x43FFF: large const arrays. The CPU code
 *                                   clang emits cannot address it: read it with sn_far_read()
 *                                   through an address made by SN_DEFINE_FAR_ADDR. A direct
 *                                   access fails to link on the real image ("relocation out of
 *                                   range"), which is the point.
 * Plain `const` data goes to .rodata (lower FRAM, directly addressable); plain variables to
 * .data/.bss in SRAM (4 KB, shared with the stack).
 *
 * Simulator image (SN_SIM=1): mspdebug's simulator has 64 KB, so .upper.rodata is linked into lower
 * FRAM there and sn_far_read() is a memcpy; there is no DMA to simulate. */
#ifndef SN_BOARD_H
#define SN_BOARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __MSP430__

#include "msp430_regs.h"

#define SN_PERSISTENT  __attribute__((section(".persistent"), used))
#define SN_FRAM_NOINIT __attribute__((section(".fram.noinit")))
#define SN_NOINIT      __attribute__((section(".noinit")))
#define SN_LEA_RAM     __attribute__((section(".lea.noinit"), aligned(4)))
#define SN_UPPER_CONST __attribute__((section(".upper.rodata"), used))
#define SN_FRAM_UPPER SN_UPPER_CONST /* the name boards/host/sn_board.h uses */

/* A 20-bit FRAM address held in 32 bits. */
typedef uint32_t sn_far_addr_t;

/* Defines `const sn_far_addr_t name` = the full address of `sym` (any object, typically an
 * SN_UPPER_CONST array). C cannot express it: pointers are 16 bits here, so the constant is
 * emitted as a 32-bit relocation in assembly. Use at file scope; declare `sym` before. */
#define SN_DEFINE_FAR_ADDR(name, sym)                                                          \
    __asm__(".pushsection .rodata." #name ",\"a\",@progbits\n\t.balign 2\n\t.globl " #name      \
            "\n\t.type " #name ",@object\n" #name ":\n\t.long " #sym "\n\t.size " #name         \
            ",4\n\t.popsection");                                                              \
    extern const sn_far_addr_t name

/* Interrupt handler for vector slot n (0..63): the vector lives at 0xFF80 + 2*n, so
 * n = (vector address from the data sheet - 0xFF80) / 2. Slot 63 is reset (taken by start-up).
 * Handlers must not use the hardware multiplier unless interrupted code cannot be using it:
 * the helpers and sn_mac.h mask interrupts while they use it, so in practice this holds. */
#define SN_ISR(n, name) __attribute__((interrupt(n))) void name(void)

typedef uint16_t sn_irq_state_t;

/* Disable maskable interrupts, returning the previous status register. */
static inline __attribute__((always_inline)) sn_irq_state_t sn_irq_save(void)
{
    sn_irq_state_t sr;
    __asm__ volatile("mov r2, %0\n\tdint\n\tnop" : "=r"(sr) : : "memory");
    return sr;
}

/* Restore the GIE bit saved by sn_irq_save (the nops are the FR5xx GIE-change rule). */
static inline __attribute__((always_inline)) void sn_irq_restore(sn_irq_state_t sr)
{
    __asm__ volatile("nop\n\tbis %0, r2\n\tnop" : : "r"((uint16_t)(sr & GIE)) : "memory");
}

/* (int16_t)(t >> s) for s in 1..15 and a t whose shifted value fits int16, with m = 2^(16 - s):
 * t * m / 2^16 as two 16x16 products on the hardware multiplier (high word of lo * m plus low word
 * of hi * m) instead of a 32-bit shift helper. The runtime's requantization uses it once per output
 * value (sn_runtime.h, sn_shr_fit16). */
#define SN_BOARD_SHR_FIT16 1
static inline __attribute__((always_inline)) int16_t sn_board_shr_fit16(int32_t t, uint16_t m)
{
    sn_irq_state_t irq = sn_irq_save();
    MPY = (uint16_t)t;
    OP2 = m;
    __asm__ volatile("nop" ::: "memory"); /* MPY32 result latency */
    uint16_t a = RESHI;
    MPY = (uint16_t)((uint32_t)t >> 16);
    OP2 = m;
    __asm__ volatile("nop" ::: "memory");
    uint16_t b = RESLO;
    sn_irq_restore(irq);
    return (int16_t)(uint16_t)(a + b);
}

/* The multiplier contract of runtime_c/kernels_mpy32: the MPY32 registers (msp430_regs.h),
 * sn_irq_save/restore above, and sn_dot_q15 with the other MAC helpers (sn_mac.h, sn_mac.c). */
#define SN_BOARD_MPY32 1
#include "sn_mac.h"

#else /* host build: same names, plain C */

#include <string.h>
#define SN_PERSISTENT
#define SN_FRAM_NOINIT
#define SN_NOINIT
#define SN_LEA_RAM
#define SN_UPPER_CONST
#define SN_FRAM_UPPER
typedef uintptr_t sn_far_addr_t;
#define SN_DEFINE_FAR_ADDR(name, sym) static const sn_far_addr_t name = (sn_far_addr_t)&(sym)
#define SN_ISR(n, name) void name(void)
typedef unsigned sn_irq_state_t;
static inline sn_irq_state_t sn_irq_save(void) { return 0; }
static inline void sn_irq_restore(sn_irq_state_t s) { (void)s; }
static inline void sn_far_read(void *dst, sn_far_addr_t src, uint16_t n)
{
    memcpy(dst, (const void *)src, n);
}

#endif

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __MSP430__
/* Copy n bytes from a far address (upper or lower FRAM) to dst (SRAM, LEA RAM or lower FRAM).
 * Real chip: DMA channel SN_FAR_DMA_CHANNEL (default 2) in block mode, software-triggered; the CPU
 * is halted until the transfer ends. Word transfers when both addresses and n are even.
 * Simulator image: memcpy (board.c). Host: the inline memcpy above. */
void sn_far_read(void *dst, sn_far_addr_t src, uint16_t n);
/* The same between two far addresses (a staged working copy in upper FRAM filled from its master). */
#define SN_BOARD_FAR_COPY 1
void sn_far_copy(sn_far_addr_t dst, sn_far_addr_t src, uint16_t n);
#endif

/* Firmware exit code: start-up stores main()'s return value here before halting at __halt. */
extern volatile uint16_t __sn_exit_code;

#ifdef __cplusplus
}
#endif

#endif /* SN_BOARD_H */
