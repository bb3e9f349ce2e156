# Makefile fragment for MSP430FR5994 firmware (the Python driver sparsenest.targets.msp430 is the main
# path; this is for people who prefer make). Usage from a Makefile:
#
#   SN_SOURCES := path/to/model.c path/to/main.c
#   SN_IMAGE   := fr5994          # or sim (mspdebug simulator image)
#   SN_BUILD   := build/fw
#   include boards/msp430fr5994/board.mk
#   all: $(SN_BUILD)/firmware.hex
#
# Targets: $(SN_BUILD)/firmware.elf / .hex, sn-size, sn-sim, sn-check, sn-flash.
# Object files are named after the source's file name: two sources with the same name (or a
# source named like a board file, e.g. board.c) collide.

SN_BOARD_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
SN_IMAGE ?= fr5994
SN_BUILD ?= build/msp430-$(SN_IMAGE)
SN_STACK_SIZE ?= 512
SN_PYTHON ?= .venv/bin/python
MSP430_CC ?= clang-19
MSP430_LD ?= ld.lld-19
MSP430_OBJCOPY ?= llvm-objcopy-19
MSPDEBUG ?= mspdebug
# The clock is stated once, in board.toml (clock.mclk_hz).
SN_MCLK_HZ ?= $(shell $(SN_PYTHON) -c 'from sparsenest.board import mclk_hz; print(mclk_hz())')

SN_CFLAGS := --target=msp430 -mmcu=msp430fr5994 -Os -ffreestanding -nostdlib \
             -ffunction-sections -fdata-sections -Wall -I$(SN_BOARD_DIR) \
             -DSN_SIM=$(if $(filter sim,$(SN_IMAGE)),1,0) -DSN_MCLK_HZ=$(SN_MCLK_HZ) $(SN_EXTRA_CFLAGS)
SN_LDSCRIPT := $(SN_BOARD_DIR)/$(if $(filter sim,$(SN_IMAGE)),msp430fr5994_sim.ld,msp430fr5994.ld)
SN_BOARD_SRCS := startup.S board.c mem.c sn_mac.c uart.c mspabi.c mspabi_shim.S
SN_OBJS := $(addprefix $(SN_BUILD)/obj/,$(addsuffix .o,$(notdir $(SN_SOURCES)) $(SN_BOARD_SRCS)))

vpath %.c $(SN_BOARD_DIR) $(sort $(dir $(SN_SOURCES)))
vpath %.S $(SN_BOARD_DIR) $(sort $(dir $(SN_SOURCES)))

$(SN_BUILD)/obj/%.c.o: %.c $(wildcard $(SN_BOARD_DIR)/*.h)
	@mkdir -p $(@D)
	$(MSP430_CC) $(SN_CFLAGS) -c $< -o $@

$(SN_BUILD)/obj/%.S.o: %.S $(wildcard $(SN_BOARD_DIR)/*.h)
	@mkdir -p $(@D)
	$(MSP430_CC) $(SN_CFLAGS) -c $< -o $@

$(SN_BUILD)/firmware.elf: $(SN_OBJS) $(SN_LDSCRIPT) $(SN_BOARD_DIR)/sections.ld
	$(MSP430_LD) -n --gc-sections --orphan-handling=error -L$(SN_BOARD_DIR) -T $(SN_LDSCRIPT) \
	  --defsym=__sn_stack_size=$(SN_STACK_SIZE) -Map $(SN_BUILD)/firmware.map $(SN_OBJS) -o $@

$(SN_BUILD)/firmware.hex: $(SN_BUILD)/firmware.elf
	$(MSP430_OBJCOPY) -O ihex $< $@

.PHONY: sn-size sn-sim sn-check sn-flash
sn-size: $(SN_BUILD)/firmware.elf
	$(SN_PYTHON) -m sparsenest.targets.msp430 size $<

sn-sim: $(SN_BUILD)/firmware.elf
	$(SN_PYTHON) -m sparsenest.targets.msp430 sim $<

sn-check: $(SN_BUILD)/firmware.elf
	$(SN_PYTHON) -m sparsenest.targets.msp430 check $<

sn-flash: $(SN_BUILD)/firmware.elf $(SN_BUILD)/firmware.hex
	$(SN_PYTHON) -m sparsenest.targets.msp430 flash $<
