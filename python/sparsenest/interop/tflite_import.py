"""TFLite flatbuffer -> layer graph + float weights -> bundle (no TensorFlow: ai-edge-litert's schema module).

Layout: TFLite activations are NHWC, the graph's NCHW. The graph input [1, H, W, C] becomes [C, H, W]
(for C = 1, as in the MLPerf KWS model's [1, 49, 10, 1] MFCCs, the bytes are the same; for C > 1 the
caller transposes) and [1, N] stays [N]. Weights: CONV_2D [O, KH, KW, I] -> [O, I, KH, KW];
DEPTHWISE_CONV_2D [1, KH, KW, C*M] -> [C*M, 1, KH, KW] with groups = C; FULLY_CONNECTED [O, I] as is.
A RESHAPE that flattens an NHWC map with more than one position is followed by FULLY_CONNECTED whose
input columns are permuted from (h, w, c) to the graph's (c, h, w) order.

int8/uint8 models: weights are dequantised `(q - zero_point) * scale` (per channel where the tensor
has per-channel scales), int32 biases `q * scale`; the input/output quantisation and the kind of
weight quantisation go into the manifest (`source.quantization`). The dequantised float model is what
the bundle holds; it reproduces the int8 interpreter to within the int8 model's own rounding.

Supported ops: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED (constant weights), RELU, RELU6, fused
RELU/RELU6, MAX_POOL_2D, AVERAGE_POOL_2D (no padding; a whole-map window is global average pooling),
MEAN over H, W, RESHAPE/SQUEEZE (flattening), ADD (two tensors), SOFTMAX as the last op (dropped: the
graph outputs logits; recorded as `source.output_activation`), QUANTIZE/DEQUANTIZE at the input or
output. Anything else: UnsupportedOpError naming the op and its output tensor.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .mapping import GraphBuilder, UnsupportedOpError, file_identity, same_pads

_NP_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8,
             10: np.float64}
_FUSED = {0: None, 1: "relu", 3: "relu6"}
_SAME, _VALID = 0, 1


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ModuleNotFoundError as e:
        raise RuntimeError("reading TFLite needs the ai-edge-litert package (pip install ai-edge-litert); "
                           "`make setup` installs it") from e
    return schema


def _op_names(schema) -> dict[int, str]:
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


class _Reader:
    def __init__(self, path: Path):
        schema = _schema()
        self.path = path
        data = path.read_bytes()
        try:
            if not schema.Model.ModelBufferHasIdentifier(data, 0):
                raise ValueError("no TFL3 identifier")
            self.model = schema.ModelT.InitFromPackedBuf(data, 0)
        except Exception as e:  # flatbuffers raises assorted errors on garbage
            raise UnsupportedOpError(f"{path}: not a TFLite flatbuffer ({e})") from e
        if len(self.model.subgraphs or []) != 1:
            raise UnsupportedOpError(f"{path}: {len(self.model.subgraphs or [])} subgraphs; only models with "
                                     "one subgraph are supported")
        self.g = self.model.subgraphs[0]
        self.names = _op_names(schema)

    def tname(self, i: int) -> str:
        n = self.g.tensors[i].name
        return n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)

    def shape(self, i: int) -> list[int]:
        return [int(s) for s in self.g.tensors[i].shape]

    def quant(self, i: int) -> tuple[np.ndarray, np.ndarray, int] | None:
        q = self.g.tensors[i].quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            return None
        zp = np.zeros(len(q.scale), np.int64) if q.zeroPoint is None else np.asarray(q.zeroPoint, np.int64)
        return np.asarray(q.scale, np.float64), zp, int(q.quantizedDimension)

    def weight_kind(self, i: int) -> str:
        q = self.quant(i)
        return "float" if q is None else ("per-channel" if q[0].size > 1 else "per-tensor")

    def is_const(self, i: int) -> bool:
        buf = self.model.buffers[self.g.tensors[i].buffer]
        return buf is not None and buf.data is not None and len(buf.data) > 0

    def const(self, i: int, what: str) -> np.ndarray:
        """A constant tensor as float32 (dequantised when quantised)."""
        t = self.g.tensors[i]
        if not self.is_const(i):
            raise UnsupportedOpError(f"{self.path}: tensor '{self.tname(i)}': {what} must be a constant "
                                     "(weights computed at run time are not supported)")
        if t.type not in _NP_TYPES:
            raise UnsupportedOpError(f"{self.path}: tensor '{self.tname(i)}': element type {t.type} is not "
                                     "supported")
        raw = np.asarray(self.model.buffers[t.buffer].data, np.uint8).tobytes()
        a = np.frombuffer(raw, dtype=np.dtype(_NP_TYPES[t.type]).newbyteorder("<")).reshape(self.shape(i))
        q = self.quant(i)
        if q is not None and a.dtype.kind in "iu":
            scale, zp, axis = q
            bshape = [1] * a.ndim
            if len(scale) > 1:
                bshape[axis] = len(scale)
            return ((a.astype(np.float64) - zp.reshape(bshape)) * scale.reshape(bshape)).astype(np.float32)
        return a.astype(np.float32)


def import_tflite(path: str | Path, *, dataset: dict | None = None):
    """Read a .tflite file and return its Bundle (one level: the model as it is)."""
    path = Path(path)
    r = _Reader(path)
    g = r.g
    b = GraphBuilder(str(path))
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise UnsupportedOpError(f"{path}: {len(g.inputs)} inputs / {len(g.outputs)} outputs; one of each "
                                 "is supported")
    in_idx = int(g.inputs[0])
    in_shape = r.shape(in_idx)
    if len(in_shape) == 4:
        shape = [in_shape[3], in_shape[1], in_shape[2]]
    elif len(in_shape) in (2, 3):
        shape = in_shape[1:] if len(in_shape) == 2 else [in_shape[2], in_shape[1]]
    else:
        raise UnsupportedOpError(f"{path}: input '{r.tname(in_idx)}' has shape {in_shape}; [1, H, W, C] or "
                                 "[1, N] is supported")
    # TFLite tensor index -> graph value name
    val = {in_idx: b.set_input(shape, r.tname(in_idx))}
    perm_fc: dict[int, list[int]] = {}  # flattened tensor -> NHWC spatial shape [H, W, C] to un-permute
    quant = {"input": r.quant(in_idx), "output": r.quant(int(g.outputs[0]))}
    weight_quant = set()
    output_activation = None
    ops = list(g.operators)
    for k, op in enumerate(ops):
        oc = r.model.operatorCodes[op.opcodeIndex]
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        name = r.names.get(code, f"code {code}")
        out = int(op.outputs[0])
        where = f"{path}: op {name} (output tensor '{r.tname(out)}')"
        ins = [int(i) for i in op.inputs]
        opt = op.builtinOptions

        def src(i: int) -> str:
            if i not in val:
                raise UnsupportedOpError(f"{where}: input tensor '{r.tname(i)}' is not produced by a "
                                         "supported op")
            return val[i]

        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = r.const(ins[1], "the filter")
            weight_quant.add(r.weight_kind(ins[1]))
            bias = r.const(ins[2], "the bias") if len(ins) > 2 and ins[2] >= 0 else None
            h, wd = r.shape(ins[0])[1:3]
            if name == "CONV_2D":
                wt = np.transpose(w, (0, 3, 1, 2))
                groups = 1
                if r.shape(ins[0])[3] != wt.shape[1]:
                    raise UnsupportedOpError(f"{where}: grouped CONV_2D is not supported")
            else:
                cin = r.shape(ins[0])[3]
                wt = np.transpose(w, (3, 0, 1, 2))  # [C*M, 1, KH, KW]
                groups = cin
            kh, kw = wt.shape[2:]
            st, dl = [opt.strideH, opt.strideW], [opt.dilationHFactor, opt.dilationWFactor]
            if opt.padding == _SAME:
                (pt, pb), (pl, pr) = same_pads(h, kh, st[0], dl[0]), same_pads(wd, kw, st[1], dl[1])
            else:
                pt = pb = pl = pr = 0
            y = b.conv(src(ins[0]), wt, bias, stride=st, pad_before=[pt, pl], pad_after=[pb, pr],
                       dilation=dl, groups=groups, source_name=r.tname(out),
                       prefix="conv" if name == "CONV_2D" else "dw")
            val[out] = b.activation(y, _fused(opt, where), r.tname(out))
        elif name == "FULLY_CONNECTED":
            w = r.const(ins[1], "the weight matrix")
            weight_quant.add(r.weight_kind(ins[1]))
            bias = r.const(ins[2], "the bias") if len(ins) > 2 and ins[2] >= 0 else None
            if opt is not None and (opt.keepNumDims or opt.weightsFormat != 0):
                raise UnsupportedOpError(f"{where}: keep_num_dims / shuffled weights are not supported")
            if ins[0] in perm_fc:  # columns in (h, w, c) order -> (c, h, w)
                hh, ww, cc = perm_fc[ins[0]]
                w = w.reshape(w.shape[0], hh, ww, cc).transpose(0, 3, 1, 2).reshape(w.shape[0], -1)
            x = src(ins[0])
            if len(r.shape(ins[0])) != 2:
                x = b.flatten(x, r.tname(ins[0]))
            y = b.linear(x, w, bias, source_name=r.tname(out))
            val[out] = b.activation(y, _fused(opt, where), r.tname(out))
        elif name in ("RELU", "RELU6"):
            val[out] = b.activation(src(ins[0]), name.lower(), r.tname(out))
        elif name in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            h, wd = r.shape(ins[0])[1:3]
            kh, kw, st = opt.filterHeight, opt.filterWidth, [opt.strideH, opt.strideW]
            (pt, pb), (pl, pr) = ((same_pads(h, kh, st[0], 1), same_pads(wd, kw, st[1], 1))
                                  if opt.padding == _SAME else ((0, 0), (0, 0)))
            if name == "AVERAGE_POOL_2D" and (kh, kw) == (h, wd) and r.shape(out)[1:3] == [1, 1]:
                y = b.global_avgpool(src(ins[0]), r.tname(out))
            elif name == "AVERAGE_POOL_2D" and (pt, pb, pl, pr) != (0, 0, 0, 0):
                raise UnsupportedOpError(f"{where}: padded average pooling is not supported")
            elif (pt, pl) != (pb, pr):
                raise UnsupportedOpError(f"{where}: asymmetric pooling padding is not supported")
            else:
                y = b.pool(src(ins[0]), "max" if name == "MAX_POOL_2D" else "avg", [kh, kw], st, [pt, pl],
                           r.tname(out))
            val[out] = b.activation(y, _fused(opt, where), r.tname(out))
        elif name == "MEAN":
            axes = sorted(int(a) % 4 for a in np.atleast_1d(r.const(ins[1], "the axes")).astype(int))
            if axes != [1, 2]:
                raise UnsupportedOpError(f"{where}: MEAN over axes {axes}; only over H, W is supported")
            val[out] = b.global_avgpool(src(ins[0]), r.tname(out))
        elif name in ("RESHAPE", "SQUEEZE"):
            ishape, oshape = r.shape(ins[0]), r.shape(out)
            if len(oshape) != 2 or oshape[0] not in (1, -1):
                raise UnsupportedOpError(f"{where}: reshape {ishape} -> {oshape}; only flattening to "
                                         "[1, N] is supported")
            x = src(ins[0])
            if len(ishape) == 4 and ishape[1] * ishape[2] > 1:
                perm_fc[out] = ishape[1:]
                x = b.flatten(x, r.tname(out))
            val[out] = x  # a [C,1,1] map or a global pool's [C] is already flat in the graph
        elif name == "ADD":
            if any(r.is_const(i) for i in ins):
                raise UnsupportedOpError(f"{where}: adding a constant is not supported")
            if r.shape(ins[0]) != r.shape(ins[1]):
                raise UnsupportedOpError(f"{where}: broadcasting add {r.shape(ins[0])} + {r.shape(ins[1])}")
            y = b.add(src(ins[0]), src(ins[1]), r.tname(out))
            val[out] = b.activation(y, _fused(opt, where), r.tname(out))
        elif name == "SOFTMAX" and k == len(ops) - 1 and out == int(g.outputs[0]):
            if opt is not None and abs(opt.beta - 1.0) > 1e-6:
                raise UnsupportedOpError(f"{where}: softmax with beta {opt.beta}")
            output_activation = "softmax"
            val[out] = src(ins[0])
        elif name in ("QUANTIZE", "DEQUANTIZE") and (ins[0] == in_idx or out == int(g.outputs[0])):
            val[out] = src(ins[0])  # the float graph needs no boundary conversion
        else:
            raise UnsupportedOpError(f"{where} is not supported. Supported: CONV_2D, DEPTHWISE_CONV_2D, "
                                     "FULLY_CONNECTED, RELU, RELU6, MAX_POOL_2D, AVERAGE_POOL_2D, MEAN, "
                                     "RESHAPE, SQUEEZE, ADD, SOFTMAX (last op)")
    output = val.get(int(g.outputs[0]))
    if output is None or output == b.input_name:
        raise UnsupportedOpError(f"{path}: the output tensor is not computed by any supported op")

    def qdict(q):
        return None if q is None else {"scale": [float(s) for s in q[0]], "zero_point": [int(z) for z in q[1]]}

    # Activation quantisation per graph value (int8 models): what the interpreter rounds each tensor to.
    index = {r.tname(i): i for i in range(len(g.tensors))}
    acts = {v: qdict(r.quant(index[t])) for v, t in b.tensor_names.items()
            if t in index and r.quant(index[t]) is not None and g.tensors[index[t]].type in (3, 9)}
    source = file_identity(path) | {
        "format": "tflite", "layout": "NHWC input [1, H, W, C] -> graph [C, H, W]",
        "output_activation": output_activation,
        "quantization": {"input": qdict(quant["input"]), "output": qdict(quant["output"]),
                         "weights": sorted(weight_quant), "activations": acts,
                         "activation_dtype": ("uint8" if g.tensors[in_idx].type == 3 else "int8") if acts else None}}
    return b.bundle(output, source=source, dataset=dataset)


def _fused(opt, where: str) -> str | None:
    f = getattr(opt, "fusedActivationFunction", 0) if opt is not None else 0
    if f not in _FUSED:
        raise UnsupportedOpError(f"{where}: fused activation {f} is not supported (only RELU, RELU6)")
    return _FUSED[f]
