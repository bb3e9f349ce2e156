/* LLVM calls the 64-bit divide/remainder helpers, and __mspabi_mpyll when there is no hardware
 * multiplier, with its MSP430_BUILTIN convention: first operand in R8-R11, second in R12-R15
 * (low word in the lowest register), result in R12-R15; R4-R10 are callee-saved as usual.
 * The C implementations in mspabi.c take the standard convention (first operand in R12-R15,
 * second on the stack), so each entry point pushes R12-R15 as the stack argument, moves R8-R11
 * into R12-R15 and calls the C function. R8-R10 are untouched here and preserved by the callee.
 * A plain C function under these names would silently compute with the wrong operands.
 * (';' starts a comment in MSP430 assembly, hence .macro rather than a one-line #define.) */

    .macro special_entry name, cfunc
    .section .text.\name,"ax",@progbits
    .globl \name
    .type \name,@function
    .p2align 1
\name:
    push r15
    push r14
    push r13
    push r12
    mov r8, r12
    mov r9, r13
    mov r10, r14
    mov r11, r15
    call #\cfunc
    add #8, r1
    ret
    .size \name, .-\name
    .endm

    special_entry __mspabi_divlli, __sn_divlli
    special_entry __mspabi_divull, __sn_divull
    special_entry __mspabi_remlli, __sn_remlli
    special_entry __mspabi_remull, __sn_remull
    special_entry __mspabi_mpyll, __sn_mpyll
