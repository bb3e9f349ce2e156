/* Reset handler for the MSP430FR5994 (and the mspdebug simulator image, SN_SIM=1).
 *
 *   stack -> watchdog off -> unlock I/O (LOCKLPM5) -> FRAM wait state, then 16 MHz DCO
 *   -> copy .data from FRAM -> zero .bss -> main() -> store its result -> halt at __halt.
 * Sections start-up leaves alone: .persistent, .fram.noinit, .noinit, .lea (see sn_board.h).
 *
 * SN_SIM=1: 0x0130 is the simulated multiplier, not PM5CTL0, so LOCKLPM5 is not touched; the free
 * stack is painted with 0xA5A5 so that the Python driver can measure the stack high-water mark.
 * SN_MCLK_HZ (board.toml's clock.mclk_hz): 16000000 (one FRAM wait state), 8000000 or 1000000
 * (no wait state). */
#include "msp430_regs.h"

#ifndef SN_MCLK_HZ
#error "SN_MCLK_HZ: the build passes the clock of boards/msp430fr5994/board.toml as -DSN_MCLK_HZ"
#endif

    .section .text.__sn_reset,"ax",@progbits
    .globl __sn_reset
    .type __sn_reset,@function
    .p2align 1
__sn_reset:
    mov #__stack_top, r1
    mov #(WDTPW | WDTHOLD), &WDTCTL_ADDR
#if !SN_SIM
    bic #LOCKLPM5, &PM5CTL0_ADDR        /* release the I/O pins after power-up */
#endif

    /* Clock. The FRAM wait state must be set before MCLK goes above 8 MHz; dividers at /4 while
     * the DCO changes frequency (FR5994 errata CS12: overshoot), then back to /1. */
#if SN_MCLK_HZ == 16000000
    mov #(FRCTLPW | NWAITS_1), &FRCTL0_ADDR
#endif
    mov.b #CSKEY_H, &CSCTL0_H_ADDR
    mov #DCOFSEL_0, &CSCTL1_ADDR
    mov #(SELA__VLOCLK | SELS__DCOCLK | SELM__DCOCLK), &CSCTL2_ADDR
    mov #(DIVA__4 | DIVS__4 | DIVM__4), &CSCTL3_ADDR
#if SN_MCLK_HZ == 16000000
    mov #(DCOFSEL_4 | DCORSEL), &CSCTL1_ADDR
#elif SN_MCLK_HZ == 8000000
    mov #DCOFSEL_6, &CSCTL1_ADDR
#elif SN_MCLK_HZ == 1000000
    mov #DCOFSEL_0, &CSCTL1_ADDR
#else
#error "SN_MCLK_HZ must be 16000000, 8000000 or 1000000"
#endif
    mov #20, r12                        /* ~60 cycles (>10 us at 4 MHz) for the DCO to settle */
1:  dec r12
    jnz 1b
    mov #(DIVA__1 | DIVS__1 | DIVM__1), &CSCTL3_ADDR
    mov.b #0, &CSCTL0_H_ADDR            /* lock CS */

    /* .data: FRAM image -> SRAM (sizes are even: the linker script aligns them) */
    mov #__data_load_start, r12
    mov #__data_start, r13
    mov #__data_end, r14
    jmp 3f
2:  mov @r12+, r15
    mov r15, 0(r13)
    incd r13
3:  cmp r14, r13
    jlo 2b

    /* .bss */
    mov #__bss_start, r13
    mov #__bss_end, r14
    jmp 5f
4:  mov #0, 0(r13)
    incd r13
5:  cmp r14, r13
    jlo 4b

#if SN_SIM
    /* paint the free stack (from the end of .noinit up to here) for the high-water mark */
    mov #__stack_limit, r13
    mov r1, r14
    jmp 7f
6:  mov #0xA5A5, 0(r13)
    incd r13
7:  cmp r14, r13
    jlo 6b
#endif

    call #main
    mov r12, &__sn_exit_code

    .globl __halt
    .type __halt,@function
__halt:
#if SN_SIM
    /* The simulator does not stop in low-power mode (a `run` from LPM never returns): spin, and
     * the Python driver breaks here. */
    jmp __halt
#else
    /* LPM4 with interrupts off: the core sleeps for good. */
    bis #LPM4_BITS, r2
    nop
    jmp __halt
#endif
    .size __sn_reset, .-__sn_reset

    /* Any interrupt without a handler lands here (the linker script fills the empty vector slots
     * with this function's address, fixed at the start of lower FRAM). */
    .section .text.__sn_unexpected_isr,"ax",@progbits
    .globl __sn_unexpected_isr
    .type __sn_unexpected_isr,@function
    .p2align 1
__sn_unexpected_isr:
    .globl __sn_trap
    .type __sn_trap,@function
__sn_trap:
    dint
    nop
    bis #LPM4_BITS, r2
    nop
    jmp __sn_trap
    .size __sn_unexpected_isr, .-__sn_unexpected_isr

    .section .resetvec,"a",@progbits
    .p2align 1
    .short __sn_reset

    .section .noinit.__sn_exit_code,"aw",@nobits
    .p2align 1
    .globl __sn_exit_code
    .type __sn_exit_code,@object
__sn_exit_code:
    .zero 2
    .size __sn_exit_code, 2
