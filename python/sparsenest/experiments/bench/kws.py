"""`make bench-kws`: the MLPerf Tiny models through sparsenest.

1. The imported KWS DS-CNN (float32 and int8 files) on the whole official Speech Commands v0.02 test set
   (4,890 clips, MLPerf Tiny MFCCs): our float graph vs the ai-edge-litert interpreter on the same features.
2. Nested levels (`train --from ... --mode gradual-kd`: gradual pruning distilled from the dense model,
   depthwise/first/last layers at half the level's sparsity, on the speaker-disjoint train part), float
   and Q15 (golden) accuracy per level on the held-out speakers beside the dense model's, FR5994 fit
   (depthwise convolutions csr16, so they and the pointwise ones run in place), levels 1..k of the largest
   set that links run in our FR5994 simulator for latency and energy ("S"; others predicted, "P*"), and
   the int8 MLPerf model's size beside ours.
3. The anomaly-detection autoencoder: nested levels (no-retrain: no ToyCar data here), which fit the
   FR5994's FRAM, and each level's reconstruction error against the interpreter's dense output.

    sparsenest bench kws [-o build/bench-kws] [--nested BUNDLE] [--epochs 30] [--sim-inputs 1]
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from ...data import kws_mlperf
from ...levels import level_mask
from ...board import mclk_hz
from ...paths import PROJECT_ROOT
from ...interop.tflite_import import import_tflite

MODELS = PROJECT_ROOT.parent / "shared" / "data" / "models" / "mlperf-tiny"
KWS_LEVELS = (0.7, 0.5, 0.3)
AD_LEVELS = (0.9, 0.75, 0.5)
SIM_FORMAT = "csr16"   # the simulated chip image's format (simulate_device)


def interpret(model: Path | bytes, x: np.ndarray, batch: int = 512, reference_kernels: bool = False) -> np.ndarray:
    """ai-edge-litert on a float batch (int8 models get their own input quantisation, outputs dequantised).
    reference_kernels: the built-in reference kernels instead of the default (XNNPACK) ones."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    kw = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    if reference_kernels:
        kw["experimental_op_resolver_type"] = OpResolverType.BUILTIN_REF
    it = Interpreter(**kw, num_threads=1)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    ys = []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        it.resize_tensor_input(inp["index"], list(xb.shape))
        it.allocate_tensors()
        if inp["dtype"] != np.float32:
            s, z = inp["quantization"]
            lim = np.iinfo(inp["dtype"])
            xb = np.clip(np.round(xb / s) + z, lim.min, lim.max).astype(inp["dtype"])
        it.set_tensor(inp["index"], xb)
        it.invoke()
        y = it.get_tensor(out["index"]).astype(np.float32)
        if out["dtype"] != np.float32:
            s, z = out["quantization"]
            y = (y - z) * s
        ys.append(y)
    return np.concatenate(ys)


def ours(bundle, x: np.ndarray, level: int | None = None) -> np.ndarray:
    from ...interop.torch_net import bundle_network
    with torch.no_grad():
        return bundle_network(bundle, level)(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()


def kws_full_test_set() -> dict:
    from ... import data
    ds = data.load("speech_commands_mlperf", "all")
    res = {"n": len(ds.y), "note": ds.note}
    for name in ("kws_ref_model_float32", "kws_ref_model_int8"):
        model = MODELS / f"{name}.tflite"
        b = import_tflite(model)
        lite = interpret(model, ds.x.transpose(0, 2, 3, 1))
        mine = ours(b, ds.x)
        res[name] = {"ours": float((mine.argmax(1) == ds.y).mean()), "litert": float((lite.argmax(1) == ds.y).mean()),
                     "agree": float((mine.argmax(1) == lite.argmax(1)).mean()), "file_bytes": model.stat().st_size}
    return res


def device_formats(bundle) -> dict:
    """auto formats, but csr16 for depthwise (grouped) convolutions: csr16 runs them direct with a padded
    copy, so they write over their input (compiler/inplace.py) and the DS-CNN keeps one activation map."""
    return {"*": "auto"} | {n["name"]: "csr16" for n in bundle.graph["nodes"] if int(n.get("groups", 1) or 1) > 1}


def simulate_device(bundle, fit: dict, calib: np.ndarray, x: np.ndarray, y: np.ndarray, out: Path) -> dict:
    """Levels 1..k of the largest level set that fits, as the chip image (csr16) in our FR5994 simulator (every
    input at every level, outputs checked bit for bit against the golden model). A linked image whose
    code overflows the planner's lower-FRAM code reserve is compiled again with that much less lower FRAM
    for model data (more weights stream from upper FRAM), up to 3 times."""
    from ...compiler.build import compile_bundle
    from ...compiler.codegen import CodegenError
    from ...compiler.planner import PlanError
    from ...targets import firmware, msp430
    from .table2 import refit_lower_fram, simulate_levels, truncated
    for k in range(fit["k_device"], 0, -1):
        row = fit["levels"][k - 1]
        if not row["fits"]:
            continue
        bk = truncated(bundle, k) if k < bundle.n_levels else bundle
        # one format kernel (csr16 everywhere) keeps the image's code small: with auto's several kernels
        # the DS-CNN's code overflowed lower FRAM even after three refits
        try:
            info = compile_bundle(bk, out / f"L{k}-sim", target="msp430fr5994", fmt=SIM_FORMAT, calib=calib,
                                  build=False, force=True)
        except (PlanError, CodegenError):
            continue
        mdir, over, refits = Path(info["out_dir"]), 0, []
        for attempt in range(4):
            try:
                r = simulate_levels(mdir, firmware.load_qmodel(mdir, bundle=bk), x, y, k)
                return {"k": k, "dir": str(mdir), "refits": refits, "per_level": r["per_level"],
                        "regions": r["regions"], "compared": r["compared"]}
            except msp430.RegionOverflowError as e:
                if e.region != "LOWER_FRAM" or attempt == 3:
                    break
                over += e.bytes_over
                refits.append(over)
                try:
                    mdir, _ = refit_lower_fram(bk, SIM_FORMAT, calib, out / f"L{k}-refit{attempt}", over)
                except (PlanError, CodegenError) as e2:  # what must stay in lower FRAM does not fit
                    refits.append(str(e2).split(" Breakdown")[0])
                    break
    return {"k": 0}


def device_levels(bundle, out: Path, calib: np.ndarray, sim_x: np.ndarray | None = None,
                  sim_y: np.ndarray | None = None) -> dict:
    """FR5994 fit per level, latency/energy simulated in our FR5994 simulator ("S") for the levels of the
    largest set that links (when sim_x is given), else the cost model's uncalibrated prediction ("P*")
    from host counters of the same build."""
    from ...analysis.cost import CycleModel, load_platform, predict_inference
    from ...compiler.build import compile_bundle
    from .table2 import device_fit, host_layers
    from ...targets.host import HostSim
    fmt = device_formats(bundle)
    fit = device_fit(bundle, fmt, out / "device", calib)
    simulated = simulate_device(bundle, fit, calib, sim_x, sim_y, out / "device") if sim_x is not None \
        else {"k": 0}
    host = out / "host"
    shutil.rmtree(host, ignore_errors=True)
    # the host build only counts operations; a large FRAM budget lets levels that do not fit the chip count too
    info = compile_bundle(bundle, host, target="host", fmt=fmt, calib=calib,
                          target_overrides={"fram_bytes": 1 << 24})
    sim = HostSim(host)
    platform, cm = load_platform(), CycleModel.fallback_only()
    rows = []
    for lv in range(1, bundle.n_levels + 1):
        pred = predict_inference(host_layers(sim, info["meta"], calib[:1], lv), platform, cm, lea=False)["total"]
        f = fit["levels"][lv - 1]
        row = {"level": lv, "fits": f["fits"], "lower_fram_bytes": f.get("lower_bytes"),
               "upper_fram_bytes": f.get("upper_bytes"), "error": f.get("error"),
               "latency_s": pred["time_us"] * 1e-6, "energy_uj": pred["energy_uj"], "macs": pred["macs"], "how": "P*"}
        s = (simulated.get("per_level") or {}).get(lv)
        if s:
            row |= {"latency_s": s["cycles_total"] / mclk_hz(), "energy_uj": s["energy_uj"], "how": "S",
                    "sim_cycles": s["cycles_total"], "predicted_latency_s": pred["time_us"] * 1e-6}
        rows.append(row)
    return {"levels": rows, "k_device": fit["k_device"],
            "sim": {k: v for k, v in simulated.items() if k != "per_level"},
            "latency_how": "S: our FR5994 simulator at the board clock (inputs checked against golden); "
                           "P*: cost model, fallback table"}


def trained_nested(out: Path, epochs: int) -> Path:
    """The nested DS-CNN levels (`train --from ... --mode gradual-kd`), trained once (~50 min on 2 busy
    cores) into the derived-data cache and reused: the cache file's name holds a hash of everything the
    training reads (the source model file, the data set's identity, the levels and the schedule)."""
    import hashlib
    from ... import data
    from ...data import cache_dir
    from ...train.nested import TrainConfig
    from ...train.gradual import GradualConfig, sensitive_layers
    from ...interop.train_from import train_from_bundle
    model = MODELS / "kws_ref_model_float32.tflite"
    test = data.load("speech_commands_mlperf", "test")
    b0 = import_tflite(model, dataset=test.identity())
    gcfg = GradualConfig(epochs=epochs, dense_scale=sensitive_layers(b0.graph))
    key = hashlib.sha256(json.dumps([hashlib.sha256(model.read_bytes()).hexdigest(), test.identity(), KWS_LEVELS,
                                     gcfg.as_dict()], sort_keys=True, default=str).encode()).hexdigest()[:16]
    cached = cache_dir() / f"kws_dscnn_gradual_kd_{key}.nest"
    if (cached / "manifest.json").is_file():
        print(f"nested KWS levels: reusing {cached}")
        return cached
    src = out / "kws_float.nest"
    b0.save(src, overwrite=True)
    train_from_bundle(src, cached, levels=KWS_LEVELS, method="irregular", mode="gradual-kd",
                      cfg=TrainConfig(epochs_retrain=epochs), gradual=gcfg, force=True)
    return cached


def kws_nested(out: Path, nested: str | None, epochs: int, sim_inputs: int = 1) -> dict:
    from ... import data
    from ...bundle import Bundle
    from ...compiler import golden, quantize
    from ...data.calibration import calibration_inputs
    if nested is None:
        nested = trained_nested(out, epochs)
    b = Bundle.load(nested)
    test = data.load("speech_commands_mlperf", "test")
    calib = calibration_inputs(b)
    qm = quantize.quantize(b, calib)
    levels = []
    for lv in b.levels:
        k = lv["level"]
        levels.append({"level": k, "sparsity": lv["sparsity"], "float": lv["float_accuracy"],
                       "q15": golden.accuracy(qm, test.x, test.y, k),
                       "nonzeros": int(sum(level_mask(a, k).sum() for a in b.intro.values()))})
    dev = device_levels(b, out / "kws_build", calib, test.x[:sim_inputs] if sim_inputs else None,
                        test.y[:sim_inputs] if sim_inputs else None)
    for row, d in zip(levels, dev["levels"]):
        row.update(d)
    from ...interop.tflite_export import export_level_tflite
    for row in levels:  # each level as float32 and int8 TFLite, run by ai-edge-litert on the held-out clips
        mine = ours(b, test.x, row["level"]).argmax(1)
        for kind, cal in (("tflite_float32", None), ("tflite_int8", calib)):
            data = export_level_tflite(b, row["level"], calib=cal)
            pred = interpret(data, test.x.transpose(0, 2, 3, 1)).argmax(1)
            row[kind] = {"accuracy": float((pred == test.y).mean()), "agree": float((pred == mine).mean()),
                         "bytes": len(data)}
    return {"bundle": str(nested), "dense_test_accuracy": b.manifest["train_config"].get("dense_test_accuracy"),
            "train_config": {k: b.manifest["train_config"].get(k) for k in ("epochs_retrain", "lr_retrain", "scope",
                                                                            "train_samples", "wall_seconds", "gradual")},
            "n_test": len(test.y), "note": test.note, "levels": levels, "k_device": dev["k_device"],
            "sim": dev["sim"], "latency_how": dev["latency_how"]}


def ad_features(pcm: np.ndarray) -> np.ndarray:
    """Real-ish autoencoder inputs from int16 clips: 5 consecutive 128-band log-mel frames (dB), the DCASE
    baseline's layout (1024-point Hann frames, hop 512, power, 10 log10), several windows per clip."""
    n_fft, hop, n_mels = 1024, 512, 128
    mel_of = lambda f: 1127.0 * np.log1p(f / 700.0)  # noqa: E731
    edges = np.linspace(0.0, mel_of(8000.0), n_mels + 2)
    bins = mel_of(np.linspace(0.0, 8000.0, n_fft // 2 + 1))[:, None]
    fbank = np.maximum(0, np.minimum((bins - edges[:-2]) / (edges[1:-1] - edges[:-2]),
                                     (edges[2:] - bins) / (edges[2:] - edges[1:-1])))
    window = np.hanning(n_fft)
    out = []
    for p in np.atleast_2d(pcm):
        w = p.astype(np.float64) / 32768
        n = 1 + (len(w) - n_fft) // hop
        frames = np.stack([w[i * hop:i * hop + n_fft] * window for i in range(n)])
        db = 10.0 * np.log10((np.abs(np.fft.rfft(frames, axis=1)) ** 2) @ fbank + 1e-10)
        out += [db[i:i + 5].reshape(-1) for i in range(0, n - 4, 5)]
    return np.stack(out).astype(np.float32)


def autoencoder(out: Path, pcm: np.ndarray) -> dict:
    from ...bundle import Bundle
    from ...interop.torch_net import GraphNet
    from ...train.nested import derive_intro
    model = MODELS / "ad01_fp32.tflite"
    src = import_tflite(model)
    x = ad_features(pcm)
    lite = interpret(model, x)
    net = GraphNet(src.graph, src.weights)
    intro = derive_intro(net, list(AD_LEVELS), "irregular", scope="layer")
    lv_info = [{"level": i + 1, "target_sparsity": s, "sparsity": s, "float_accuracy": None}
               for i, s in enumerate(AD_LEVELS)]
    b = Bundle.from_model(net, intro, graph=src.graph, levels=lv_info, prune={"method": "irregular",
                          "mode": "no-retrain", "scope": "layer"}, dataset=src.dataset, train_config={},
                          model_spec={"name": "graph", "kwargs": {}})
    b.manifest["source"] = src.manifest["source"]
    dense = ours(src, x)
    rows = []
    for k in range(1, b.n_levels + 1):
        y = ours(b, x, k)
        rows.append({"level": k, "sparsity": AD_LEVELS[k - 1],
                     "mse_vs_litert": float(((y - lite) ** 2).mean()),
                     "mse_input": float(((y - x) ** 2).mean())})
    dev = device_levels(b, out / "ad_build", x[:256])
    for row, d in zip(rows, dev["levels"]):
        row.update(d)
    return {"n_windows": len(x), "dense_mse_vs_litert": float(((dense - lite) ** 2).mean()),
            "dense_mse_input": float(((lite - x) ** 2).mean()), "params": int(sum(v.size for v in src.weights.values())),
            "levels": rows, "k_device": dev["k_device"], "int8_file_bytes": (MODELS / "ad01_int8.tflite").stat().st_size}


def add_arguments(p) -> None:
    from ... import cli_args as arg
    arg.add_output(p, default="build/bench-kws", help="output path")
    p.add_argument("--nested", default=None, help="use this nested KWS bundle instead of training one")
    p.add_argument("--epochs", type=int, default=30, help="gradual-kd epochs for the nested KWS levels")
    p.add_argument("--sim-inputs", type=int, default=1,
                   help="held-out clips per level run in our FR5994 simulator (0: predicted figures only)")


def run(a) -> int:
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {"full": kws_full_test_set()}
    f = res["full"]
    print(f"KWS DS-CNN on the whole test set ({f['n']} clips, MLPerf Tiny MFCCs):")
    for name in ("kws_ref_model_float32", "kws_ref_model_int8"):
        r = f[name]
        print(f"  {name}: ours {r['ours']:.2%}  ai-edge-litert {r['litert']:.2%}  "
              f"({(r['ours'] - r['litert']) * 100:+.2f} pp, predictions agree {r['agree']:.2%})")
    res["nested"] = n = kws_nested(out, a.nested, a.epochs, a.sim_inputs)
    print(f"\nKWS nested levels ({n['n_test']} held-out-speaker clips; dense imported model "
          f"{n['dense_test_accuracy']:.2%} on the same clips); latency {n['latency_how']}:")
    for r in n["levels"]:
        print(f"  level {r['level']} {r['sparsity']:.0%} sparse: float {r['float']:.2%}  Q15 {r['q15']:.2%} "
              f"({(r['q15'] - r['float']) * 100:+.2f} pp)  {r['nonzeros']} weights  "
              f"{'fits FR5994' if r['fits'] else 'does not fit FR5994'}  {r['latency_s']:.3f} s  "
              f"{r['energy_uj']:.0f} uJ ({r['how']})")
    if n["sim"].get("refits"):
        print(f"  simulated image: levels 1..{n['sim']['k']}, compiled again with less lower FRAM for model data "
              f"({n['sim']['refits']} bytes) because the linked code overflowed the planner's code reserve")
    for r in n["levels"]:
        f32, i8 = r["tflite_float32"], r["tflite_int8"]
        print(f"  level {r['level']} as TFLite: float32 {f32['accuracy']:.2%} (same prediction {f32['agree']:.2%}, "
              f"{f32['bytes']} B), int8 {i8['accuracy']:.2%} (same prediction {i8['agree']:.2%}, {i8['bytes']} B)")
    for r in n["levels"]:
        if not r["fits"]:
            print(f"  level {r['level']}: {r['error']}")
    print(f"  int8 MLPerf model file: {f['kws_ref_model_int8']['file_bytes']} B")
    # real-ish AD inputs: log-mel windows of 64 test clips' raw audio (the MFCC cache holds no audio)
    res["autoencoder"] = ad = autoencoder(out, _clips(64))
    print(f"\nAutoencoder ({ad['params']} parameters), {ad['n_windows']} log-mel windows of speech clips; "
          f"dense float vs interpreter MSE {ad['dense_mse_vs_litert']:.2e}, reconstruction MSE {ad['dense_mse_input']:.1f}:")
    for r in ad["levels"]:
        print(f"  level {r['level']} {r['sparsity']:.0%} sparse (no-retrain): MSE vs interpreter {r['mse_vs_litert']:.2f}, "
              f"reconstruction MSE {r['mse_input']:.1f}; {'fits' if r['fits'] else 'does not fit: ' + str(r['error'])[:80]}"
              f" FR5994; {r['latency_s']:.3f} s")
    print(f"  int8 MLPerf AD file: {ad['int8_file_bytes']} B")
    (out / "bench_kws.json").write_text(json.dumps(res, indent=1, default=float))
    print(f"\nwritten {out / 'bench_kws.json'}")
    return 0


def _clips(n: int) -> np.ndarray:
    """The first n clips' int16 samples of the Speech Commands test archive (its sha256 checked first)."""
    import io
    import tarfile
    import wave
    from ...data.speech_commands import ARCHIVE, _sources
    folder, _ = _sources()
    out = []
    with tarfile.open(folder / ARCHIVE, "r:xz") as tar:
        for m in tar:
            if m.isfile() and m.name.endswith(".wav"):
                with wave.open(io.BytesIO(tar.extractfile(m).read())) as w:
                    pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
                out.append(np.pad(pcm[:16000], (0, 16000 - min(len(pcm), 16000))))
                if len(out) == n:
                    break
    return np.stack(out)


def main(argv=None) -> int:
    from ...cli import run_command
    return run_command("bench kws", argv)

if __name__ == "__main__":
    raise SystemExit(main())
