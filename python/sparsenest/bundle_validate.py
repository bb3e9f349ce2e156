"""Checks that a bundle on disk (or in memory) is what docs/architecture.md says it is, before any of it
is used: safe reading of the two files, manifest section types, the layer graph against the arrays,
and the level metadata against the nesting arrays.

Reading is defensive because a bundle is user input: the files must be regular files (not FIFOs or
devices, which could block or never end), the manifest has a size cap and a nesting-depth cap, and
every member of arrays.npz has its declared size and its .npy header (shape, dtype) compared with the
manifest's index *before* any array data is read or decompressed, so a lying header cannot make us
allocate or inflate more than the manifest admits (and the manifest's total is capped too).

Every rejection is a BundleError of one line: what is wrong, where (file and key), what to do.
"""
from __future__ import annotations

import json
import math
import os
import re
import stat
import zipfile
from pathlib import Path

import numpy as np

MAX_MANIFEST_BYTES = 16 << 20      # real manifests are a few hundred KB (graph + training history)
MAX_JSON_DEPTH = 32                 # real manifests nest 6 deep
MAX_ARRAY_BYTES = 256 << 20         # all arrays together as the index declares them (FR5994 models are KBs)
MAX_ARRAYS = 4096
MAX_LEVELS = 32
INTRO_PREFIX = "intro/"

# C-safe identifiers: node names become parts of C identifiers in the generated model.
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# state_dict keys ("features.0.weight"), optionally under intro/
ARRAY_KEY_RE = re.compile(r"(intro/)?[A-Za-z0-9_][A-Za-z0-9_.]{0,127}")  # nn.Sequential keys start with a digit
SHA256_RE = re.compile(r"[0-9a-f]{64}")
ARRAY_DTYPES = {"float32", "uint8"}
MATMUL_OPS = ("conv1d", "conv2d", "linear")
POOL_OPS = ("maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d")
ELEMENTWISE_OPS = ("relu", "relu6")   # relu6: imported graphs only (interop); the Q15 compiler refuses it
KNOWN_OPS = MATMUL_OPS + POOL_OPS + ELEMENTWISE_OPS + ("global_avgpool", "flatten", "add")
SPATIAL_DIMS = {"conv1d": 1, "conv2d": 2, "maxpool1d": 1, "maxpool2d": 2, "avgpool1d": 1, "avgpool2d": 2}

RETRAIN = "re-create the bundle with `sparsenest train`"
SECTIONS = {"format": str, "version": int, "model": dict, "graph": dict, "levels": list, "prune": dict,
            "dataset": dict, "train_config": dict, "arrays": dict}


class BundleError(ValueError):
    """A bundle is missing, corrupt, or inconsistent."""


def fail(where: str, what: str, todo: str = RETRAIN) -> BundleError:
    """One line: where (file and key): what is wrong; what to do."""
    return BundleError(f"{where}: {what}; {todo}".replace("\n", " "))


def show(v, n: int = 60) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."


# ----------------------------------------------------------------------------------------- files

def check_regular_file(path: Path, what: str) -> os.stat_result:
    """stat before open: a FIFO would block, a device could never end, a directory is no file."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise fail(str(path), f"cannot read the {what} ({e.strerror})",
                   "check the path and its permissions") from e
    if not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a socket")
        raise fail(str(path), f"the {what} is {kind}, not a regular file", "point at a bundle written by "
                   "`sparsenest train`")
    return st


def _depth(obj) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_JSON_DEPTH:
            break
        if isinstance(o, dict):
            stack += [(v, d + 1) for v in o.values()]
        elif isinstance(o, list):
            stack += [(v, d + 1) for v in o]
    return deepest


def read_manifest(mpath: Path) -> dict:
    st = check_regular_file(mpath, "manifest")
    if st.st_size > MAX_MANIFEST_BYTES:
        raise fail(str(mpath), f"manifest is {st.st_size} bytes, more than the {MAX_MANIFEST_BYTES} a "
                   "bundle manifest may have", "this is not a manifest sparsenest wrote; " + RETRAIN)
    with open(mpath, "rb") as f:
        raw = f.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:  # grew between stat and read
        raise fail(str(mpath), "manifest is larger than allowed", RETRAIN)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise fail(str(mpath), f"manifest is not UTF-8 text (byte {e.start})", "the manifest is corrupt; "
                   + RETRAIN) from e
    except RecursionError as e:
        raise fail(str(mpath), "manifest JSON is nested too deeply", RETRAIN) from e
    except json.JSONDecodeError as e:
        raise fail(str(mpath), f"not valid JSON ({e.msg} at line {e.lineno} column {e.colno})",
                   "the manifest is corrupt; " + RETRAIN) from e
    if _depth(manifest) > MAX_JSON_DEPTH:
        raise fail(str(mpath), f"manifest JSON nests deeper than {MAX_JSON_DEPTH} levels", RETRAIN)
    return manifest


def _declared_nbytes(meta: dict) -> int:
    return math.prod(meta["shape"]) * np.dtype(meta["dtype"]).itemsize


def read_arrays(apath: Path, index: dict) -> dict[str, np.ndarray]:
    """The arrays of arrays.npz, each checked against the manifest's index (`check_index` first) by
    its zip entry's declared size and its .npy header before its data is read."""
    check_regular_file(apath, "arrays file")
    total = sum(_declared_nbytes(m) for m in index.values())
    if total > MAX_ARRAY_BYTES:
        raise fail(f"{apath.parent / 'manifest.json'} key 'arrays'", f"the index declares {total} bytes of "
                   f"arrays, more than the {MAX_ARRAY_BYTES} sparsenest loads", RETRAIN)
    where = str(apath)
    arrays = {}
    try:
        with zipfile.ZipFile(apath) as z:
            infos = z.infolist()
            if len(infos) > MAX_ARRAYS:
                raise fail(where, f"{len(infos)} members, more than {MAX_ARRAYS}", RETRAIN)
            members = {}
            for info in infos:
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if key in members or info.is_dir():
                    raise fail(f"{where} member '{show(info.filename)}'", "duplicate or directory member",
                               RETRAIN)
                members[key] = info
            missing, extra = sorted(set(index) - set(members)), sorted(set(members) - set(index))
            if missing or extra:
                raise fail(where, f"members do not match the manifest's index (missing {missing[:5]}, "
                           f"unexpected {[show(k, 40) for k in extra[:5]]})", RETRAIN)
            for key, meta in index.items():
                info, mwhere = members[key], f"{where} member '{key}'"
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise fail(mwhere, f"zip compression method {info.compress_type} is not supported",
                               RETRAIN)
                with z.open(info) as f:
                    arrays[key] = _read_npy(f, info.file_size, meta, mwhere)
    except BundleError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
            NotImplementedError) as e:
        raise fail(where, f"cannot read the arrays ({show(str(e), 100)})", "the file is corrupt; "
                   + RETRAIN) from e
    return arrays


def _read_npy(f, declared_size: int, meta: dict, where: str) -> np.ndarray:
    """Header first (a few hundred bytes): its shape and dtype must be the manifest's, and the zip
    entry's declared size must be exactly header + data, before the data is read."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise fail(where, f".npy format version {version} is not supported", RETRAIN)
    shape, fortran, dtype = (fmt.read_array_header_1_0(f) if version == (1, 0)
                             else fmt.read_array_header_2_0(f))
    if list(shape) != list(meta["shape"]) or dtype != np.dtype(meta["dtype"]):  # native byte order only
        raise fail(where, f".npy header says {dtype}{list(shape)}, the manifest says "
                   f"{meta['dtype']}{meta['shape']}", "the file is corrupt; " + RETRAIN)
    nbytes = math.prod(shape) * dtype.itemsize
    if declared_size != f.tell() + nbytes:
        raise fail(where, f"zip entry declares {declared_size} bytes, a {dtype}{list(shape)} array is "
                   f"{f.tell() + nbytes} with its header", "the file is corrupt or not from sparsenest; "
                   + RETRAIN)
    data = f.read(nbytes)
    if len(data) != nbytes:
        raise fail(where, f"member ends after {len(data)} of {nbytes} data bytes",
                   "the file is truncated; " + RETRAIN)
    a = np.frombuffer(data, dtype=dtype).copy()
    return a.reshape(shape[::-1]).transpose() if fortran else a.reshape(shape)


# ------------------------------------------------------------------------------------- manifest

def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _text(v, max_len: int = 256) -> bool:
    """Free text (model, data set, method names): any characters -- codegen escapes what it writes into C
    (compiler/c_text on the harden-safety branch) -- but a bounded string."""
    return isinstance(v, str) and 0 < len(v) <= max_len


def check_sections(m: dict, where: str) -> None:
    """Every manifest section exists and has its type; the array index is well formed."""
    for key, typ in SECTIONS.items():
        if key not in m:
            raise fail(where, f"manifest has no '{key}' entry", RETRAIN)
        if not isinstance(m[key], typ) or (typ is int and isinstance(m[key], bool)):
            raise fail(f"{where} key '{key}'", f"must be a JSON {_JSON_NAMES[typ]}, is "
                       f"{type(m[key]).__name__}", RETRAIN)
    name = m["model"].get("name")
    if name is not None and not _text(name):
        raise fail(f"{where} key 'model.name'", f"must be text of 1-256 characters, is "
                   f"{show(name)}", RETRAIN)
    if not isinstance(m["model"].get("kwargs", {}), dict):
        raise fail(f"{where} key 'model.kwargs'", "must be a JSON object", RETRAIN)
    ds_name = m["dataset"].get("name")
    if ds_name is not None and not _text(ds_name):  # null: an imported model of no known data set
        raise fail(f"{where} key 'dataset.name'", f"must be null or text of 1-256 characters, is "
                   f"{show(m['dataset'].get('name'))}", RETRAIN)
    for key in ("method", "mode", "scope"):
        v = m["prune"].get(key)
        if v is not None and not _text(v):
            raise fail(f"{where} key 'prune.{key}'", f"must be text, is {show(v)}", RETRAIN)
    index = m["arrays"]
    if len(index) > MAX_ARRAYS:
        raise fail(f"{where} key 'arrays'", f"{len(index)} arrays, more than {MAX_ARRAYS}", RETRAIN)
    for k, meta in index.items():
        kw = f"{where} key 'arrays.{show(k, 80)}"  # the closing quote comes with the field
        if not ARRAY_KEY_RE.fullmatch(k):
            raise fail(kw + "'", "array names are state_dict keys (letters, digits, '_', '.')", RETRAIN)
        if not isinstance(meta, dict):
            raise fail(kw + "'", "must be an object with shape, dtype, sha256", RETRAIN)
        shape = meta.get("shape")
        if not (isinstance(shape, list) and len(shape) <= 8 and all(_is_int(d) and 0 <= d < 2 ** 31
                                                                    for d in shape)):
            raise fail(kw + ".shape'", f"must be a list of at most 8 non-negative integers, is {show(shape)}",
                       RETRAIN)
        if meta.get("dtype") not in ARRAY_DTYPES:
            raise fail(kw + ".dtype'", f"must be one of {sorted(ARRAY_DTYPES)}, is {show(meta.get('dtype'))}",
                       RETRAIN)
        if not (isinstance(meta.get("sha256"), str) and SHA256_RE.fullmatch(meta["sha256"])):
            raise fail(kw + ".sha256'", "must be 64 lowercase hex digits", RETRAIN)


_JSON_NAMES = {str: "string", int: "integer", dict: "object", list: "array"}


# ---------------------------------------------------------------------------------------- graph

def _ints(v, n: int | None, lo: int) -> bool:
    return (isinstance(v, list) and (n is None or len(v) == n) and len(v) > 0
            and all(_is_int(i) and lo <= i < 2 ** 16 for i in v))


def _shape(v) -> bool:
    return _ints(v, None, 1) and len(v) <= 3 and math.prod(v) < 2 ** 24


def _conv_out(size: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


class _Node:
    """Collects one node's context so every message names the same place."""

    def __init__(self, where: str, i: int, node: dict):
        self.where = f"{where} key 'graph.nodes[{i}]'" + (
            f" ('{node['name']}')" if isinstance(node.get("name"), str) and NAME_RE.fullmatch(node["name"])
            else "")
        self.node = node

    def err(self, what: str) -> BundleError:
        return fail(self.where, what, RETRAIN)

    def ints(self, key: str, n: int, lo: int) -> list[int]:
        v = self.node.get(key)
        if not _ints(v, n, lo):
            raise self.err(f"'{key}' must be {n} integer(s) >= {lo}, is {show(v)}")
        return v


def check_graph(graph: dict, arrays: dict[str, np.ndarray], where: str) -> None:
    """Names unique and C-safe, inputs defined before use, every op's attributes and output shape
    consistent with its input shapes and weights, the output a node."""
    inp = graph.get("input")
    if not isinstance(inp, dict) or not isinstance(inp.get("name"), str) or not NAME_RE.fullmatch(inp["name"]):
        raise fail(f"{where} key 'graph.input'", f"must be {{'name': a C identifier, 'shape': [...]}}, is "
                   f"{show(inp)}", RETRAIN)
    if not _shape(inp.get("shape")):
        raise fail(f"{where} key 'graph.input.shape'", f"must be 1-3 positive integers, is "
                   f"{show(inp.get('shape'))}", RETRAIN)
    nodes = graph.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise fail(f"{where} key 'graph.nodes'", "must be a non-empty list of nodes", RETRAIN)
    shapes = {inp["name"]: list(inp["shape"])}
    used_weights: dict[str, str] = {}
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            raise fail(f"{where} key 'graph.nodes[{i}]'", "must be an object", RETRAIN)
        n = _Node(where, i, node)
        name = node.get("name")
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise n.err(f"name {show(name)} is not a C-safe identifier (letters, digits, '_', at most 64, "
                        "not starting with a digit)")
        if name in shapes:
            raise n.err(f"name '{name}' is used twice")
        op = node.get("op")
        if op not in KNOWN_OPS:
            raise n.err(f"op {show(op)} is not one of {', '.join(KNOWN_OPS)}")
        ins = node.get("inputs")
        n_in = 2 if op == "add" else 1
        if not isinstance(ins, list) or len(ins) != n_in or not all(isinstance(s, str) for s in ins):
            raise n.err(f"'{op}' takes {n_in} input name(s), inputs is {show(ins)}")
        for s in ins:
            if s not in shapes:
                raise n.err(f"input {show(s)} is not the graph input or an earlier node (undefined, or a "
                            "cycle)")
        if not _shape(node.get("shape")):
            raise n.err(f"shape must be 1-3 positive integers, is {show(node.get('shape'))}")
        expect = _expected_shape(n, op, [shapes[s] for s in ins], arrays, used_weights)
        if list(node["shape"]) != expect:
            raise n.err(f"shape {node['shape']} does not follow from its input(s) "
                        f"{[shapes[s] for s in ins]}: '{op}' gives {expect}")
        shapes[name] = list(node["shape"])
    out = graph.get("output")
    if not isinstance(out, str) or out not in shapes or out == inp["name"]:
        raise fail(f"{where} key 'graph.output'", f"{show(out)} is not the name of a node", RETRAIN)


def _expected_shape(n: _Node, op: str, in_shapes: list[list[int]], arrays: dict, used: dict) -> list[int]:
    x = in_shapes[0]
    if op in ELEMENTWISE_OPS:
        return x
    if op == "add":
        if in_shapes[0] != in_shapes[1]:
            raise n.err(f"add of different shapes {in_shapes[0]} and {in_shapes[1]}")
        return x
    if op == "flatten":
        return [math.prod(x)]
    if op == "global_avgpool":
        if len(x) < 2:
            raise n.err(f"global_avgpool needs a [C, ...] input with spatial dims, input is {x}")
        return x[:1]
    if op == "linear":
        w = _weight(n, arrays, used, 2)
        if len(x) != 1 or w.shape[1] != x[0]:
            raise n.err(f"linear weight {list(w.shape)} takes {w.shape[1]} inputs, input shape is {x}")
        _bias(n, arrays, used, w.shape[0])
        return [w.shape[0]]
    dims = SPATIAL_DIMS[op]
    if len(x) != dims + 1:
        raise n.err(f"'{op}' needs a [C, {'L' if dims == 1 else 'H, W'}] input, input shape is {x}")
    if op in POOL_OPS:
        k, s, p = n.ints("kernel", dims, 1), n.ints("stride", dims, 1), n.ints("padding", dims, 0)
        if any(2 * pi > ki for pi, ki in zip(p, k)):
            raise n.err(f"padding {p} is more than half the kernel {k}")
        out = [_conv_out(xi, ki, si, pi) for xi, ki, si, pi in zip(x[1:], k, s, p)]
        if min(out) < 1:
            raise n.err(f"kernel {k} is larger than the padded input {x}")
        return [x[0], *out]
    # conv1d / conv2d
    s, p, d = n.ints("stride", dims, 1), n.ints("padding", dims, 0), n.ints("dilation", dims, 1)
    g = n.node.get("groups", 1)
    if not _is_int(g) or g < 1:
        raise n.err(f"groups must be a positive integer, is {show(g)}")
    w = _weight(n, arrays, used, dims + 2)
    c_out, c_in_g, k = w.shape[0], w.shape[1], list(w.shape[2:])
    if "kernel" in n.node and n.ints("kernel", dims, 1) != k:
        raise n.err(f"kernel {n.node['kernel']} but the weight's shape is {list(w.shape)}")
    if c_out % g or c_in_g * g != x[0]:
        raise n.err(f"weight {list(w.shape)} with groups={g} does not fit {x[0]} input channels")
    _bias(n, arrays, used, c_out)
    out = [_conv_out(xi, ki, si, pi, di) for xi, ki, si, pi, di in zip(x[1:], k, s, p, d)]
    if min(out) < 1:
        raise n.err(f"kernel {k} (dilation {d}) is larger than the padded input {x}")
    return [c_out, *out]


def _array(n: _Node, arrays: dict, used: dict, role: str) -> np.ndarray:
    key = n.node.get(role)
    if not isinstance(key, str) or key.startswith(INTRO_PREFIX) or key not in arrays:
        raise n.err(f"{role} {show(key)} is not an array of the bundle")
    if key in used:
        raise n.err(f"{role} '{key}' is also used by node '{used[key]}'")
    used[key] = n.node["name"]
    a = arrays[key]
    if a.dtype != np.float32:
        raise n.err(f"{role} '{key}' is {a.dtype}, weights must be float32")
    return a


def _weight(n: _Node, arrays: dict, used: dict, ndim: int) -> np.ndarray:
    w = _array(n, arrays, used, "weight")
    if w.ndim != ndim or min(w.shape) < 1:
        raise n.err(f"weight '{n.node['weight']}' has shape {list(w.shape)}, '{n.node['op']}' needs {ndim} "
                    "positive dimensions")
    return w


def _bias(n: _Node, arrays: dict, used: dict, rows: int) -> None:
    if n.node.get("bias") is None:
        return
    b = _array(n, arrays, used, "bias")
    if list(b.shape) != [rows]:
        raise n.err(f"bias '{n.node['bias']}' has shape {list(b.shape)}, the layer has {rows} outputs")


# --------------------------------------------------------------------------------------- levels

def measured_sparsities(intro: dict[str, np.ndarray], n_levels: int) -> list[float]:
    """Fraction of the nested (prunable) weights pruned at each level, from the intro arrays."""
    total = sum(a.size for a in intro.values())
    if total == 0:
        return [0.0] * n_levels
    counts = sum(np.bincount(a.ravel(), minlength=n_levels + 1)[: n_levels + 1] for a in intro.values())
    kept = np.cumsum(counts[1:])
    return [float(1.0 - k / total) for k in kept]


def check_levels(levels: list, intro: dict[str, np.ndarray], where: str) -> None:
    """Levels 1..L sparsest first, target and recorded sparsities in [0, 1), targets strictly
    decreasing, recorded sparsity equal to what the nesting arrays give (to the 6 decimals saved)."""
    if not 1 <= len(levels) <= MAX_LEVELS:
        raise fail(f"{where} key 'levels'", f"has {len(levels)} levels, a bundle has 1 to {MAX_LEVELS}",
                   RETRAIN)
    measured = measured_sparsities(intro, len(levels))
    prev = None
    for i, lv in enumerate(levels):
        kw = f"{where} key 'levels[{i}]"  # the closing quote comes with the field
        if not isinstance(lv, dict):
            raise fail(kw + "'", "must be an object with level, target_sparsity, sparsity", RETRAIN)
        if lv.get("level") != i + 1 or not _is_int(lv.get("level")):
            raise fail(kw + ".level'", f"is {show(lv.get('level'))}, levels are numbered 1..{len(levels)} "
                       "in order", RETRAIN)
        for key in ("target_sparsity", "sparsity"):
            v = lv.get(key)
            if not (_is_num(v) and 0 <= v < 1):
                raise fail(f"{kw}.{key}'", f"must be a number in [0, 1), is {show(v)}", RETRAIN)
        t = lv["target_sparsity"]
        if prev is not None and not t < prev:
            raise fail(f"{kw}.target_sparsity'", f"level sparsities must be listed sparsest first and "
                       f"strictly decreasing, got {[show(v.get('target_sparsity')) for v in levels]}",
                       RETRAIN)
        prev = t
        if abs(lv["sparsity"] - measured[i]) > 1e-6:
            raise fail(f"{kw}.sparsity'", f"records {lv['sparsity']} but the nesting arrays give "
                       f"{measured[i]:.6f}", RETRAIN)
        acc = lv.get("float_accuracy")
        if acc is not None and not (_is_num(acc) and 0 <= acc <= 1):
            raise fail(f"{kw}.float_accuracy'", f"must be null or a number in [0, 1], is {show(acc)}",
                       RETRAIN)


def check_arrays(arrays: dict[str, np.ndarray], graph: dict, n_levels: int, where: str) -> None:
    """Weights float32 and finite, nesting arrays uint8 of their weight's shape, one per conv/linear
    weight at most, naming no level past n_levels, and no stored nonzero where every level prunes."""
    matmul_weights = {nd.get("weight") for nd in graph["nodes"] if nd.get("op") in MATMUL_OPS}
    for k, a in arrays.items():
        kw = f"{where} array '{k}'"
        if not k.startswith(INTRO_PREFIX):
            if a.dtype != np.float32:
                raise fail(kw, f"is {a.dtype}, weights must be float32", RETRAIN)
            if not np.all(np.isfinite(a)):
                raise fail(kw, "contains NaN or Inf (training diverged?)", RETRAIN)
            continue
        key = k[len(INTRO_PREFIX):]
        if a.dtype != np.uint8:
            raise fail(kw, f"nesting array must be uint8, is {a.dtype}", RETRAIN)
        if key not in matmul_weights:
            raise fail(kw, f"nests '{key}', which is no conv/linear weight of the graph", RETRAIN)
        if a.shape != arrays[key].shape:
            raise fail(kw, f"nesting array has shape {list(a.shape)}, weight has {list(arrays[key].shape)}",
                       RETRAIN)
        if a.size and int(a.max()) > n_levels:
            raise fail(kw, f"names level {int(a.max())} but the bundle has {n_levels}", RETRAIN)
        if np.any(arrays[key][a == 0] != 0):
            raise fail(kw, f"weight '{key}' has nonzero values where every level prunes it; the masks "
                       "and weights disagree", RETRAIN)
