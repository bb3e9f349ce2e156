"""`sparsenest` command line: train, info, import, export-onnx, export-tflite, analyze, compile, simulate, report, harvest, glue."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .levels import level_mask


def _levels(text: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--levels takes comma-separated sparsities like 0.9,0.75,0.5, "
                                         f"not {text!r}")
    return sorted(vals, reverse=True)  # sparsest first, whatever order the user typed


def cmd_train(a) -> int:
    from .train.nested import TrainConfig
    from .train.loop import level_table, train_to_bundle
    cfg = TrainConfig(epochs_dense=a.epochs_dense, epochs_retrain=a.epochs_retrain, lr=a.lr,
                      lr_retrain=a.lr_retrain,
                      batch_size=a.batch_size, scope=a.scope, admm_epochs=a.admm_epochs, seed=a.seed,
                      method_opts=json.loads(a.method_opts) if a.method_opts else {})
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


def cmd_info(a) -> int:
    from .bundle import Bundle
    from .train.loop import level_table
    b = Bundle.load(a.bundle)
    m = b.manifest
    print(f"{a.bundle}: {m['model']['name']} on {m['dataset']['name']} ({m['dataset'].get('note') or 'test split'})")
    print(f"pruning: {m['prune']['method']}, mode {m['prune']['mode']}, scope {m['prune'].get('scope')}")
    print(level_table(b))
    for key, intro in b.intro.items():
        per = " ".join(f"L{lv}:{int(level_mask(intro, lv).sum())}" for lv in range(1, b.n_levels + 1))
        print(f"  {key:<20} {list(intro.shape)!s:<18} nonzeros {per} of {intro.size}")
    return 0


def cmd_export_onnx(a) -> int:
    from .bundle import Bundle
    from .interop.onnx_export import export_level
    b = Bundle.load(a.bundle)
    out = Path(a.output)
    for lv in range(1, b.n_levels + 1):
        path = out / f"level{lv}.onnx"
        if path.exists() and not a.force:
            raise FileExistsError(f"{path} exists; pass --force to replace it")
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
    out = Path(a.output)
    calib = None
    if a.int8:  # post-training quantisation on training inputs of the bundle's data set
        from .compiler.build import calibration_images
        calib = calibration_images(b, a.calib)
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
    report = analyze.analyze_bundle(Bundle.load(a.bundle))
    print(analyze.format_table(report))
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
    return dict(item.split("=", 1) for item in text.split(","))


def cmd_compile(a) -> int:
    from .compiler.build import compile_bundle
    info = compile_bundle(a.bundle, a.output, target=a.target, fmt=_format_arg(a.format),
                          switching=a.switching, evaluate_on=("test" if a.evaluate else None),
                          calib=a.calib, conv=a.conv)
    meta = info["meta"]
    for lv in meta.get("levels", []):
        if lv.get("q15_accuracy") is not None:
            print(f"level {lv['level']}: float {lv['float_accuracy']:.2%}  Q15 {lv['q15_accuracy']:.2%}")
    print(f"C sources in {info['out_dir']}" + (f"; host library {info['library']}" if info.get("library") else ""))
    return 0


def cmd_simulate(a) -> int:
    from .targets.host import simulate_accuracy
    res = simulate_accuracy(a.build, dataset=a.dataset, level=a.level, limit=a.limit)
    for lv, r in sorted(res.items()):
        print(f"level {lv}: C model accuracy {r['accuracy']:.2%} on {r['n']} {a.dataset} test images")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Sub-tools with their own option parsers get their arguments untouched.
    passthrough = {"harvest": "sparsenest.analysis.harvest", "glue": "sparsenest.experiments.glue",
                   "report": "sparsenest.analysis.report"}
    if argv and argv[0] in passthrough:
        import importlib
        return importlib.import_module(passthrough[argv[0]]).main(argv[1:])
    p = argparse.ArgumentParser(prog="sparsenest", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a nested sparse model and write a bundle")
    t.add_argument("--model", default="lenet5")
    t.add_argument("--from", dest="from_bundle", default=None,
                   help="start from this bundle's network (e.g. one made by `sparsenest import`)")
    t.add_argument("--dataset", default=None, help="default: the model's data set")
    t.add_argument("--levels", type=_levels, default=[0.9, 0.75, 0.5],
                   help="comma-separated sparsities, e.g. 0.9,0.75,0.5")
    t.add_argument("--method", default="irregular",
                   choices=["irregular", "row", "column", "block", "pattern"])
    t.add_argument("--mode", default="joint", choices=["no-retrain", "progressive", "joint"])
    t.add_argument("--scope", default="global", choices=["layer", "global"],
                   help="same sparsity in every layer, or one magnitude threshold across layers")
    t.add_argument("--method-opts", default=None, help='JSON, e.g. \'{"block_shape": [4, 4]}\'')
    t.add_argument("--epochs-dense", type=int, default=6)
    t.add_argument("--epochs-retrain", type=int, default=6)
    t.add_argument("--admm-epochs", type=int, default=0, help="ADMM-regularised epochs before pruning")
    t.add_argument("--lr", type=float, default=0.05, help="peak learning rate of dense training")
    t.add_argument("--lr-retrain", type=float, default=0.02, help="peak learning rate of ADMM/retraining")
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--train-limit", type=int, default=None, help="use only N training samples")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("-o", "--output", default="build/lenet5.nest")
    t.add_argument("--force", action="store_true", help="replace an existing bundle")
    t.set_defaults(fn=cmd_train)

    i = sub.add_parser("info", help="describe a bundle")
    i.add_argument("bundle")
    i.set_defaults(fn=cmd_info)

    e = sub.add_parser("export-onnx", help="write each level as ONNX")
    e.add_argument("bundle")
    e.add_argument("-o", "--output", required=True, help="directory for level<k>.onnx")
    e.add_argument("--force", action="store_true")
    e.set_defaults(fn=cmd_export_onnx)

    im = sub.add_parser("import", help="read a TFLite or ONNX model into a bundle (one dense level)")
    im.add_argument("model", help="MODEL.tflite or MODEL.onnx")
    im.add_argument("-o", "--output", required=True, help="bundle directory, e.g. build/kws.nest")
    im.add_argument("--dataset", default=None, help="the data set the model expects (for compile/train --from)")
    im.add_argument("--force", action="store_true", help="replace an existing bundle")
    im.set_defaults(fn=cmd_import)

    et = sub.add_parser("export-tflite", help="write each level (or --level k) as a float32 (or --int8) TFLite model")
    et.add_argument("bundle")
    et.add_argument("-o", "--output", required=True, help="directory for level<k>.tflite")
    et.add_argument("--level", type=int, default=None, help="one level (default: all)")
    et.add_argument("--int8", action="store_true", help="int8 post-training quantisation (level<k>_int8.tflite)")
    et.add_argument("--calib", type=int, default=256, help="calibration inputs for --int8 (training split)")
    et.add_argument("--force", action="store_true")
    et.set_defaults(fn=cmd_export_tflite)

    an = sub.add_parser("analyze", help="index overhead per layer and format, break-even sparsities")
    an.add_argument("bundle")
    an.add_argument("--json", default=None, help="also write the full analysis as JSON")
    an.set_defaults(fn=cmd_analyze)

    c = sub.add_parser("compile", help="compile a bundle to Q15 C (and a host library)")
    c.add_argument("bundle")
    c.add_argument("-o", "--output", required=True, help="build directory, e.g. build/lenet5")
    c.add_argument("--target", default="host", choices=["host", "msp430fr5994"])
    c.add_argument("--format", default="auto", help="auto, a format (csr16, rel8, rel4, bitmap, block, "
                   "rows, cols, pattern, dense) or per layer: fc1=rel8,*=auto")
    c.add_argument("--switching", default="resident", choices=["resident", "staged"])
    c.add_argument("--conv", default="auto", choices=["auto", "im2col"],
                   help="auto: convolutions in csr16 run direct (no im2col copy); im2col: always copy patches")
    c.add_argument("--calib", type=int, default=None, help="calibration images (default 512)")
    c.add_argument("--evaluate", action="store_true", help="float and Q15 accuracy on the test set")
    c.set_defaults(fn=cmd_compile)

    sm = sub.add_parser("simulate", help="accuracy of the compiled C model on the host board")
    sm.add_argument("build")
    sm.add_argument("--dataset", default="mnist")
    sm.add_argument("--level", type=int, default=None, help="one level (default: all)")
    sm.add_argument("--limit", type=int, default=None, help="first N test images only")
    sm.set_defaults(fn=cmd_simulate)

    sub.add_parser("harvest", help="energy-harvesting simulation (sparsenest harvest --help for its options)")
    sub.add_parser("report", help="energy and latency report of a compiled model (sparsenest report --help)")
    sub.add_parser("glue", help="prune a BERT on a GLUE task (sparsenest glue --help for its options)")

    a = p.parse_args(argv)
    try:
        return a.fn(a)
    except (FileExistsError, FileNotFoundError, ValueError, KeyError, RuntimeError) as err:
        # Expected user errors: one clear line, no traceback.
        print(f"sparsenest {a.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
