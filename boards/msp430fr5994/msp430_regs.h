/* MSP430FR5994 register definitions: only what sparsenest's board support uses.
 *
 * Our own header because Debian's msp430mcu has no FR5994 (and no LEA), and clang ships none.
 * Addresses and bit values are from the MSP430FR5994 data sheet (SLASE54) and the FR58xx/FR59xx/
 * FR6xx family user's guide (SLAU367). Names follow TI's so that code reads like TI's examples.
 * Usable from C and from assembly (.S files): in assembly the register names are plain addresses.
 *
 * The one image-dependent block is the hardware multiplier: the FR5994's MPY32 is at 0x04C0, the
 * mspdebug simulator's 16-bit multiplier at 0x0130 (same register order for the first eight words).
 * SN_MPY_BASE picks it: 0x0130 when SN_SIM is set (the simulator image), else 0x04C0. On the real
 * chip 0x0130 is PM5CTL0, so never write a multiplier register through a hard-coded address. */
#ifndef SN_MSP430_REGS_H
#define SN_MSP430_REGS_H

#ifndef SN_SIM
#define SN_SIM 0
#endif

#ifndef SN_MPY_BASE
#if SN_SIM
#define SN_MPY_BASE 0x0130
#else
#define SN_MPY_BASE 0x04C0
#endif
#endif

#ifdef __ASSEMBLER__
#define SN_REG16(addr) (addr)
#define SN_REG8(addr) (addr)
#else
#include <stdint.h>
#define SN_REG16(addr) (*(volatile uint16_t *)(addr))
#define SN_REG8(addr) (*(volatile uint8_t *)(addr))
#endif

/* ---- Status register bits ---------------------------------------------------------------- */
#define GIE    0x0008
#define CPUOFF 0x0010
#define OSCOFF 0x0020
#define SCG0   0x0040
#define SCG1   0x0080
#define LPM4_BITS (CPUOFF | OSCOFF | SCG0 | SCG1)

/* ---- Watchdog (WDT_A) -------------------------------------------------------------------- */
#define WDTCTL_ADDR 0x015C
#define WDTCTL   SN_REG16(WDTCTL_ADDR)
#define WDTPW    0x5A00
#define WDTHOLD  0x0080

/* ---- Power management: PM5CTL0 (real chip only; in the simulator this is the multiplier) -- */
#define PM5CTL0_ADDR 0x0130
#define PM5CTL0  SN_REG16(PM5CTL0_ADDR)
#define LOCKLPM5 0x0001

/* ---- FRAM controller ------------------------------------------------------------------- */
#define FRCTL0_ADDR 0x0140
#define FRCTL0   SN_REG16(FRCTL0_ADDR)
#define FRCTLPW  0xA500
#define NWAITS_0 0x0000
#define NWAITS_1 0x0010   /* one wait state: required above 8 MHz */

/* ---- Clock system (CS) ----------------------------------------------------------------- */
#define CSCTL0_ADDR   0x0160
#define CSCTL0        SN_REG16(CSCTL0_ADDR)
#define CSCTL0_H_ADDR 0x0161
#define CSCTL0_H      SN_REG8(CSCTL0_H_ADDR)
#define CSKEY         0xA500
#define CSKEY_H       0xA5
#define CSCTL1_ADDR   0x0162
#define CSCTL1        SN_REG16(CSCTL1_ADDR)
#define CSCTL2_ADDR   0x0164
#define CSCTL2        SN_REG16(CSCTL2_ADDR)
#define CSCTL3_ADDR   0x0166
#define CSCTL3        SN_REG16(CSCTL3_ADDR)
#define DCORSEL       0x0040
#define DCOFSEL_0     0x0000  /* 1 MHz (DCORSEL=0) */
#define DCOFSEL_4     0x0008  /* 16 MHz with DCORSEL=1 */
#define DCOFSEL_6     0x000C  /* 8 MHz with DCORSEL=0 */
#define SELA__VLOCLK  0x0100
#define SELS__DCOCLK  0x0030
#define SELM__DCOCLK  0x0003
#define DIVA__1       0x0000
#define DIVA__4       0x0200
#define DIVS__1       0x0000
#define DIVS__4       0x0020
#define DIVM__1       0x0000
#define DIVM__4       0x0002

/* ---- 32-bit hardware multiplier (MPY32), base chosen per image --------------------------- */
#define MPY_ADDR       (SN_MPY_BASE + 0x00)  /* operand 1, unsigned multiply */
#define MPYS_ADDR      (SN_MPY_BASE + 0x02)  /* operand 1, signed multiply */
#define MAC_ADDR       (SN_MPY_BASE + 0x04)  /* operand 1, unsigned multiply-accumulate */
#define MACS_ADDR      (SN_MPY_BASE + 0x06)  /* operand 1, signed multiply-accumulate */
#define OP2_ADDR       (SN_MPY_BASE + 0x08)  /* operand 2: writing it starts the operation */
#define RESLO_ADDR     (SN_MPY_BASE + 0x0A)
#define RESHI_ADDR     (SN_MPY_BASE + 0x0C)
#define SUMEXT_ADDR    (SN_MPY_BASE + 0x0E)
/* The rest exists on the real MPY32 only (not in the simulator's 16-bit multiplier). */
#define MPY32L_ADDR    (SN_MPY_BASE + 0x10)
#define MPY32H_ADDR    (SN_MPY_BASE + 0x12)
#define MPYS32L_ADDR   (SN_MPY_BASE + 0x14)
#define MPYS32H_ADDR   (SN_MPY_BASE + 0x16)
#define MAC32L_ADDR    (SN_MPY_BASE + 0x18)
#define MAC32H_ADDR    (SN_MPY_BASE + 0x1A)
#define MACS32L_ADDR   (SN_MPY_BASE + 0x1C)
#define MACS32H_ADDR   (SN_MPY_BASE + 0x1E)
#define OP2L_ADDR      (SN_MPY_BASE + 0x20)
#define OP2H_ADDR      (SN_MPY_BASE + 0x22)
#define RES0_ADDR      (SN_MPY_BASE + 0x24)
#define RES1_ADDR      (SN_MPY_BASE + 0x26)
#define RES2_ADDR      (SN_MPY_BASE + 0x28)
#define RES3_ADDR      (SN_MPY_BASE + 0x2A)
#define MPY32CTL0_ADDR (SN_MPY_BASE + 0x2C)

#define MPY       SN_REG16(MPY_ADDR)
#define MPYS      SN_REG16(MPYS_ADDR)
#define MAC       SN_REG16(MAC_ADDR)
#define MACS      SN_REG16(MACS_ADDR)
#define OP2       SN_REG16(OP2_ADDR)
#define RESLO     SN_REG16(RESLO_ADDR)
#define RESHI     SN_REG16(RESHI_ADDR)
#define SUMEXT    SN_REG16(SUMEXT_ADDR)
#define MPY32L    SN_REG16(MPY32L_ADDR)
#define MPY32H    SN_REG16(MPY32H_ADDR)
#define MPYS32L   SN_REG16(MPYS32L_ADDR)
#define MPYS32H   SN_REG16(MPYS32H_ADDR)
#define MAC32L    SN_REG16(MAC32L_ADDR)
#define MAC32H    SN_REG16(MAC32H_ADDR)
#define MACS32L   SN_REG16(MACS32L_ADDR)
#define MACS32H   SN_REG16(MACS32H_ADDR)
#define OP2L      SN_REG16(OP2L_ADDR)
#define OP2H      SN_REG16(OP2H_ADDR)
#define RES0      SN_REG16(RES0_ADDR)
#define RES1      SN_REG16(RES1_ADDR)
#define RES2      SN_REG16(RES2_ADDR)
#define RES3      SN_REG16(RES3_ADDR)
#define MPY32CTL0 SN_REG16(MPY32CTL0_ADDR)
#define MPYSAT    0x0020  /* MPY32CTL0: saturate */
#define MPYFRAC   0x0010  /* MPY32CTL0: fractional (Q15) mode */

/* ---- DMA controller: 6 channels, 20-bit source/destination addresses ---------------------
 * DMAxSA/DMAxDA are 20-bit registers reached here as two 16-bit halves (L at +0, H at +2, only
 * bits 3:0 of H are used). A 16-bit write to the L half clears bits 19:16, so write L, then H. */
#define DMACTL0_ADDR 0x0500   /* trigger select, channels 0 (bits 4:0) and 1 (bits 12:8) */
#define DMACTL1_ADDR 0x0502   /* channels 2 and 3 */
#define DMACTL2_ADDR 0x0504   /* channels 4 and 5 */
#define DMACTL4_ADDR 0x0508
#define DMAIV_ADDR   0x050E
#define DMACTL0      SN_REG16(DMACTL0_ADDR)
#define DMACTL1      SN_REG16(DMACTL1_ADDR)
#define DMACTL2      SN_REG16(DMACTL2_ADDR)
#define DMACTL4      SN_REG16(DMACTL4_ADDR)
#define DMA_CH_ADDR(ch)   (0x0510 + 0x10 * (ch))
#define DMAxCTL_ADDR(ch)  (DMA_CH_ADDR(ch) + 0x0)
#define DMAxSAL_ADDR(ch)  (DMA_CH_ADDR(ch) + 0x2)
#define DMAxSAH_ADDR(ch)  (DMA_CH_ADDR(ch) + 0x4)
#define DMAxDAL_ADDR(ch)  (DMA_CH_ADDR(ch) + 0x6)
#define DMAxDAH_ADDR(ch)  (DMA_CH_ADDR(ch) + 0x8)
#define DMAxSZ_ADDR(ch)   (DMA_CH_ADDR(ch) + 0xA)
#define DMAxCTL(ch)  SN_REG16(DMAxCTL_ADDR(ch))
#define DMAxSAL(ch)  SN_REG16(DMAxSAL_ADDR(ch))
#define DMAxSAH(ch)  SN_REG16(DMAxSAH_ADDR(ch))
#define DMAxDAL(ch)  SN_REG16(DMAxDAL_ADDR(ch))
#define DMAxDAH(ch)  SN_REG16(DMAxDAH_ADDR(ch))
#define DMAxSZ(ch)   SN_REG16(DMAxSZ_ADDR(ch))
#define DMADT_BLOCK     0x1000  /* DMAxCTL: block transfer (CPU halted until done) */
#define DMADSTINCR_INC  0x0C00
#define DMASRCINCR_INC  0x0300
#define DMADSTBYTE      0x0080
#define DMASRCBYTE      0x0040
#define DMAEN           0x0010
#define DMAIFG          0x0008
#define DMAREQ          0x0001  /* software trigger (trigger select 0) */
#define DMARMWDIS       0x0004  /* DMACTL4: no DMA during CPU read-modify-write */

/* ---- Low-Energy Accelerator (LEA): register block at 0x0A80-0x0AFF ------------------------
 * 32-bit registers at the offsets of TI's device header. Nothing in the board support drives LEA
 * yet (the simulator has none); a LEA kernel back-end should check these against SLAU367. */
#define LEA_BASE       0x0A80
#define LEACAP_ADDR    (LEA_BASE + 0x00)
#define LEACNF0_ADDR   (LEA_BASE + 0x04)
#define LEACNF1_ADDR   (LEA_BASE + 0x08)
#define LEACNF2_ADDR   (LEA_BASE + 0x0C)
#define LEAMB_ADDR     (LEA_BASE + 0x10)
#define LEAMT_ADDR     (LEA_BASE + 0x14)
#define LEACMA_ADDR    (LEA_BASE + 0x18)
#define LEACMCTL_ADDR  (LEA_BASE + 0x1C)
#define LEACMDSTAT_ADDR (LEA_BASE + 0x28)
#define LEAS1STAT_ADDR (LEA_BASE + 0x2C)
#define LEAS0STAT_ADDR (LEA_BASE + 0x30)
#define LEADSTSTAT_ADDR (LEA_BASE + 0x34)
#define LEAPMCTL_ADDR  (LEA_BASE + 0x40)
#define LEAPMDST_ADDR  (LEA_BASE + 0x44)
#define LEAPMS1_ADDR   (LEA_BASE + 0x48)
#define LEAPMS0_ADDR   (LEA_BASE + 0x4C)
#define LEAPMCB_ADDR   (LEA_BASE + 0x50)
#define LEAIFGSET_ADDR (LEA_BASE + 0x70)
#define LEAIE_ADDR     (LEA_BASE + 0x74)
#define LEAIFG_ADDR    (LEA_BASE + 0x78)
#define LEAIV_ADDR     (LEA_BASE + 0x7C)
#define LEA_RAM_START  0x2C00   /* LEA-shared SRAM: 0x2C00-0x3BFF */
#define LEA_RAM_END    0x3C00

/* ---- Digital I/O port 2 (P2 is the high byte of port A) ---------------------------------- */
#define P2OUT_ADDR  0x0203
#define P2DIR_ADDR  0x0205
#define P2SEL0_ADDR 0x020B
#define P2SEL1_ADDR 0x020D
#define P2OUT   SN_REG8(P2OUT_ADDR)
#define P2DIR   SN_REG8(P2DIR_ADDR)
#define P2SEL0  SN_REG8(P2SEL0_ADDR)
#define P2SEL1  SN_REG8(P2SEL1_ADDR)

/* ---- eUSCI_A0 in UART mode (LaunchPad back-channel UART: P2.0 TXD, P2.1 RXD) ------------- */
#define UCA0CTLW0_ADDR 0x05C0
#define UCA0BRW_ADDR   0x05C6
#define UCA0MCTLW_ADDR 0x05C8
#define UCA0STATW_ADDR 0x05CA
#define UCA0RXBUF_ADDR 0x05CC
#define UCA0TXBUF_ADDR 0x05CE
#define UCA0IE_ADDR    0x05DA
#define UCA0IFG_ADDR   0x05DC
#define UCA0CTLW0  SN_REG16(UCA0CTLW0_ADDR)
#define UCA0BRW    SN_REG16(UCA0BRW_ADDR)
#define UCA0MCTLW  SN_REG16(UCA0MCTLW_ADDR)
#define UCA0STATW  SN_REG16(UCA0STATW_ADDR)
#define UCA0RXBUF  SN_REG16(UCA0RXBUF_ADDR)
#define UCA0TXBUF  SN_REG16(UCA0TXBUF_ADDR)
#define UCA0IE     SN_REG16(UCA0IE_ADDR)
#define UCA0IFG    SN_REG16(UCA0IFG_ADDR)
#define UCSWRST     0x0001
#define UCSSEL__SMCLK 0x0080
#define UCOS16      0x0001
#define UCBUSY      0x0001
#define UCTXIFG     0x0002
#define UCRXIFG     0x0001

#endif /* SN_MSP430_REGS_H */
