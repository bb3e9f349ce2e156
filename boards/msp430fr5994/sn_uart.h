/* Polled UART output on eUSCI_A0: the MSP-EXP430FR5994 LaunchPad's back-channel UART (P2.0 TXD,
 * P2.1 RXD, appears on the host as the eZ-FET's second serial port). 8N1, SMCLK = MCLK.
 * In the simulator image (SN_SIM=1) the bytes go to the buffer __sn_uart_log instead, which
 * sparsenest.targets.msp430.simulate() returns as SimResult.uart. */
#ifndef SN_UART_H
#define SN_UART_H

#include <stdint.h>

#define SN_UART_9600 0
#define SN_UART_115200 1

void sn_uart_init(uint8_t baud);     /* SN_UART_9600 or SN_UART_115200 */
void sn_uart_putc(char c);
void sn_uart_puts(const char *s);
void sn_uart_put_u32(uint32_t v);    /* decimal */
void sn_uart_put_i32(int32_t v);     /* decimal */
void sn_uart_put_hex16(uint16_t v);  /* 4 hex digits */

#endif
