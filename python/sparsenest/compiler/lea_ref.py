"""Numpy reference of the LEA arithmetic and cost model at the DSPLib interface.

The simulator's LEA model (boards/msp430fr5994/sim/lea.c, contract in lea.h) and the host board's copy of
it are tested against these functions bit for bit; the LEA back-end's golden model uses them to learn
what LEA computes. The rules are those of TI DSPLib's C reference (the declarations we compile against are
runtime_c/kernels_lea/dsplib/DSPLib.h):

* Q15 products are exact (|a*b| <= 2^30) and sums of them are exact: the model's accumulator is wide
  enough for any vector that fits in LEA RAM (2048 products, |sum| < 2^42).
* ``msp_mac_q15``: ``result = sat32(2 * sum(a*b))`` (the Q30 sum doubled to Q31, saturated once at the end,
  as DSPLib's MPY32 path with MPYSAT). It saturates when ``sum >= 2^30`` or ``sum < -2^30``: a single
  -1*-1 product already gives 0x7FFFFFFF. A caller that keeps ``|sum| < 2^30`` (one bit less than an int32
  accumulator allows) gets the exact ``2*sum``.
* ``msp_matrix_mpy_q15`` and ``msp_fir_q15``: ``y = sat16(floor(sum / 2^15))`` (arithmetic shift, no
  rounding). FIR is a true convolution: ``y[i] = sum_k src[i+k] * coeffs[T-1-k]``.
* ``msp_add_q15``, ``msp_offset_q15``: ``sat16(a + b)``. ``msp_mpy_q15``: ``floor(a*b / 2^15)`` kept to 16
  bits (only -1 * -1 overflows, and wraps to -1). ``msp_scale_q15`` (a CPU function in DSPLib):
  ``floor(a*scale / 2^(15-shift))`` kept to 16 bits (wraps).
* ``msp_max_q15``: the largest value and the index of its last occurrence.
* Every input is read before any output is written (in-place calls are defined).

LEA rules (lea.c checks them; error codes equal TI's ``msp_status``): lengths even and non-zero
(``MSP_SIZE_ERROR``); an operand must start in LEA RAM 0x2C00..0x3BFF on a 32-bit boundary
(``MSP_LEA_INVALID_ADDRESS``) and end inside it (``MSP_LEA_OUT_OF_RANGE``). FIR's source holds
``length + tapLength - 1`` samples (DSPLib tests room for one more: the same test for aligned, even-length
operands); with the circular buffer ``length`` is a power of two, ``tapLength <= 2*length`` and the ring of
``2*length`` samples is aligned to its byte size.

Where the LEA hardware itself may differ (overflow corners, the tie index of max) is unconfirmed: the
timing and these corners are a model until a board measures them.
"""
from __future__ import annotations

import math
from dataclasses import astuple, dataclass

import numpy as np

from ..board import Platform, load_platform

#: LEA RAM of the MSP430FR5994 (also lea.ram_base / lea.ram_bytes in the platform TOML and lea.h).
LEA_RAM_START = 0x2C00
LEA_RAM_END = 0x3C00

#: Function codes of the simulator port (lea.h SIM_LEA_FN_*); tests check the two agree.
FN = {"mac_q15": 1, "matrix_mpy_q15": 2, "fir_q15": 3, "add_q15": 4, "mpy_q15": 5, "offset_q15": 6,
      "max_q15": 7, "fill_q15": 8, "copy_q15": 9}

#: Return codes (TI msp_status values; negative ones are simulator misuse, lea.h SIM_LEA_E*).
OK, SIZE_ERROR, INVALID_ADDRESS, OUT_OF_RANGE = 0, 1, 5, 6
UNKNOWN_FUNCTION, NO_COSTS, BAD_COSTS = -1, -2, -3

_I16 = (-32768, 32767)
_I32 = (-(2 ** 31), 2 ** 31 - 1)


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def _sat16(v: np.ndarray) -> np.ndarray:
    return np.clip(v, *_I16).astype(np.int16)


def _wrap16(v: np.ndarray) -> np.ndarray:
    return (_i64(v) & 0xFFFF).astype(np.uint16).view(np.int16)


# ------------------------------------------------------------------------------------- arithmetic

def mac_q15(a, b) -> int:
    """msp_mac_q15: sat32(2 * sum(a*b)) as a Python int (the _iq31 result)."""
    s = int(np.dot(_i64(a), _i64(b)))
    return min(max(2 * s, _I32[0]), _I32[1])


def matrix_mpy_q15(a, b) -> np.ndarray:
    """msp_matrix_mpy_q15: sat16(floor(A @ B / 2^15)), A rows x n, B n x cols."""
    return _sat16((_i64(a) @ _i64(b)) >> 15)


def fir_q15(src, coeffs, length: int, *, circular: bool = False, first: int = 0) -> np.ndarray:
    """msp_fir_q15: y[i] = sat16(floor(sum_k x[i+k] * coeffs[T-1-k] / 2^15)) for i < length.

    src: the samples from the source pointer on (at least length + T - 1), or with circular=True the whole
    ring of 2*length samples, `first` being the source pointer's index in it."""
    x, h = _i64(src), _i64(coeffs)[::-1]
    taps = len(h)
    idx = np.arange(length)[:, None] + np.arange(taps)[None, :]
    if circular:
        idx = (idx + first) % len(x)
    return _sat16((x[idx] * h[None, :]).sum(axis=1) >> 15)


def add_q15(a, b) -> np.ndarray:
    """msp_add_q15: sat16(a + b)."""
    return _sat16(_i64(a) + _i64(b))


def offset_q15(a, offset: int) -> np.ndarray:
    """msp_offset_q15: sat16(a + offset)."""
    return _sat16(_i64(a) + int(offset))


def mpy_q15(a, b) -> np.ndarray:
    """msp_mpy_q15: floor(a*b / 2^15) kept to 16 bits (wraps)."""
    return _wrap16((_i64(a) * _i64(b)) >> 15)


def scale_q15(a, scale: int, shift: int) -> np.ndarray:
    """msp_scale_q15 (a CPU function in DSPLib): floor(a*scale / 2^(15-shift)) kept to 16 bits (wraps)."""
    if not 0 <= shift <= 15:
        raise ValueError(f"msp_scale_q15: shift {shift} must be 0..15 (MSP_SHIFT_SIZE_ERROR)")
    return _wrap16((_i64(a) * int(scale)) >> (15 - shift))


def max_q15(a) -> tuple[int, int]:
    """msp_max_q15: (largest value, index of its last occurrence)."""
    x = _i64(a)
    m = int(x.max())
    return m, int(np.flatnonzero(x == m)[-1])


# ------------------------------------------------------------------------------------------- costs

@dataclass(frozen=True)
class LeaCosts:
    """The cost constants of lea.h's sim_lea_costs, in its field order (pass astuple() to C)."""
    cycles_per_call: float
    cycles_per_command: float
    cycles_per_mac: float
    cycles_per_element: float
    nj_per_call: float
    nj_per_element: float

    def as_tuple(self) -> tuple[float, ...]:
        return astuple(self)


#: LeaCosts field -> platform TOML key (each constant lives there once, with its source).
COST_KEYS = {"cycles_per_call": "lea.cycles_per_call", "cycles_per_command": "lea.cycles_per_command",
             "cycles_per_mac": "lea.cycles_per_element",
             "cycles_per_element": "lea.cycles_per_vector_element",
             "nj_per_call": "lea.nj_per_call", "nj_per_element": "lea.nj_per_element"}


def lea_costs(platform=None) -> LeaCosts:
    """The LEA cost constants of a platform (a sparsenest.board.Platform, a TOML path or name; default the
    shipped msp430fr5994). Raises sparsenest.board.PlatformError naming a missing key."""
    p = platform if isinstance(platform, Platform) else load_platform(platform)
    return LeaCosts(**{field: float(p[key]) for field, key in COST_KEYS.items()})


@dataclass(frozen=True)
class CallCost:
    cycles: int          # CPU held for this many MCLK cycles
    lea_ops: int         # MACs + vector elements
    energy_nj: float


def call_cost(costs: LeaCosts, *, extra_commands: int = 0, macs: int = 0, elements: int = 0) -> CallCost:
    """Cost of one DSPLib call (lea.c's charge(): same sum, same order, rounded up to a whole cycle)."""
    k = costs
    cycles = (k.cycles_per_call + float(extra_commands) * k.cycles_per_command
              + float(macs) * k.cycles_per_mac + float(elements) * k.cycles_per_element)
    energy = float(1 + extra_commands) * k.nj_per_call + float(macs + elements) * k.nj_per_element
    return CallCost(math.ceil(cycles), macs + elements, energy)


def cost_of(costs: LeaCosts, fn: str, **dims: int) -> CallCost:
    """Cost of a successful call by DSPLib name (without msp_): mac_q15(length), matrix_mpy_q15(rows,
    inner, cols), fir_q15(length, taps), and length for the element-wise ones."""
    if fn == "mac_q15":
        return call_cost(costs, macs=dims["length"])
    if fn == "matrix_mpy_q15":
        rows = dims["rows"]
        return call_cost(costs, extra_commands=rows - 1, macs=rows * dims["inner"] * dims["cols"])
    if fn == "fir_q15":
        return call_cost(costs, macs=dims["length"] * dims["taps"])
    if fn in FN:
        return call_cost(costs, elements=dims["length"])
    raise ValueError(f"unknown LEA function {fn!r}; known: {', '.join(FN)}")
