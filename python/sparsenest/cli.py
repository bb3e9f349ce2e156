"""sparsenest: nested shared-weight sparse networks -> Q15 C for the MSP430FR5994.

One command line for the whole flow: train (a zoo model or your own nn.Module, a built-in data set or your
own .npz / image folder), import, export, analyze, compile, simulate, report, and every make target."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import cli_args as arg
from .levels import level_mask


def cmd_train(a) -> int:
    from . import data
    from .train.loop import level_table, train_to_bundle
    from .train.nested import TrainConfig
    if a.recipe:  # one shared recipe (experiments/recipes.py) sets model, levels and budget
        from .experiments.recipes import RECIPES
        r = RECIPES[a.recipe]
        a.model, a.levels, a.method, a.mode = r.model, list(r.levels), r.method, r.mode
        a.epochs_dense, a.epochs_retrain, a.train_limit = r.epochs_dense, r.epochs_retrain, r.train_limit
        a.lr_retrain, a.method_opts = r.lr_retrain, dict(r.method_opts)
    _check_model_name(a.model)  # before any data is loaded or a minute is spent
    if a.dataset is not None:
        data.check_name(a.dataset)
    arg.check_output(a.output, kind="dir", what="-o")
    cfg = TrainConfig(epochs_dense=a.epochs_dense, epochs_retrain=a.epochs_retrain, lr=a.lr,
                      lr_retrain=a.lr_retrain,
                      batch_size=a.batch_size, scope=a.scope, admm_epochs=a.admm_epochs, seed=a.seed,
                      method_opts=a.method_opts or {},
                      prune_output_rows=a.prune_output_rows)
    if a.mode == "gradual-kd" and not a.from_bundle:
        raise ValueError("--mode gradual-kd distils from an existing network: give that network with --from BUNDLE")
    if a.from_bundle:  # an existing (e.g. imported) network: prune + fine-tune it, no model zoo
        from .interop.train_from import train_from_bundle
        b = train_from_bundle(a.from_bundle, a.output, dataset=a.dataset, levels=a.levels, method=a.method,
                              mode=a.mode, cfg=cfg, train_limit=a.train_limit, force=a.force)
    else:
        b = train_to_bundle(a.output, model=a.model, dataset=a.dataset, levels=a.levels, method=a.method,
                            mode=a.mode, cfg=cfg, train_limit=a.train_limit, force=a.force)
    print(level_table(b))
    print(f"bundle written to {b.path}")
    return 0


def _check_model_name(name: str) -> None:
    from . import models
    from .models import user
    if user.is_user_model(name):
        user.load_class(name)
    elif name not in models.available():
        raise arg.unknown_name("model", name, models.available() + ["path/to/file.py:ClassName"])


def cmd_info(a) -> int:
    from .bundle import Bundle
    b = Bundle.load(a.bundle)
    from .train.loop import level_table  # imports torch: only once the bundle is known good
    m = b.manifest
    print(f"{a.bundle}: {m['model'].get('name', '?')} on {m['dataset']['name']} "
          f"({m['dataset'].get('note') or 'test split'})")
    print(f"pruning: {m['prune'].get('method')}, mode {m['prune'].get('mode')}, scope {m['prune'].get('scope')}")
    print(level_table(b))
    for key, intro in b.intro.items():
        per = " ".join(f"L{lv}:{int(level_mask(intro, lv).sum())}" for lv in range(1, b.n_levels + 1))
        print(f"  {key:<20} {list(intro.shape)!s:<18} nonzeros {per} of {intro.size}")
    return 0


def cmd_export_onnx(a) -> int:
    from .bundle import Bundle
    from .interop.onnx_export import export_level
    from .safe_output import check_output_file
    b = Bundle.load(a.bundle)
    out = Path(a.output)
    paths = [check_output_file(out / f"level{lv}.onnx", inputs=[a.bundle], force=a.force)
             for lv in range(1, b.n_levels + 1)]   # all checked before the first is written
    for lv, path in enumerate(paths, 1):
        print(export_level(b, lv, path))
    return 0


def cmd_import(a) -> int:
    from .interop.cli import import_model
    b = import_model(a.model, a.output, dataset=a.dataset, force=a.force)
    nodes = b.graph["nodes"]
    print(f"{a.model}: {len(nodes)} graph nodes ({', '.join(sorted({n['op'] for n in nodes}))}), "
          f"{sum(v.size for k, v in b.weights.items())} parameters; bundle written to {b.path}")
    return 0


def cmd_export_tflite(a) -> int:
    from .bundle import Bundle
    from .interop.tflite_export import export_level_tflite
    b = Bundle.load(a.bundle)
    if a.level is not None and a.level > b.n_levels:
        raise ValueError(f"--level {a.level} is out of range: {a.bundle} has levels 1..{b.n_levels}")
    out = Path(a.output)
    calib = None
    if a.int8:  # post-training quantisation on training inputs of the bundle's data set
        from .data.calibration import calibration_inputs
        calib = calibration_inputs(b, a.calib)
    for lv in ([a.level] if a.level else range(1, b.n_levels + 1)):
        path = out / f"level{lv}{'_int8' if a.int8 else ''}.tflite"
        if path.exists() and not a.force:
            raise FileExistsError(f"{path} exists; pass --force to replace it")
        export_level_tflite(b, lv, path, calib=calib)
        print(path)
    return 0


def cmd_analyze(a) -> int:
    from .bundle import Bundle
    from .compiler import analyze
    from .safe_output import check_output_file
    if a.json:
        check_output_file(a.json, inputs=[a.bundle], force=a.force)
    from .compiler import choose
    from .compiler.planner import get_target
    b = Bundle.load(a.bundle)
    report = analyze.analyze_bundle(b)
    print(analyze.format_table(report))
    layers = choose.layers_from_bundle(b)
    if layers:
        tgt = get_target(a.target)
        ch = choose.choose(layers, a.objective, fits=choose.estimate_fits(layers, tgt),
                           fits_far=choose.estimate_fits(layers, tgt, far=True) if tgt.upper_fram_bytes else None,
                           engines=("cpu", "lea") if a.engine == "auto" else ("cpu",),
                           lea_ram_bytes=min(tgt.lea_bytes, tgt.sram_arena_budget))
        print(f"\nlayouts `compile --format auto --objective {a.objective} --engine {a.engine} --target {a.target}` "
              f"would choose (budget estimated from weights, biases and descriptors):")
        print(choose.format_choice(ch))
        report["choice"] = ch.to_dict()
        from .compiler.engine_breakeven import engine_breakeven, format_breakeven
        be = engine_breakeven(layers, metric="energy" if a.objective == "energy" else "time")
        print("\n" + format_breakeven(be))
        report["engine_breakeven"] = be
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1, default=_jsonable))
        print(f"written {a.json}")
    return 0


def _jsonable(o):
    import numpy as np
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _format_arg(text: str):
    """`auto`, `csr16`, or per layer: `fc1=rel8,conv1=dense,*=auto`."""
    if "=" not in text:
        return text
    items = [item.split("=", 1) for item in text.split(",")]
    if any(len(kv) != 2 for kv in items):
        raise argparse.ArgumentTypeError(f"--format per layer is LAYER=FORMAT[,LAYER=FORMAT...], not {text!r}")
    return dict(items)


def _check_format(fmt, bundle) -> None:
    """Every format named exists, and every layer named is a conv/linear layer of the bundle."""
    from .compiler.formats import FORMATS
    layers = [n["name"] for n in bundle.graph["nodes"] if n["op"] in ("conv1d", "conv2d", "linear")]
    spec = fmt if isinstance(fmt, dict) else {"*": fmt}
    for layer, f in spec.items():
        if layer != "*" and layer not in layers:
            raise ValueError(f"--format names layer {layer!r}{arg.did_you_mean(layer, layers)}, which is not a "
                             f"conv/linear layer of "
                             f"{bundle.path}; its layers: {', '.join(layers)}")
        if f != "auto" and f not in FORMATS:
            raise ValueError(f"--format {f!r} is not a format{arg.did_you_mean(f, ['auto', *FORMATS])}; choose auto "
                             f"or one of {', '.join(FORMATS)}")


def cmd_compile(a) -> int:
    from .bundle import Bundle
    from .compiler.build import compile_bundle
    from .data.calibration import calibration_inputs, evaluation_set
    from .train.block_shapes import bundle_format_opts
    arg.check_output(a.output, kind="dir", what="-o")
    b = Bundle.load(a.bundle)
    _check_format(a.format, b)
    info = compile_bundle(b, a.output, target=a.target, fmt=a.format, format_opts=bundle_format_opts(b),
                          switching=a.switching, evaluate=evaluation_set if a.evaluate else None,
                          calib=calibration_inputs(b, a.calib), conv=a.conv, intermittent=a.intermittent,
                          checkpoint=a.checkpoint, force=a.force, objective=a.objective, engine=a.engine)
    meta = info["meta"]
    if info.get("choice") is not None:
        from .compiler.choose import format_choice
        print(format_choice(info["choice"]))
    if a.engine != "cpu" and info.get("choice") is None:   # per layer: the engine and its predicted cycles
        from .compiler.lea_codegen import describe
        for line in describe(meta.get("layers", {}), meta.get("n_levels", 1)):
            print(line)
    for lv in meta.get("levels", []):
        if lv.get("q15_accuracy") is not None:
            print(f"level {lv['level']}: float {lv['float_accuracy']:.2%}  Q15 {lv['q15_accuracy']:.2%}")
    print(f"C sources in {info['out_dir']}" + (f"; host library {info['library']}" if info.get("library") else ""))
    return 0


def _build_dataset(build: str, asked: str | None) -> tuple[str, int]:
    """(data set, number of levels) of a host build, from its model_meta.json: the data set the bundle
    was trained on unless `asked` names another (refused: the model was not made for it)."""
    meta = arg.read_json_file(Path(build) / "model_meta.json", "build metadata")
    if not isinstance(meta, dict) or meta.get("format") != "sparsenest-build":
        raise ValueError(f"{build}: model_meta.json is not a sparsenest build's metadata; compile a bundle "
                         "with `sparsenest compile BUNDLE -o DIR` and simulate DIR")
    n_levels = meta.get("n_levels")
    dataset = (((meta.get("bundle") or {}).get("dataset") or {}).get("name")
               if isinstance(meta.get("bundle"), dict) else None)
    if not (isinstance(n_levels, int) and n_levels >= 1):
        raise ValueError(f"{build}/model_meta.json key 'n_levels': {n_levels!r} is not a level count; "
                         "re-compile the bundle")
    if meta.get("target", "host") != "host":
        raise ValueError(f"{build} was compiled for {meta.get('target')!r}, which the host board cannot run; "
                         f"simulate it in our MSP430FR5994 simulator with `sparsenest sim {build}`, or compile "
                         "the bundle for the host (sparsenest compile BUNDLE -o DIR) and simulate that")
    if asked is not None and dataset is not None and asked != dataset:
        raise ValueError(f"--dataset {asked!r} but {build} was compiled from a model of {dataset!r}; "
                         f"leave --dataset out or give {dataset!r}")
    if asked is None and not isinstance(dataset, str):
        raise ValueError(f"{build}/model_meta.json does not record the data set; pass --dataset")
    return asked or dataset, n_levels


def cmd_simulate(a) -> int:
    from .targets.host import simulate_accuracy
    dataset, n_levels = _build_dataset(a.build, a.dataset)
    if a.level is not None and not 1 <= a.level <= n_levels:
        raise ValueError(f"--level {a.level} is out of range: {a.build} has levels 1..{n_levels}")
    res = simulate_accuracy(a.build, dataset=dataset, level=a.level, limit=a.limit)
    for lv, r in sorted(res.items()):
        print(f"level {lv}: C model accuracy {r['accuracy']:.2%} on {r['n']} {dataset} test images")
    return 0


# Commands whose options and work live in their own module (`add_arguments(parser)` + `run(args)`); the
# module is imported only when its command runs, so `sparsenest --help` stays fast.
MODULE_COMMANDS = {
    "sweep": ("sparsenest.experiments.sweep",
              "search nested levels for an energy budget on Ray Tune (needs the [sweep] extra)"),
    "report": ("sparsenest.analysis.report", "energy and latency report of a compiled model"),
    "harvest": ("sparsenest.analysis.harvest", "energy-harvesting simulation of per-level costs on a power trace"),
    "harvest-intermittent": ("sparsenest.analysis.harvest_intermittent",
                             "intermittent vs continuous builds on the harvest traces (after bench intermittent)"),
    "glue": ("sparsenest.experiments.glue", "prune a BERT on a GLUE task"),
    "firmware": ("sparsenest.targets.firmware", "MSP430FR5994 firmware of a compiled model: build, sim, flash"),
    "sim": ("sparsenest.targets.fr5994fw",
            "run an MSP430 build's chip image in our MSP430FR5994 simulator (cycles, energy, golden check)"),
    "msp430": ("sparsenest.targets.msp430", "an MSP430 ELF: size, mspdebug run, pre-flash checks, flash"),
    "demo": ("sparsenest.experiments.demo", "the whole flow on LeNet-5/MNIST into build/demo (make demo)"),
}
BENCH_COMMANDS = {
    "train": ("sparsenest.experiments.bench.train", "LeNet-5 in every training mode vs a dense baseline"),
    "host": ("sparsenest.experiments.bench.host", "a compiled model on the host board vs a dense Q15 build"),
    "mcu": ("sparsenest.experiments.bench.mcu", "instructions and cycles per level and layer in the simulators"),
    "lea": ("sparsenest.experiments.bench.lea", "LeNet-5 on the LEA engine vs CPU/MPY32 and dense LEA, chip image"),
    "kernels": ("sparsenest.experiments.bench.kernels",
                "CPU/MPY32 cycles per level vs a baseline git revision, both simulated in the same run"),
    "sim": ("sparsenest.experiments.bench.sim", "instructions/s of our FR5994 simulator vs mspdebug"),
    "switch": ("sparsenest.experiments.bench.switch",
               "staged level switches in our FR5994 simulator vs the switch time model"),
    "intermittent": ("sparsenest.experiments.bench.intermittent",
                     "intermittent vs continuous builds, and a power cut after every FRAM byte count"),
    "kws": ("sparsenest.experiments.bench.kws", "MLPerf Tiny KWS/AD models imported from TFLite"),
    "table1": ("sparsenest.experiments.bench.table1", "the seed report's Table 1 protocol (BERT on GLUE)"),
    "table2": ("sparsenest.experiments.bench.table2", "the seed report's Table 2 on four tasks"),
    "sweep": ("sparsenest.experiments.sweep_bench", "random search vs Optuna TPE on the same trial budget"),
    "bound": ("sparsenest.experiments.bench.bound",
              "nested index bytes vs the level-map entropy bound, kernel cycles per level in our simulator"),
    "objectives": ("sparsenest.experiments.bench.objectives",
                   "layout choice per objective vs the smallest-format auto, simulated; cycle-model calibration"),
    "harvest": ("sparsenest.experiments.bench.harvest",
                "per-level costs measured in our simulator, inferences across power cycles, closed loop"),
}


def main(argv: list[str] | None = None) -> int:
    """Every sub-command, its argument checks and its errors: one line on stderr, no traceback
    (cli_args.run_guarded; SPARSENEST_DEBUG=1 shows it)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    a = _parser(argv).parse_args(argv)
    name = a.command + (f" {a.bench}" if a.command == "bench" else "")
    return arg.run_guarded(f"sparsenest {name}", lambda: a.fn(a))


def run_command(command: str, argv: list[str] | None = None) -> int:
    """`python -m sparsenest.<module>` = `sparsenest <command>`: the modules' main() is this one call."""
    return main(command.split() + (sys.argv[1:] if argv is None else list(argv)))


def _words(argv: list[str]) -> list[str]:
    return [w for w in argv if not w.startswith("-")]


def _add_module_commands(sub, table: dict, chosen: str | None) -> None:
    """One sub-parser per module command; only the chosen one imports its module and adds its options."""
    import importlib
    for name, (module, text) in table.items():
        sp = sub.add_parser(name, help=text, description=text)
        if name == chosen:
            mod = importlib.import_module(module)
            sp.description = mod.__doc__ or text
            mod.add_arguments(sp)
            sp.set_defaults(fn=mod.run)


def _recipes() -> list[str]:
    from .experiments.recipes import RECIPES
    return list(RECIPES)


def _zoo() -> list[str]:
    from . import models
    return models.available()


def _data_sets() -> list[str]:
    from . import data
    return data.available()


def _parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    from . import __version__
    words = _words(argv or [])
    p = arg.Parser(prog="sparsenest", description=__doc__)
    p.add_argument("--version", action="version", version=f"sparsenest {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # the lists import torch: only when `train` is the command (its --help), not for every command
    zoo, sets = (", ".join(_zoo()), ", ".join(_data_sets())) if words[:1] == ["train"] else ("...", "...")
    t = sub.add_parser("train", help="train a nested sparse model and write a bundle")
    t.add_argument("--model", default="lenet5",
                   help="a zoo model (" + zoo + ") or your own: path/to/file.py:ClassName")
    t.add_argument("--recipe", default=None, choices=sorted(_recipes()),
                   help="a shared default bundle's recipe (experiments/recipes.py): sets the model, levels, "
                        "method, mode, epochs and training images")
    t.add_argument("--from", dest="from_bundle", default=None,
                   help="start from this bundle's network (e.g. one made by `sparsenest import`)")
    t.add_argument("--dataset", default=None,
                   help="a built-in data set (" + sets + "), a .npz file (x/y or x_train/y_train/"
                        "x_test/y_test) or an image folder (a subfolder per class); default: the model's data set")
    t.add_argument("--levels", type=arg.sparsity_list, default=[0.9, 0.75, 0.5],
                   help="comma-separated sparsities in [0, 1), e.g. 0.9,0.75,0.5")
    t.add_argument("--method", default="irregular",
                   choices=["irregular", "row", "column", "block", "pattern"],
                   help="what is pruned: single weights, rows, columns, blocks or PCONV kernel patterns")
    t.add_argument("--mode", default="joint", choices=["no-retrain", "progressive", "joint", "gradual-kd"],
                   help="how the levels are trained (README: Training); gradual-kd (with --from only): gradual "
                        "pruning distilled from the source network, train/gradual.py")
    t.add_argument("--scope", default="global", choices=["layer", "global"],
                   help="same sparsity in every layer, or one magnitude threshold across layers")
    t.add_argument("--method-opts", type=arg.json_object, default=None,
                   help='JSON, e.g. \'{"block_shape": [4, 4]}\'')
    t.add_argument("--prune-output-rows", action="store_true",
                   help="row/block: also prune rows of the output layer (default: off, the output layer keeps "
                        "every row, since a removed row is a class the model can no longer predict)")
    t.add_argument("--epochs-dense", type=arg.epochs, default=6, help="epochs of dense training")
    t.add_argument("--epochs-retrain", type=arg.epochs, default=6, help="epochs of retraining the sparse levels")
    t.add_argument("--admm-epochs", type=arg.epochs, default=0, help="ADMM-regularised epochs before pruning")
    t.add_argument("--lr", type=arg.positive_float, default=0.05, help="peak learning rate of dense training")
    t.add_argument("--lr-retrain", type=arg.positive_float, default=0.02,
                   help="peak learning rate of ADMM/retraining")
    t.add_argument("--batch-size", type=arg.batch_size, default=128, help="training batch size")
    t.add_argument("--train-limit", type=arg.count, default=None, help="use only N training samples")
    t.add_argument("--seed", type=arg.seed, default=0, help="seed of the initial weights, shuffling and splits")
    t.add_argument("-o", "--output", default="build/lenet5.nest", metavar="PATH", help="bundle to write")
    t.add_argument("--force", action="store_true", help="replace an existing bundle")
    t.set_defaults(fn=cmd_train)

    i = sub.add_parser("info", help="describe a bundle")
    i.add_argument("bundle", help="a bundle folder (NAME.nest)")
    i.set_defaults(fn=cmd_info)

    e = sub.add_parser("export-onnx", help="write each level as ONNX")
    e.add_argument("bundle", help="a bundle folder (NAME.nest)")
    e.add_argument("-o", "--output", type=arg.output_dir, required=True, help="directory for level<k>.onnx")
    e.add_argument("--force", action="store_true", help="replace existing level<k>.onnx files")
    e.set_defaults(fn=cmd_export_onnx)

    im = sub.add_parser("import", help="read a TFLite or ONNX model into a bundle (one dense level)")
    im.add_argument("model", type=arg.input_file, help="MODEL.tflite or MODEL.onnx")
    im.add_argument("-o", "--output", type=arg.output_dir, required=True, help="bundle directory, e.g. build/kws.nest")
    im.add_argument("--dataset", default=None, help="the data set the model expects (for compile/train --from)")
    im.add_argument("--force", action="store_true", help="replace an existing bundle")
    im.set_defaults(fn=cmd_import)

    et = sub.add_parser("export-tflite", help="write each level (or --level k) as a float32 (or --int8) TFLite model")
    et.add_argument("bundle", help="a bundle folder (NAME.nest)")
    et.add_argument("-o", "--output", type=arg.output_dir, required=True, help="directory for level<k>.tflite")
    et.add_argument("--level", type=arg.int_range(1, name="level"), default=None, help="one level (default: all)")
    et.add_argument("--int8", action="store_true", help="int8 post-training quantisation (level<k>_int8.tflite)")
    et.add_argument("--calib", type=arg.count, default=256, help="calibration inputs for --int8 (training split)")
    et.add_argument("--force", action="store_true", help="replace existing level<k>.tflite files")
    et.set_defaults(fn=cmd_export_tflite)

    an = sub.add_parser("analyze", help="index overhead per layer and format, break-even sparsities")
    an.add_argument("bundle", help="a bundle folder (NAME.nest)")
    an.add_argument("--json", type=arg.output_file, default=None, help="also write the full analysis as JSON")
    an.add_argument("--force", action="store_true", help="replace an existing --json file")
    an.add_argument("--objective", default="time", choices=["time", "energy", "bytes"],
                    help="the per-layer layout table: what `compile --format auto` minimises")
    an.add_argument("--target", default="msp430fr5994", choices=["host", "msp430fr5994"],
                    help="whose FRAM budget the layout table respects")
    an.add_argument("--engine", default="cpu", choices=["cpu", "auto"],
                    help="auto: the layout table also considers the LEA engine per layer (as compile --engine auto)")
    an.set_defaults(fn=cmd_analyze)

    c = sub.add_parser("compile", help="compile a bundle to Q15 C (and a host library)")
    c.add_argument("bundle", help="a bundle folder (NAME.nest)")
    c.add_argument("-o", "--output", required=True, help="build directory, e.g. build/lenet5")
    c.add_argument("--target", default="host", choices=["host", "msp430fr5994"],
                   help="host: C + a host library for `simulate`; msp430fr5994: C for `firmware` and `sim`")
    c.add_argument("--format", type=_format_arg, default="auto",
                   help="auto, a format (csr16, rel8, rel4, bitmap, block, "
                   "rows, cols, pattern, dense, hbitmap) or per layer: fc1=rel8,*=auto")
    c.add_argument("--objective", default="time", choices=["time", "energy", "bytes"],
                   help="with --format auto: per layer the format and conv method with the least predicted "
                        "time (cycles averaged over the levels), energy or weight bytes, within the target's "
                        "FRAM budget (compiler/choose.py)")
    c.add_argument("--switching", default="resident", choices=["resident", "staged"],
                   help="resident: every level in FRAM; staged: a working copy that gets the added weights")
    c.add_argument("--conv", default="auto", choices=["auto", "im2col"],
                   help="auto: convolutions run direct (no im2col copy) in every format but dense, rows, cols; "
                        "im2col: always copy patches")
    c.add_argument("--engine", default="cpu", choices=["cpu", "lea", "auto"],
                   help="cpu: CPU/MPY32 kernels; lea: conv/linear layers the LEA engine supports run on the "
                        "FR5994's LEA accelerator; auto: with --format auto, per layer the engine, format and conv "
                        "method with the least predicted --objective (compiler/choose.py; otherwise LEA where its "
                        "modelled cost is lower; the LEA timing is a model with cited constants until a board "
                        "measures it)")
    c.add_argument("--intermittent", action="store_true",
                   help="keep the inference's progress in FRAM so it resumes after a power failure")
    c.add_argument("--checkpoint", default="auto", choices=["auto", "layer", "row"],
                   help="with --intermittent: commit progress per layer, per output row of convolutions, "
                        "or auto (rows for long convolutions)")
    c.add_argument("--calib", type=arg.count, default=None, help="calibration images (default 512)")
    c.add_argument("--evaluate", action="store_true", help="float and Q15 accuracy on the test set")
    c.add_argument("--force", action="store_true",
                   help="replace an existing build folder (only one that sparsenest compile wrote)")
    c.set_defaults(fn=cmd_compile)

    sm = sub.add_parser("simulate", help="accuracy of the compiled C model on the host board")
    sm.add_argument("build", help="a build folder of `sparsenest compile` (target host)")
    sm.add_argument("--dataset", default=None,
                    help="default: the data set the build's bundle was trained on (another is refused)")
    sm.add_argument("--level", type=arg.int_range(1, name="level"), default=None, help="one level (default: all)")
    sm.add_argument("--test-limit", "--limit", dest="limit", type=arg.count, default=None,
                    help="first N test images only")
    sm.set_defaults(fn=cmd_simulate)

    _add_module_commands(sub, MODULE_COMMANDS, words[0] if words else None)
    bench = sub.add_parser("bench", help="benchmarks (the make bench* targets)", description="benchmarks")
    _add_module_commands(bench.add_subparsers(dest="bench", required=True, metavar="BENCHMARK"), BENCH_COMMANDS,
                         words[1] if len(words) > 1 and words[0] == "bench" else None)
    return p


if __name__ == "__main__":
    sys.exit(main())
