"""Generator of hostile inputs for tests/test_hostile_inputs.py.

Every case starts from one small valid bundle and its host build (made once per session), copies what
it needs into a fresh "world" folder, breaks one thing, and returns the command line to run:
`["sparsenest", SUBCOMMAND, ...]` (run in-process through sparsenest.cli.main) or `["sn_cli", ...]`
with the bytes to feed it. The test then checks the contract of docs/architecture.md and the README:
one line on stderr naming the problem, exit status 2, no traceback, nothing outside the command's output
changed, and the canary file PWNED never created (no code or command ran from the data).

Groups: manifest (types, missing keys, size, depth, encoding), levels, array index, graph (names,
cycles, shapes, op attributes, weights), arrays (dtype, NaN, nesting, checksums, lying zip/npy
headers, pickles), paths (FIFOs, devices, directories, files in the way, unwritable), CLI arguments of
every sub-command, build metadata, planted cache files, and sn_cli.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

CANARY = "PWNED"
C_INJECTION = '*/ system("touch PWNED"); /*'
SHELL_INJECTION = "$(touch PWNED)"
MAKE_INJECTION = "$(shell touch PWNED)"
SPARSITIES = (0.8, 0.6, 0.3)


# ------------------------------------------------------------------------------------ the valid inputs

def make_valid_bundle(out: Path, mnist_train) -> Path:
    """lenet5-small trained for 20 seeded SGD steps on 512 real MNIST training images (one thread: the
    fixture must stay fast on a shared machine); magnitude-nested levels."""
    import torch
    import torch.nn as nn

    from sparsenest import models
    from sparsenest.bundle import Bundle
    from sparsenest.train.graph import extract_graph, prunable_weight_keys
    torch.manual_seed(0)
    net = models.create("lenet5-small")
    tr = mnist_train.subset(512, seed=0)
    x, y = torch.from_numpy(tr.x), torch.from_numpy(tr.y)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(20):
            idx = torch.randint(0, len(x), (32,), generator=g)
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    net.eval()
    graph = extract_graph(net, (1, 28, 28))
    sd = net.state_dict()
    intro = {}
    for k in prunable_weight_keys(graph):
        w = sd[k].numpy()
        order = np.argsort(-np.abs(w).ravel(), kind="stable")
        a = np.zeros(w.size, np.uint8)
        for lv, s in reversed(list(enumerate(SPARSITIES, 1))):
            a[order[: int(round((1 - s) * w.size))]] = lv
        intro[k] = a.reshape(w.shape)
    levels = [{"level": i + 1, "target_sparsity": s, "sparsity": s, "float_accuracy": None}
              for i, s in enumerate(SPARSITIES)]
    b = Bundle.from_model(net, intro, graph=graph, levels=levels, prune={"method": "irregular", "mode": "joint"},
                          dataset={"name": "mnist"}, train_config={"steps": 40},
                          model_spec={"name": "lenet5-small", "kwargs": {}})
    return b.save(out)


def make_valid_build(bundle: Path, out: Path, mnist_train) -> Path:
    from sparsenest.compiler.build import compile_bundle
    compile_bundle(str(bundle), out, calib=mnist_train.subset(64, seed=1).x)
    return out


# ----------------------------------------------------------------------------------- the world folder

def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


@dataclass
class World:
    """A fresh folder per case holding copies of the valid inputs; every path a case uses is in it."""
    root: Path
    bundle_src: Path
    build_src: Path

    def bundle(self, name: str = "m.nest") -> Path:
        dst = self.root / name
        shutil.copytree(self.bundle_src, dst)
        return dst

    def build(self, name: str = "build") -> Path:
        dst = self.root / name
        shutil.copytree(self.build_src, dst)
        return dst

    def fifo(self, name: str) -> Path:
        p = self.root / name
        os.mkfifo(p)
        return p


def read_manifest(b: Path) -> dict:
    return json.loads((b / "manifest.json").read_text())


def write_manifest(b: Path, m) -> None:
    (b / "manifest.json").write_text(json.dumps(m))


def read_arrays(b: Path) -> dict[str, np.ndarray]:
    with np.load(b / "arrays.npz") as z:
        return {k: z[k] for k in z.files}


def write_arrays(b: Path, arrays: dict, *, reindex: bool = True) -> None:
    """Rewrite arrays.npz; with reindex the manifest's index follows (shape, dtype, sha256), so the check
    that fires is the deeper one, not the checksum."""
    np.savez(b / "arrays.npz", **arrays)
    if reindex:
        m = read_manifest(b)
        m["arrays"] = {k: {"shape": list(v.shape), "dtype": str(v.dtype), "sha256": sha(v)}
                       for k, v in sorted(arrays.items())}
        write_manifest(b, m)


def manifest_case(fn: Callable[[dict], object]) -> Callable[[World], list[str]]:
    """A bundle whose manifest `fn` changes in place (or replaces, when it returns something)."""
    def make(w: World) -> list[str]:
        b = w.bundle()
        m = read_manifest(b)
        r = fn(m)
        write_manifest(b, m if r is None else r)
        return ["sparsenest", "info", str(b)]
    return make


def arrays_case(fn: Callable[[dict], None], reindex: bool = True) -> Callable[[World], list[str]]:
    def make(w: World) -> list[str]:
        b = w.bundle()
        arrays = read_arrays(b)
        fn(arrays)
        write_arrays(b, arrays, reindex=reindex)
        return ["sparsenest", "info", str(b)]
    return make


def file_case(fn: Callable[[World, Path], None], cmd: str = "info") -> Callable[[World], list[str]]:
    def make(w: World) -> list[str]:
        b = w.bundle()
        fn(w, b)
        return ["sparsenest", cmd, str(b)]
    return make


def node(m: dict, name: str) -> dict:
    return next(n for n in m["graph"]["nodes"] if n["name"] == name)


def setp(path: str, value):
    """manifest mutator: set a dotted path (list indices as numbers)."""
    def fn(m):
        *head, last = path.split(".")
        d = m
        for k in head:
            d = d[int(k)] if isinstance(d, list) else d[k]
        d[int(last) if isinstance(d, list) else last] = value
    return fn


def delp(path: str):
    def fn(m):
        *head, last = path.split(".")
        d = m
        for k in head:
            d = d[int(k)] if isinstance(d, list) else d[k]
        del d[int(last) if isinstance(d, list) else last]
    return fn


def nodef(name: str, key: str, value):
    def fn(m):
        node(m, name)[key] = value
    return fn


def deep(n: int):
    v: object = 0
    for _ in range(n):
        v = [v]
    return v


# ----------------------------------------------------------------------- zip and .npy header forgery

def patch_member_size(npz: Path, member: str, new_size: int) -> None:
    """Rewrite the uncompressed size of one zip member in its local header and the central directory."""
    data = bytearray(npz.read_bytes())
    with zipfile.ZipFile(npz) as z:
        info = z.getinfo(member)
    struct.pack_into("<I", data, info.header_offset + 22, new_size)
    i = data.find(b"PK\x01\x02")
    while i != -1:
        n_name, n_extra, n_comment = struct.unpack_from("<HHH", data, i + 28)
        if bytes(data[i + 46:i + 46 + n_name]).decode() == member:
            struct.pack_into("<I", data, i + 24, new_size)
        i = data.find(b"PK\x01\x02", i + 46 + n_name + n_extra + n_comment)
    npz.write_bytes(data)


def npy_bytes(header_shape: tuple, dtype, payload: bytes) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                              "fortran_order": False, "shape": header_shape})
    return buf.getvalue() + payload


def replace_member(npz: Path, member: str, content: bytes, compress: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(npz) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    members[member] = content
    with zipfile.ZipFile(npz, "w", compress) as z:
        for k, v in members.items():
            z.writestr(k, v)


class _Payload:
    """Unpickling this runs `touch PWNED`: what an unsafe np.load(allow_pickle=True) would do."""

    def __reduce__(self):
        return (os.system, (f"touch {CANARY}",))


def pickle_member(w: World, b: Path) -> None:
    obj = np.empty(1, dtype=object)
    obj[0] = _Payload()
    buf = io.BytesIO()
    np.save(buf, obj, allow_pickle=True)
    replace_member(b / "arrays.npz", "fc2.bias.npy", buf.getvalue())


def pickle_everything(w: World, b: Path) -> None:
    """arrays.npz that is a raw pickle, not a zip."""
    (b / "arrays.npz").write_bytes(pickle.dumps(_Payload()))


# ----------------------------------------------------------------------------------------- the cases

@dataclass
class Case:
    id: str
    make: Callable[[World], list[str]]
    expect: str                       # regex (case-insensitive) the one error line must contain
    code: int = 2
    stdin: Callable[[World], bytes] | None = None   # sn_cli input
    subprocess: bool = False          # run `sparsenest` as a process (FIFOs: a regression must not hang us)
    output: str | None = None         # path (relative to the world) the command may create
    needs_nonroot: bool = False
    tags: set = field(default_factory=set)


def _manifest_cases() -> list[Case]:
    cases = []
    wrong = {"format": 1, "version": "1", "model": [], "graph": "g", "levels": {}, "prune": 3,
             "dataset": None, "train_config": [], "arrays": []}
    for key, bad in wrong.items():
        cases.append(Case(f"manifest-missing-{key}", manifest_case(delp(key)),
                          rf"{key}|format|version"))
        cases.append(Case(f"manifest-type-{key}", manifest_case(setp(key, bad)), rf"{key}|format|version"))
    cases += [
        Case("manifest-not-json", file_case(lambda w, b: (b / "manifest.json").write_text("{nope")), "not valid JSON"),
        Case("manifest-empty", file_case(lambda w, b: (b / "manifest.json").write_text("")), "not valid JSON"),
        Case("manifest-not-utf8", file_case(lambda w, b: (b / "manifest.json").write_bytes(b"\xff\xfe{}")),
             "not UTF-8"),
        Case("manifest-list", manifest_case(lambda m: [m]), "not a sparsenest bundle manifest"),
        Case("manifest-deep-json", file_case(lambda w, b: (b / "manifest.json").write_text("[" * 100000 + "]" * 100000)),
             "nested too deeply|nests deeper|not a sparsenest"),
        Case("manifest-deep-section", manifest_case(setp("train_config", {"x": deep(60)})), "nests deeper"),
        Case("manifest-huge", file_case(lambda w, b: os.truncate(b / "manifest.json", 17 << 20)),
             "more than the"),
        Case("manifest-version-bool", manifest_case(setp("version", True)), "version"),
        Case("model-name-list", manifest_case(setp("model.name", ["a"])), "model.name"),
        Case("model-kwargs-list", manifest_case(setp("model.kwargs", [1])), "model.kwargs"),
        Case("dataset-name-number", manifest_case(setp("dataset.name", 7)), "dataset.name"),
        Case("dataset-name-huge", manifest_case(setp("dataset.name", "x" * 5000)), "dataset.name"),
        Case("prune-method-dict", manifest_case(setp("prune.method", {"a": 1})), "prune.method"),
    ]
    return cases


def _level_cases() -> list[Case]:
    def reorder(m):
        m["levels"].reverse()
    cases = [
        Case("levels-empty", manifest_case(setp("levels", [])), "levels"),
        Case("levels-too-many", manifest_case(lambda m: m.__setitem__("levels", m["levels"] * 20)), "levels"),
        Case("levels-not-objects", manifest_case(setp("levels", [1, 2, 3])), r"levels\[0\]"),
        Case("levels-misnumbered", manifest_case(setp("levels.1.level", 5)), r"levels\[1\]\.level"),
        Case("levels-level-bool", manifest_case(setp("levels.0.level", True)), r"levels\[0\]\.level"),
        Case("levels-wrong-order", manifest_case(reorder), "level"),
        Case("levels-target-is-one", manifest_case(setp("levels.0.target_sparsity", 1.0)), r"\[0, 1\)"),
        Case("levels-target-negative", manifest_case(setp("levels.2.target_sparsity", -0.1)), r"\[0, 1\)"),
        Case("levels-target-string", manifest_case(setp("levels.0.target_sparsity", "0.8")), r"\[0, 1\)"),
        Case("levels-target-nan", manifest_case(setp("levels.0.target_sparsity", float("nan"))), r"\[0, 1\)"),
        Case("levels-not-decreasing", manifest_case(setp("levels.1.target_sparsity", 0.8)), "strictly decreasing"),
        Case("levels-recorded-sparsity-lies", manifest_case(setp("levels.0.sparsity", 0.5)), "nesting arrays give"),
        Case("levels-accuracy-above-one", manifest_case(setp("levels.0.float_accuracy", 2)), "float_accuracy"),
    ]
    return cases


def index(key: str, field_: str | None, value=None, delete: bool = False):
    """manifest mutator for the array index, whose keys contain dots."""
    def fn(m):
        if delete:
            del m["arrays"][key]
        elif field_ is None:
            m["arrays"][key] = value
        else:
            m["arrays"][key][field_] = value
    return fn


def _index_cases() -> list[Case]:
    return [
        Case("index-negative-shape", manifest_case(index("fc1.weight", "shape", [-1, 5])), r"shape"),
        Case("index-float-shape", manifest_case(index("fc1.weight", "shape", [48.0, 200])), r"shape"),
        Case("index-object-dtype", manifest_case(index("fc1.weight", "dtype", "object")), "dtype"),
        Case("index-bad-sha", manifest_case(index("fc1.weight", "sha256", "zz")), "sha256"),
        Case("index-entry-string", manifest_case(index("fc1.weight", None, "x")), "shape, dtype"),
        Case("index-injection-key", manifest_case(index(SHELL_INJECTION, None, {})), "state_dict keys"),
        Case("index-missing-array", manifest_case(index("fc1.bias", None, delete=True)), "missing|unexpected"),
        Case("index-huge-declared", manifest_case(index("fc1.weight", "shape", [1 << 28])), "more than the"),
    ]


def _graph_cases() -> list[Case]:
    def dup(m):
        m["graph"]["nodes"][1]["name"] = m["graph"]["nodes"][0]["name"]

    def cycle(m):
        m["graph"]["nodes"][0]["inputs"] = [m["graph"]["nodes"][2]["name"]]

    def self_loop(m):
        n0 = m["graph"]["nodes"][0]
        n0["inputs"] = [n0["name"]]

    def share_weight(m):
        node(m, "fc2")["weight"] = node(m, "fc1")["weight"]

    def swap_weights(m):
        node(m, "fc1")["weight"], node(m, "fc2")["weight"] = node(m, "fc2")["weight"], node(m, "fc1")["weight"]

    def rename_everywhere(new):
        def fn(m):
            old = m["graph"]["nodes"][0]["name"]
            m["graph"]["nodes"][0]["name"] = new
            for n in m["graph"]["nodes"]:
                n["inputs"] = [new if s == old else s for s in n["inputs"]]
        return fn

    cases = [
        Case("graph-duplicate-names", manifest_case(dup), "used twice"),
        Case("graph-cycle", manifest_case(cycle), "cycle"),
        Case("graph-self-loop", manifest_case(self_loop), "cycle"),
        Case("graph-undefined-input", manifest_case(nodef("fc2", "inputs", ["ghost"])), "cycle|undefined"),
        Case("graph-no-nodes", manifest_case(setp("graph.nodes", [])), "graph.nodes"),
        Case("graph-node-not-object", manifest_case(setp("graph.nodes.0", "conv1")), r"graph\.nodes\[0\]"),
        Case("graph-output-missing", manifest_case(delp("graph.output")), "graph.output"),
        Case("graph-output-unknown", manifest_case(setp("graph.output", "ghost")), "graph.output"),
        Case("graph-output-is-input", manifest_case(lambda m: m["graph"].__setitem__("output", m["graph"]["input"]["name"])),
             "graph.output"),
        Case("graph-unknown-op", manifest_case(nodef("fc2", "op", "softmax")), "op"),
        Case("graph-input-shape-negative", manifest_case(setp("graph.input.shape", [1, -28, 28])), "graph.input.shape"),
        Case("graph-input-shape-4d", manifest_case(setp("graph.input.shape", [1, 1, 28, 28])), "graph.input.shape"),
        Case("graph-input-name-injection", manifest_case(setp("graph.input.name", C_INJECTION)), "graph.input"),
        Case("graph-name-c-injection", manifest_case(rename_everywhere(C_INJECTION)), "C-safe"),
        Case("graph-name-shell-injection", manifest_case(rename_everywhere(SHELL_INJECTION)), "C-safe"),
        Case("graph-name-make-injection", manifest_case(rename_everywhere(MAKE_INJECTION)), "C-safe"),
        Case("graph-name-digit-first", manifest_case(rename_everywhere("1conv")), "C-safe"),
        Case("graph-name-too-long", manifest_case(rename_everywhere("c" * 200)), "C-safe"),
        Case("graph-name-number", manifest_case(nodef("fc2", "name", 5)), "C-safe"),
        Case("graph-shape-negative", manifest_case(nodef("fc2", "shape", [-84])), "shape"),
        Case("graph-shape-zero", manifest_case(nodef("fc2", "shape", [0])), "shape"),
        Case("graph-shape-float", manifest_case(nodef("fc2", "shape", [84.5])), "shape"),
        Case("graph-shape-inconsistent", manifest_case(nodef("fc2", "shape", [83])), "does not follow"),
        Case("graph-conv-stride-zero", manifest_case(nodef("conv1", "stride", [0, 1])), "stride"),
        Case("graph-conv-padding-negative", manifest_case(nodef("conv1", "padding", [-2, 2])), "padding"),
        Case("graph-conv-dilation-zero", manifest_case(nodef("conv1", "dilation", [0, 0])), "dilation"),
        Case("graph-conv-groups-zero", manifest_case(nodef("conv1", "groups", 0)), "groups"),
        Case("graph-conv-groups-mismatch", manifest_case(nodef("conv2", "groups", 4)), "groups"),
        Case("graph-conv-kernel-mismatch", manifest_case(nodef("conv1", "kernel", [3, 3])), "kernel"),
        Case("graph-conv-stride-wrong-rank", manifest_case(nodef("conv1", "stride", [1])), "stride"),
        Case("graph-pool-kernel-too-big", manifest_case(nodef("pool1", "kernel", [64, 64])), "kernel"),
        Case("graph-pool-padding-over-half", manifest_case(nodef("pool1", "padding", [2, 2])), "padding"),
        Case("graph-linear-in-features", manifest_case(swap_weights), "linear weight"),
        Case("graph-weight-shared", manifest_case(share_weight), "also used"),
        Case("graph-weight-missing", manifest_case(nodef("fc2", "weight", "ghost.weight")), "not an array"),
        Case("graph-weight-is-intro", manifest_case(nodef("fc2", "weight", "intro/fc2.weight")), "not an array"),
        Case("graph-bias-wrong-shape", manifest_case(nodef("fc2", "bias", "fc1.bias")), "bias"),
        Case("graph-add-one-input", manifest_case(lambda m: m["graph"]["nodes"].__setitem__(
            1, {**m["graph"]["nodes"][1], "op": "add"})), "add"),
    ]
    return cases


def _array_cases() -> list[Case]:
    def f64(a):
        a["fc2.bias"] = a["fc2.bias"].astype(np.float64)

    def intro_f32(a):
        a["intro/fc1.weight"] = a["intro/fc1.weight"].astype(np.float32)

    def nan(a):
        a["fc2.bias"][0] = np.nan

    def inf(a):
        a["conv1.weight"].flat[0] = np.inf

    def weight_shape(a):
        a["fc2.weight"] = a["fc2.weight"][:, :-1]
        a["intro/fc2.weight"] = a["intro/fc2.weight"][:, :-1]

    def intro_level(a):
        a["intro/fc1.weight"].flat[0] = 9

    def intro_shape(a):
        a["intro/fc1.weight"] = a["intro/fc1.weight"][:-1]

    def pruned_nonzero(a):
        i = np.flatnonzero(a["intro/fc1.weight"] == 0)[0]
        a["fc1.weight"].flat[i] = 1.0

    def stray_intro(a):
        a["intro/fc1.bias"] = np.ones(a["fc1.bias"].shape, np.uint8)

    def checksum(a):
        a["fc1.weight"].flat[0] += 1.0

    def lying_size(w, b):
        npz = b / "arrays.npz"
        with zipfile.ZipFile(npz) as z:
            size = z.getinfo("fc1.weight.npy").file_size
        patch_member_size(npz, "fc1.weight.npy", size * 1000)

    def lying_npy_header(w, b):  # header claims 2^40 elements; data is a few bytes
        replace_member(b / "arrays.npz", "fc2.bias.npy", npy_bytes((1 << 40,), np.float32, b"\0" * 16))

    def lying_both(w, b):  # manifest and header agree on 50M floats; the member holds 16 bytes
        m = read_manifest(b)
        m["arrays"]["fc2.bias"]["shape"] = [50_000_000]
        write_manifest(b, m)
        replace_member(b / "arrays.npz", "fc2.bias.npy", npy_bytes((50_000_000,), np.float32, b"\0" * 16),
                       zipfile.ZIP_DEFLATED)

    def bigendian(w, b):
        a = read_arrays(b)["fc2.bias"].astype(">f4")
        buf = io.BytesIO()
        np.save(buf, a)
        replace_member(b / "arrays.npz", "fc2.bias.npy", buf.getvalue())

    def truncated(w, b):
        d = (b / "arrays.npz").read_bytes()
        (b / "arrays.npz").write_bytes(d[: len(d) // 2])

    def extra_member(w, b):
        replace_member(b / "arrays.npz", "../../evil.npy", npy_bytes((1,), np.float32, b"\0" * 4))

    def unsupported_compression(w, b):
        with zipfile.ZipFile(b / "arrays.npz") as z:
            members = {i.filename: z.read(i) for i in z.infolist()}
        with zipfile.ZipFile(b / "arrays.npz", "w", zipfile.ZIP_BZIP2) as z:
            for k, v in members.items():
                z.writestr(k, v)

    return [
        Case("arrays-float64-weight", arrays_case(f64), "dtype|float64"),
        Case("arrays-intro-float32", arrays_case(intro_f32), "dtype|uint8"),
        Case("arrays-nan", arrays_case(nan), "NaN"),
        Case("arrays-inf", arrays_case(inf), "NaN or Inf"),
        Case("arrays-weight-shape", arrays_case(weight_shape), "fc2"),
        Case("arrays-intro-names-missing-level", arrays_case(intro_level), "names level 9"),
        Case("arrays-intro-shape", arrays_case(intro_shape), "shape"),
        Case("arrays-pruned-but-nonzero", arrays_case(pruned_nonzero), "masks and weights disagree"),
        Case("arrays-intro-for-bias", arrays_case(stray_intro), "no conv/linear weight"),
        Case("arrays-checksum", arrays_case(checksum, reindex=False), "checksum"),
        Case("arrays-missing-member", arrays_case(lambda a: a.pop("fc2.bias"), reindex=False), "missing"),
        Case("zip-lying-member-size", file_case(lying_size), "declares"),
        Case("npy-lying-header", file_case(lying_npy_header), "header says"),
        Case("npy-lying-header-and-manifest", file_case(lying_both), "declares|header"),
        Case("npy-big-endian", file_case(bigendian), "header says"),
        Case("zip-truncated", file_case(truncated), "corrupt"),
        Case("zip-extra-member-path", file_case(extra_member), "unexpected"),
        Case("zip-bzip2", file_case(unsupported_compression), "compression"),
        Case("zip-pickled-member", file_case(pickle_member), "header says"),
        Case("npz-is-a-pickle", file_case(pickle_everything), "corrupt"),
    ]


def _path_cases() -> list[Case]:
    def manifest_fifo(w, b):
        (b / "manifest.json").unlink()
        os.mkfifo(b / "manifest.json")

    def arrays_fifo(w, b):
        (b / "arrays.npz").unlink()
        os.mkfifo(b / "arrays.npz")

    def link(target):
        def fn(w, b):
            (b / "arrays.npz").unlink()
            (b / "arrays.npz").symlink_to(target)
        return fn

    def manifest_dir(w, b):
        (b / "manifest.json").unlink()
        (b / "manifest.json").mkdir()

    def out_is_file(w: World) -> list[str]:
        b = w.bundle()
        (w.root / "taken").write_text("mine")
        return ["sparsenest", "compile", str(b), "-o", str(w.root / "taken")]

    def out_under_file(w: World) -> list[str]:
        b = w.bundle()
        (w.root / "afile").write_text("mine")
        return ["sparsenest", "compile", str(b), "-o", str(w.root / "afile" / "build")]

    def readonly_dir(w: World) -> list[str]:
        b = w.bundle()
        ro = w.root / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        return ["sparsenest", "compile", str(b), "-o", str(ro / "build")]

    return [
        Case("bundle-missing", lambda w: ["sparsenest", "info", str(w.root / "none.nest")], "no such bundle"),
        Case("bundle-is-file", lambda w: (w.root / "f.nest").write_text("x") and
             ["sparsenest", "info", str(w.root / "f.nest")], "not a bundle directory"),
        Case("bundle-is-device", lambda w: ["sparsenest", "info", "/dev/null"], "not a bundle directory"),
        Case("bundle-is-fifo", lambda w: ["sparsenest", "info", str(w.fifo("p.nest"))], "not a bundle directory",
             subprocess=True),
        Case("bundle-empty-dir", lambda w: (w.root / "e.nest").mkdir() or
             ["sparsenest", "info", str(w.root / "e.nest")], "missing manifest.json"),
        Case("manifest-is-fifo", file_case(manifest_fifo), "FIFO", subprocess=True),
        Case("manifest-is-dir", file_case(manifest_dir), "directory"),
        Case("arrays-is-fifo", file_case(arrays_fifo), "FIFO", subprocess=True),
        Case("arrays-is-dev-zero", file_case(link("/dev/zero")), "device"),
        Case("arrays-is-dev-urandom", file_case(link("/dev/urandom")), "device"),
        Case("arrays-dangling-link", file_case(link("/nonexistent/arrays.npz")), "missing arrays.npz"),
        Case("compile-out-is-file", out_is_file, "not a directory"),
        Case("compile-out-under-file", out_under_file, "is a file"),
        Case("compile-out-unwritable", readonly_dir, "not writable", needs_nonroot=True),
        Case("analyze-json-is-dir", lambda w: (w.root / "d").mkdir() or
             ["sparsenest", "analyze", str(w.bundle()), "--json", str(w.root / "d")], "not a regular file"),
        Case("analyze-json-under-file", lambda w: (w.root / "f").write_text("x") and
             ["sparsenest", "analyze", str(w.bundle()), "--json", str(w.root / "f" / "a.json")], "is a file"),
        Case("export-onnx-out-is-file", lambda w: (w.root / "f").write_text("x") and
             ["sparsenest", "export-onnx", str(w.bundle()), "-o", str(w.root / "f")], "not a directory"),
        Case("train-out-is-file", lambda w: (w.root / "f").write_text("x") and
             ["sparsenest", "train", "--model", "lenet5-small", "-o", str(w.root / "f")], "not a directory"),
    ]


def _cli_cases() -> list[Case]:
    train = [
        ("levels-above-one", ["--levels", "0.9,1.5"], r"\[0, 1\)"),
        ("levels-negative", ["--levels=-0.1,0.5"], r"\[0, 1\)"),
        ("levels-nan", ["--levels", "nan,0.5"], "finite"),
        ("levels-repeated", ["--levels", "0.5,0.5"], "repeats"),
        ("levels-empty-item", ["--levels", "0.5,,0.2"], "comma-separated"),
        ("levels-text", ["--levels", "abc"], "number"),
        ("levels-too-many", ["--levels", ",".join(f"0.{i:02d}" for i in range(1, 40))], "at most"),
        ("epochs-negative", ["--epochs-dense", "-1"], "epochs"),
        ("epochs-huge", ["--epochs-retrain", "10000000"], "epochs"),
        ("epochs-float", ["--admm-epochs", "1.5"], "integer"),
        ("batch-zero", ["--batch-size", "0"], "batch size"),
        ("lr-zero", ["--lr", "0"], "positive"),
        ("lr-inf", ["--lr-retrain", "inf"], "finite"),
        ("train-limit-zero", ["--train-limit", "0"], "count"),
        ("seed-negative", ["--seed", "-3"], "seed"),
        ("method-opts-bad-json", ["--method-opts", "{x"], "JSON"),
        ("method-opts-list", ["--method-opts", "[1]"], "JSON object"),
        ("method-unknown", ["--method", "magic"], "invalid choice"),
        ("model-unknown", ["--model", SHELL_INJECTION], "unknown model"),
        ("dataset-unknown", ["--model", "lenet5-small", "--dataset", "nope"], "unknown data set"),
    ]
    cases = [Case(f"train-{n}", (lambda args: lambda w: ["sparsenest", "train", *args, "-o",
                                                           str(w.root / "t.nest")])(args), e, output="t.nest")
             for n, args, e in train]

    def compile_args(*args):
        return lambda w: ["sparsenest", "compile", str(w.bundle()), "-o", str(w.root / "out"), *args]
    cases += [
        Case("compile-calib-zero", compile_args("--calib", "0"), "count"),
        Case("compile-calib-text", compile_args("--calib", "many"), "integer"),
        Case("compile-format-unknown", compile_args("--format", "zip"), "not a format"),
        Case("compile-format-layer-unknown", compile_args("--format", "fc9=csr16"), "fc9"),
        Case("compile-format-injection-layer", compile_args("--format", f"{C_INJECTION}=csr16"), "not a conv/linear"),
        Case("compile-format-malformed", compile_args("--format", "fc1=csr16,oops"), "LAYER=FORMAT"),
        Case("compile-target-unknown", compile_args("--target", "z80"), "invalid choice"),
        Case("compile-dataset-injection", lambda w: _compile_with_dataset(w, SHELL_INJECTION),
             "unknown data set", output="out"),
    ]

    def sim(*args, build=True):
        return lambda w: ["sparsenest", "simulate", str(w.build() if build else w.bundle()), *args]
    cases += [
        Case("simulate-level-zero", sim("--level", "0"), "level"),
        Case("simulate-level-too-high", sim("--level", "99"), "out of range"),
        Case("simulate-level-text", sim("--level", "two"), "integer"),
        Case("simulate-limit-zero", sim("--limit", "0"), "count"),
        Case("simulate-dataset-mismatch", sim("--dataset", "fashion-mnist"), "compiled from a model of"),
        Case("simulate-not-a-build", sim(build=False), "model_meta.json"),
        Case("simulate-meta-foreign", lambda w: _build_with_meta(w, {"format": "other"}), "not a sparsenest build"),
        Case("simulate-meta-deep", lambda w: _build_with_meta(w, "[" * 100000 + "]" * 100000), "not valid JSON"),
        Case("simulate-meta-levels-bad", lambda w: _build_with_meta(w, None, n_levels="3"), "n_levels"),
        Case("simulate-meta-fifo", _build_with_fifo_meta, "FIFO", subprocess=True),
    ]

    def harvest(*args, costs=True):
        def make(w):
            extra = []
            if costs:
                from sparsenest.analysis.harvest import _example_costs
                extra = ["--costs", str(_example_costs().save(w.root / "costs.json"))]
            return ["sparsenest", "harvest", *extra, "--plot", "", *args]
        return make

    def costs_file(content):
        def make(w):
            p = w.root / "c.json"
            p.write_text(content if isinstance(content, str) else json.dumps(content))
            return ["sparsenest", "harvest", "--costs", str(p), "--plot", ""]
        return make
    base = {"format": "sparsenest-harvest-costs", "version": 1,
            "levels": [{"energy_uj": 900.0, "time_us": 1.0e5, "accuracy": 0.9}]}
    cases += [
        Case("harvest-capacitor-zero", harvest("--capacitor", "0"), "capacitor"),
        Case("harvest-v-on-nan", harvest("--v-on", "nan"), "finite"),
        Case("harvest-v-off-above-v-on", harvest("--v-off", "3.5"), "v_off"),
        Case("harvest-duration-negative", harvest("--duration", "-5"), "duration"),
        Case("harvest-margin-zero", harvest("--margin", "0"), "margin"),
        Case("harvest-policy-unknown", harvest("--policy", SHELL_INJECTION), "polic"),
        Case("harvest-costs-missing", harvest("--costs", str(Path("/nonexistent/c.json")), costs=False), "costs"),
        Case("harvest-costs-dir", lambda w: ["sparsenest", "harvest", "--costs", str(w.root)], "directory"),
        Case("harvest-costs-device", lambda w: ["sparsenest", "harvest", "--costs", "/dev/zero"], "not a regular file"),
        Case("harvest-costs-fifo", lambda w: ["sparsenest", "harvest", "--costs", str(w.fifo("c.json"))], "FIFO",
             subprocess=True),
        Case("harvest-trace-fifo", lambda w: ["sparsenest", "harvest", "--demo", "--plot", "", "--trace",
                                              str(w.fifo("t.csv"))], "FIFO", subprocess=True),
        Case("harvest-trace-binary", lambda w: (w.root / "t.csv").write_bytes(b"\xff\xfe\x00") and
             ["sparsenest", "harvest", "--demo", "--plot", "", "--trace", str(w.root / "t.csv")], "decode|trace"),
        Case("harvest-costs-list", costs_file([1, 2]), "not a sparsenest-harvest-costs"),
        Case("harvest-costs-deep", costs_file("[" * 100000 + "]" * 100000), "not valid JSON"),
        Case("harvest-costs-level-text", costs_file({**base, "levels": [{**base["levels"][0], "energy_uj": "x"}]}),
             "energy_uj"),
        Case("harvest-costs-level-not-object", costs_file({**base, "levels": [3]}), "object"),
        Case("harvest-costs-energy-negative", costs_file({**base, "levels": [{**base["levels"][0], "energy_uj": -1}]}),
             "energy_uj"),
        Case("harvest-costs-sleep-nan", costs_file(json.dumps({**base, "sleep_power_uw": float("nan")})),
             "sleep_power_uw"),
        Case("harvest-costs-switch-bad", costs_file({**base, "switch": {"energy_uj": 5}}), "matrix"),
        Case("harvest-costs-switch-string", costs_file({**base, "switch": "x"}), "switch"),
        Case("harvest-costs-sparsity-one", costs_file({**base, "levels": [{**base["levels"][0], "sparsity": 1.0}]}),
             "sparsity"),
    ]
    cases += [
        Case("report-sim-inputs-zero", lambda w: ["sparsenest", "report", str(w.build()), "--sim-inputs", "0"], "count"),
        Case("report-eval-zero", lambda w: ["sparsenest", "report", str(w.build()), "--eval", "0"], "count"),
        Case("report-kernels-unknown", lambda w: ["sparsenest", "report", str(w.build()), "--kernels", "lea9"],
             "kernels"),
        Case("report-capacitor-negative", lambda w: ["sparsenest", "report", str(w.build()), "--capacitor", "-1"],
             "positive"),
        Case("report-samples-device", lambda w: ["sparsenest", "report", str(w.build()), "--samples", "/dev/zero"],
             "not a regular file"),
        Case("report-out-is-file", lambda w: (w.root / "f").write_text("x") and
             ["sparsenest", "report", str(w.build()), "-o", str(w.root / "f")], "not a directory"),
        Case("glue-sparsity-one", lambda w: ["sparsenest", "glue", "--task", "rte", "--sparsity", "1"], r"\[0, 1\)"),
        Case("glue-levels-above-one", lambda w: ["sparsenest", "glue", "--task", "rte", "--levels", "0.5,2"],
             r"\[0, 1\)"),
        Case("glue-batch-zero", lambda w: ["sparsenest", "glue", "--task", "rte", "--batch-size", "0"], "batch size"),
        Case("glue-block-shape-zero", lambda w: ["sparsenest", "glue", "--task", "rte", "--block-shape", "0x4"],
             "block-shape"),
        Case("glue-epochs-negative", lambda w: ["sparsenest", "glue", "--task", "rte", "--epochs", "-1"], "epochs"),
        Case("glue-method-unknown", lambda w: ["sparsenest", "glue", "--task", "rte", "--method", "magic",
                                               "-o", str(w.root / "g")], "unknown method"),
        Case("glue-task-unknown", lambda w: ["sparsenest", "glue", "--task", SHELL_INJECTION, "-o", str(w.root / "g")],
             "unknown GLUE task", output="g"),
        Case("report-target-missing", lambda w: ["sparsenest", "report", str(w.root / "none")], "neither a build"),
        Case("report-target-fifo", lambda w: ["sparsenest", "report", str(w.fifo("r"))], "neither a build",
             subprocess=True),
        Case("export-tflite-level-too-high", lambda w: ["sparsenest", "export-tflite", str(w.bundle()), "-o",
                                                         str(w.root / "t"), "--level", "7"], "out of range"),
        Case("import-model-fifo", lambda w: ["sparsenest", "import", str(w.fifo("m.tflite")), "-o",
                                             str(w.root / "i.nest")], "FIFO", subprocess=True),
        Case("import-model-garbage", lambda w: (w.root / "m.onnx").write_bytes(b"\x00garbage") and
             ["sparsenest", "import", str(w.root / "m.onnx"), "-o", str(w.root / "i.nest")], "m.onnx|onnx",
             output="i.nest"),
        Case("unknown-subcommand", lambda w: ["sparsenest", SHELL_INJECTION], "invalid choice"),
        Case("info-extra-argument", lambda w: ["sparsenest", "info", str(w.bundle()), "--bogus"], "unrecognized"),
    ]
    return cases


def _compile_with_dataset(w: World, name: str) -> list[str]:
    b = w.bundle()
    m = read_manifest(b)
    m["dataset"]["name"] = name
    write_manifest(b, m)
    return ["sparsenest", "compile", str(b), "-o", str(w.root / "out")]


def _build_with_meta(w: World, meta, **changes) -> list[str]:
    b = w.build()
    if meta is None:
        meta = json.loads((b / "model_meta.json").read_text()) | changes
    (b / "model_meta.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return ["sparsenest", "simulate", str(b)]


def _build_with_fifo_meta(w: World) -> list[str]:
    b = w.build()
    (b / "model_meta.json").unlink()
    os.mkfifo(b / "model_meta.json")
    return ["sparsenest", "simulate", str(b)]


def _sn_cli_cases() -> list[Case]:
    def run(*args):
        return lambda w: [str(w.build_src / "sn_cli"), *args]

    def records(n_bytes_extra: int, n_full: int = 1):
        def make(w):
            meta = json.loads((w.build_src / "model_meta.json").read_text())
            return bytes(2 * meta["input_len"] * n_full + n_bytes_extra)
        return make
    cases = [Case(f"sn_cli-level-{name}", run("-l", v), "not a level", stdin=records(0))
             for name, v in (("zero", "0"), ("too-high", "99"), ("negative", "-1"), ("text", "two"),
                             ("trailing", "2x"), ("empty", ""), ("overflow", "99999999999999999999"))]
    cases += [
        Case("sn_cli-unknown-option", run("-x"), "usage", stdin=records(0)),
        Case("sn_cli-missing-level-value", run("-l"), "usage", stdin=records(0)),
        Case("sn_cli-short-record", run("-l", "1"), "truncated", stdin=records(-1, n_full=1)),
        Case("sn_cli-trailing-bytes", run(), "truncated", stdin=records(3, n_full=2)),
    ]
    return cases


def via(cmd: str, case: Case) -> Case:
    """The same broken bundle given to another sub-command (compile, analyze, export-onnx, report)."""
    def make(w: World) -> list[str]:
        argv = case.make(w)
        assert argv[:2] == ["sparsenest", "info"], argv
        tail = {"compile": ["-o", str(w.root / "out")], "export-onnx": ["-o", str(w.root / "out")]}.get(cmd, [])
        return ["sparsenest", cmd, argv[2], *tail]
    return Case(f"{cmd}-{case.id}", make, case.expect, output="out" if cmd in ("compile", "export-onnx") else None)


# The injection cases, and one of each group, also go through the commands that generate C, run make or
# write files: the bundle check must stop them before any of that.
VIA_OTHER_COMMANDS = ("graph-name-c-injection", "graph-name-make-injection", "graph-name-shell-injection",
                      "graph-input-name-injection", "index-injection-key", "graph-cycle", "zip-pickled-member",
                      "npy-lying-header", "levels-target-is-one", "manifest-deep-json")


def all_cases() -> list[Case]:
    cases = (_manifest_cases() + _level_cases() + _index_cases() + _graph_cases() + _array_cases()
             + _path_cases() + _cli_cases() + _sn_cli_cases())
    by_id = {c.id: c for c in cases}
    cases += [via(cmd, by_id[i]) for i in VIA_OTHER_COMMANDS for cmd in ("compile", "analyze", "export-onnx",
                                                                           "report")]
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return cases

