"""`sparsenest report`: the energy and latency report of a compiled nested model.

    sparsenest report build/lenet5 -o build/lenet5/report [--samples build/bench/mcu/cycle_samples.json]
    python -m sparsenest.analysis.report build/demo/host --no-sim

    from sparsenest.analysis.report import build_report
    rep = build_report("build/lenet5", "build/lenet5/report")   # the report.json dict

Input: a build directory (``model_meta.json``; its bundle is found through ``meta["bundle"]["path"]`` or
``--bundle``), a directory holding one under ``host/`` (``make demo``'s ``build/demo``), or a bundle
(``*.nest``: compiled here, format ``auto``).

Output directory: ``report.md``, ``report.html``, ``report.json`` (every number; validates against
``analysis/report_schema.json``), ``figures/*.png``, ``cycle_model_<kernels>.json``
(the calibrated cycle models used), ``cycle_samples.json`` (this model's own simulator samples, in the
``make bench-mcu`` schema, so other reports can calibrate on them) and ``builds/`` (the resident, staged,
MSP430 and dense-twin compilations the measurements ran on).

What the report says, in order: a summary box (per level accuracy float / Q15, latency, energy; the dense
baseline; storage; the costliest switch; the training budget; each number tagged with its source), the
sources' legend, the training budget the bundle records ("not recorded" for bundles without one), per level
accuracy / storage / latency / energy (figures: accuracy vs sparsity, accuracy vs energy, latency and energy
per level, per-layer latency), the dense baseline (the same network compiled dense in Q15), the cost
model's calibration, storage and the MSP430FR5994 memory map, level switches, break-even sparsities,
energy harvesting, and, only for a model and data set the seed report describes (LeNet-5 on MNIST), the
seed report's Table 2 beside ours with our training budget as caveat and its LeNet-5 thresholds. The seed
report is Table 2 of the source report this project reproduces.

Every number carries its provenance (``SOURCES``): measured on the host board (counters, FRAM write
log), measured in our FR5994 simulator (chip image: FRAM waits, cache, DMA),
predicted by the cost model (calibrated on simulator samples, or the UNCALIBRATED fallback table),
platform constants (data sheet / user's guide / stated assumption), the compiler's exact byte counts,
the analyzer's storage model, the golden Q15 model, the harvesting simulation, or the seed report.

What is measured how:
* host board (boards/host): per-layer operation counters of one inference per level (the cost model's
  inputs) and the bytes every level switch writes to FRAM, from the write log of a staged and a resident
  build (each from->to pair, starting from a freshly loaded image); the dense twin's counters (its Q15
  accuracy from the golden model on as many test images as the levels');
* our FR5994 simulator (when the model links for the chip and the toolchain is installed): instructions and
  cycles per inference and per layer with the MPY32 kernels and with the reference C kernels (multiplies
  through the C helper), outputs checked bit for bit against the golden model; the cycles of every level
  switch of a staged build;
* cost model (sparsenest.analysis.cost): a cycle model per kernel back-end fitted on simulator samples (this
  model's own, plus any ``--samples`` files), with a held-out check when other samples exist; latency
  and energy of levels the simulator cannot run (weights in upper FRAM add their DMA), the LEA back-end
  estimate, the µJ / µs of switches, and latency / energy break-even sparsities per layer.

The package: ``collect.collect`` measures (``measure.py``; the calibration samples' code in
``calibration_samples.py`` reads samples that ``analysis/calibration.py`` measures) and assembles report.json's dict from ``sections.py``, ``breakeven.py``,
``overview.py`` (summary, dense baseline, memory map) and ``training.py``; ``figures.py`` draws one figure per
function; ``render.py`` renders ``templates/*.j2``; ``write.build_report`` does all three; ``cli.main`` is the
command line.
"""
from .breakeven import LENET5_LAYERS, SEED_CPU_THRESHOLD, SEED_LEA_THRESHOLD, seed_threshold_analysis
from ..calibration import euler_schedule
from .calibration_samples import DEFAULT_SAMPLES, SAMPLES_SCHEMA, fit_models, fit_samples, load_samples
from .cli import add_arguments, main, run, summary
from .collect import Collected, collect
from .measure import check_report_dir, dense_twin, layer_formats, resolve_input
from .provenance import SCHEMA_PATH, SOURCES, ReportError, load_schema, validate_report
from .render import render_html, render_markdown
from .write import build_report

_check_out_dir = check_report_dir   # the name tests/test_report.py uses

__all__ = ["build_report", "collect", "Collected", "validate_report", "load_schema", "SCHEMA_PATH", "SOURCES",
           "resolve_input", "layer_formats", "dense_twin", "load_samples", "fit_samples", "fit_models",
           "DEFAULT_SAMPLES", "SAMPLES_SCHEMA", "euler_schedule", "seed_threshold_analysis", "LENET5_LAYERS",
           "SEED_CPU_THRESHOLD", "SEED_LEA_THRESHOLD", "render_markdown", "render_html", "add_arguments", "run", "main", "summary",
           "ReportError"]
