"""What every number of a report carries: its unit and its provenance (`SOURCES`), and report.json's format
and schema (`report_schema.json`, shipped beside the package)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

import numpy as np

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "report_schema.json"
FORMAT, VERSION = "sparsenest-report", 1

#: Provenance of every number in the report (the JSON's "source" fields take these keys).
SOURCES = {
    "host_board": "measured on the host board (boards/host) running the generated C: operation counters, "
                  "FRAM write log",
    "fr5994_sim": "measured in our MSP430FR5994 simulator (boards/msp430fr5994/sim) on the chip image: "
                  "instructions, CPUXv2 cycles with FRAM wait states, cache, DMA and LEA time, energy from "
                  "board.toml's constants (a model until a board confirms it)",
    "fr5994_sim+platform": "our simulator's cycles, converted to time and energy with the platform constants",
    "cost_model_calibrated": "predicted by sparsenest.analysis.cost with a cycle model calibrated on our "
                             "FR5994 simulator's samples",
    "cost_model_partly_calibrated": "predicted by sparsenest.analysis.cost; some layers use the UNCALIBRATED fallback "
                                    "cycle table (listed with the number)",
    "cost_model_uncalibrated": "predicted by sparsenest.analysis.cost with the UNCALIBRATED fallback cycle table "
                               "(instruction-count estimates, sparsenest.analysis.cost.FALLBACK_TABLE)",
    "cost_model_platform": "predicted by sparsenest.analysis.cost from platform constants alone (no cycle calibration "
                           "involved): FRAM copies, DMA",
    "lea_model": "estimated by sparsenest.analysis.cost.lea_estimate from LEA figures measured by others (platform "
                 "file, not re-measured in this project); non-matrix layers on the CPU as predicted",
    "platform_constant": "platform file constant (its reference: data sheet, user's guide, measurement or "
                         "stated assumption)",
    "compiler": "exact byte counts of the generated C arrays (compiler encoders, model_meta.json)",
    "analyzer": "sparsenest.compiler.analyze storage model (nonzeros spread evenly; exact encoder byte "
                "formulas)",
    "golden_q15": "accuracy of the golden Q15 integer model (the C build equals it bit for bit) on the "
                  "data set's test split",
    "float_eval": "accuracy of the masked float model on the data set's test split",
    "bundle": "recorded in the bundle at training time",
    "harvest_sim": "sparsenest.analysis.harvest event-driven simulation on the shipped trace, with the per-level and "
                   "switch costs stated in the report",
    "seed_report": "the seed report: Table 2 of the source report this project reproduces (nested sparse "
                   "networks on the MSP430FR5994)",
}

#: Short tags of the sources, as the Markdown prints them beside a number.
TAGS = {"host_board": "H", "fr5994_sim": "S", "fr5994_sim+platform": "S+", "cost_model_calibrated": "P",
        "cost_model_partly_calibrated": "P~", "cost_model_uncalibrated": "P*", "cost_model_platform": "Pp",
        "lea_model": "E", "platform_constant": "C", "compiler": "B", "analyzer": "A", "golden_q15": "G",
        "float_eval": "F", "bundle": "T", "harvest_sim": "HS", "seed_report": "R"}

class ReportError(RuntimeError):
    """The input cannot be reported on (the message says what is missing and what to do)."""


def M(value, unit: str, source: str, **extra) -> dict:
    """One number (or vector / matrix) with its unit and provenance."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    return {"value": jsonable(value), "unit": unit, "source": source, **jsonable(extra)}


def jsonable(o):
    if isinstance(o, Mapping):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return jsonable(o.tolist())
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, (np.floating, float)):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, Path):
        return str(o)
    return o


def log_line(msg: str) -> None:
    print(msg, flush=True)


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def validate_report(rep: Mapping) -> None:
    """Raise jsonschema.ValidationError when `rep` does not follow report_schema.json."""
    try:
        import jsonschema
    except ImportError:
        raise ReportError("validating a report needs the jsonschema package (pip install -r requirements.txt)") from None
    jsonschema.Draft202012Validator(load_schema()).validate(rep)
