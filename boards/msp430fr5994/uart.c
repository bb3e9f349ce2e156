/* See sn_uart.h. Baud settings are TI's table for eUSCI_A (SLAU367, "Recommended settings for
 * typical crystals and baud rates") at the MCLK chosen by SN_MCLK_HZ; SMCLK = MCLK (start-up). */
#include "sn_uart.h"

#include "msp430_regs.h"

#ifndef SN_MCLK_HZ
#error "SN_MCLK_HZ: the build passes the clock of boards/msp430fr5994/board.toml as -DSN_MCLK_HZ"
#endif

#if SN_SIM

#ifndef SN_UART_LOG_SIZE
#define SN_UART_LOG_SIZE 256
#endif
/* The simulator has no eUSCI: keep the text for the Python driver (read after __halt). */
char __sn_uart_log[SN_UART_LOG_SIZE];
uint16_t __sn_uart_log_len;

void sn_uart_init(uint8_t baud)
{
    (void)baud;
    __sn_uart_log_len = 0;
}

void sn_uart_putc(char c)
{
    if (__sn_uart_log_len < SN_UART_LOG_SIZE)
        __sn_uart_log[__sn_uart_log_len++] = c;
}

#else

/* {UCBRx, UCA0MCTLW = UCBRSx << 8 | UCBRFx << 4 | UCOS16} for 9600 and 115200 baud */
#if SN_MCLK_HZ == 16000000
static const uint16_t baud_table[2][2] = {{104, 0xD600 | 0x20 | UCOS16}, {8, 0xF700 | 0xA0 | UCOS16}};
#elif SN_MCLK_HZ == 8000000
static const uint16_t baud_table[2][2] = {{52, 0x4900 | 0x10 | UCOS16}, {4, 0x5500 | 0x50 | UCOS16}};
#elif SN_MCLK_HZ == 1000000
static const uint16_t baud_table[2][2] = {{6, 0x2000 | 0x80 | UCOS16}, {8, 0xD600}};
#else
#error "SN_MCLK_HZ must be 16000000, 8000000 or 1000000"
#endif

void sn_uart_init(uint8_t baud)
{
    const uint16_t *cfg = baud_table[baud == SN_UART_115200];
    P2SEL1 |= 0x03; /* P2.0/P2.1: eUSCI_A0 TXD/RXD (secondary function) */
    P2SEL0 &= (uint8_t)~0x03;
    UCA0CTLW0 = UCSWRST;
    UCA0CTLW0 = UCSWRST | UCSSEL__SMCLK;
    UCA0BRW = cfg[0];
    UCA0MCTLW = cfg[1];
    UCA0CTLW0 &= (uint16_t)~UCSWRST;
}

void sn_uart_putc(char c)
{
    while (!(UCA0IFG & UCTXIFG))
        ;
    UCA0TXBUF = (uint8_t)c;
}

#endif

void sn_uart_puts(const char *s)
{
    while (*s)
        sn_uart_putc(*s++);
}

/* Decimal without a 32-bit divide helper call per digit: subtract powers of ten. */
void sn_uart_put_u32(uint32_t v)
{
    static const uint32_t pow10[] = {1000000000u, 100000000u, 10000000u, 1000000u, 100000u,
                                     10000u,      1000u,      100u,      10u,      1u};
    uint8_t started = 0;
    for (uint8_t i = 0; i < sizeof pow10 / sizeof pow10[0]; i++) {
        char d = '0';
        while (v >= pow10[i]) {
            v -= pow10[i];
            d++;
        }
        if (d != '0' || started || i == 9) {
            sn_uart_putc(d);
            started = 1;
        }
    }
}

void sn_uart_put_i32(int32_t v)
{
    if (v < 0) {
        sn_uart_putc('-');
        sn_uart_put_u32(0u - (uint32_t)v);
    } else {
        sn_uart_put_u32((uint32_t)v);
    }
}

void sn_uart_put_hex16(uint16_t v)
{
    for (int8_t shift = 12; shift >= 0; shift -= 4) {
        uint8_t nib = (uint8_t)((v >> shift) & 0xF);
        sn_uart_putc((char)(nib < 10 ? '0' + nib : 'A' + nib - 10));
    }
}
