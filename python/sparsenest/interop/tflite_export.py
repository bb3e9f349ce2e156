"""Bundle level -> float32 or int8 (post-training, calibrated) TFLite flatbuffer, written with the schema's object API (ai-edge-litert's
`schema_py_generated` + `flatbuffers.Builder`; no TensorFlow, no converter).

Layout: the graph is NCHW, TFLite NHWC. Activations [C, H, W] become [1, H, W, C], 1-D maps [C, L]
become [1, 1, L, C] (conv1d runs as CONV_2D with a 1-row kernel), vectors [N] stay [1, N]; the model's
input is therefore NHWC (for one input channel, as in the KWS MFCCs, the bytes are the graph's).
Each level's weights are dense tensors with that level's zeros. Padding is an explicit PAD op before
a VALID convolution (exact for any symmetric padding, including the kernel-extended asymmetric
"SAME" of imported models); depthwise convolutions (groups = channels) become DEPTHWISE_CONV_2D;
flattening an NHWC map first transposes it back to NCHW so the FULLY_CONNECTED weights stay as they
are. A bundle imported with a final softmax gets it back (source.output_activation).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .mapping import UnsupportedOpError


def _schema():
    from .tflite_import import _schema as s
    return s()


class _Writer:
    def __init__(self):
        self.s = _schema()
        self.tensors, self.buffers, self.ops, self.codes = [], [self.s.BufferT()], [], []

    def tensor(self, shape, name: str, data: np.ndarray | None = None, ttype: int = 0, quant=None) -> int:
        """quant: (scales, zero_points, axis) of an int8/int32 tensor."""
        t = self.s.TensorT()
        t.shape = np.asarray(shape, np.int32)
        t.type = ttype
        t.name = name.encode()
        t.buffer = 0
        if quant is not None:
            q = self.s.QuantizationParametersT()
            q.scale = np.atleast_1d(np.asarray(quant[0], np.float32))
            q.zeroPoint = np.atleast_1d(np.asarray(quant[1], np.int64))
            q.quantizedDimension = int(quant[2]) if len(quant) > 2 else 0
            t.quantization = q
        if data is not None:
            buf = self.s.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def const(self, a: np.ndarray, name: str, quant=None) -> int:
        a = np.ascontiguousarray(a)
        ttype = {np.dtype(np.float32): 0, np.dtype(np.int32): 2, np.dtype(np.int8): 9}[a.dtype]
        return self.tensor(a.shape, name, a, ttype, quant)

    def op(self, name: str, inputs, outputs, opt_type: str | None = None, **opts) -> None:
        code = getattr(self.s.BuiltinOperator, name)
        if code not in self.codes:
            self.codes.append(code)
        o = self.s.OperatorT()
        o.opcodeIndex = self.codes.index(code)
        o.inputs = np.asarray(inputs, np.int32)
        o.outputs = np.asarray(outputs, np.int32)
        if opt_type:
            o.builtinOptionsType = getattr(self.s.BuiltinOptions, opt_type)
            opt = getattr(self.s, opt_type + "T")()
            for k, v in opts.items():
                setattr(opt, k, v)
            o.builtinOptions = opt
        self.ops.append(o)

    def finish(self, inputs, outputs, description: str) -> bytes:
        import flatbuffers
        sg = self.s.SubGraphT()
        sg.tensors, sg.operators = self.tensors, self.ops
        sg.inputs, sg.outputs = np.asarray(inputs, np.int32), np.asarray(outputs, np.int32)
        sg.name = b"main"
        m = self.s.ModelT()
        m.version = 3
        m.description = description.encode()
        m.subgraphs, m.buffers = [sg], self.buffers
        m.operatorCodes = []
        for c in self.codes:
            oc = self.s.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = c, min(c, 127), 1
            m.operatorCodes.append(oc)
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _nhwc(shape: list[int]) -> list[int]:
    if len(shape) == 3:
        return [1, shape[1], shape[2], shape[0]]
    if len(shape) == 2:
        return [1, 1, shape[1], shape[0]]
    return [1] + list(shape)


class _Int8:
    """Post-training int8 quantisation of one level (TFLite's scheme): activations asymmetric per tensor
    from the calibration batch's min/max (0 always representable), weights symmetric (convolutions per
    output channel, fully connected per tensor), biases int32 at scale s_in * s_w. Ops that TFLite requires
    to keep their input's scale (pad, pooling, transpose, reshape) reuse it."""

    def __init__(self, graph: dict, weights: dict, calib: np.ndarray):
        from .torch_net import GraphNet
        import torch
        with torch.no_grad():
            vals = GraphNet(graph, weights).run(torch.from_numpy(np.asarray(calib, np.float32)))
        self.params = {}
        same = ("maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d", "flatten")
        for name, v in vals.items():
            lo, hi = min(float(v.min()), 0.0), max(float(v.max()), 0.0)
            scale = (hi - lo) / 255.0 or 1.0
            self.params[name] = (scale, int(np.clip(round(-128 - lo / scale), -128, 127)))
        for n in graph["nodes"]:  # in graph order, so chains of same-scale ops inherit correctly
            if n["op"] in same:
                self.params[n["name"]] = self.params[n["inputs"][0]]

    def act(self, name: str):
        s, z = self.params[name]
        return (s, z, 0)

    @staticmethod
    def weights(k: np.ndarray, axis: int | None):
        """int8 weights and their scales (per channel along `axis`, or per tensor when None)."""
        red = tuple(i for i in range(k.ndim) if i != axis) if axis is not None else None
        amax = np.abs(k).max(axis=red) if axis is not None else np.array(np.abs(k).max())
        scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float64)
        shape = [1] * k.ndim
        if axis is not None:
            shape[axis] = -1
        q = np.clip(np.round(k / scale.reshape(shape)), -127, 127).astype(np.int8)
        return q, np.atleast_1d(scale)


def export_level_tflite(bundle, level: int, path: str | Path | None = None, *,
                        calib: np.ndarray | None = None) -> bytes:
    """Level `level` of `bundle` as a TFLite model; written to `path` when given. calib (float inputs,
    [N, *input_shape]): an int8 model quantised on that batch instead of float32."""
    if not 1 <= level <= bundle.n_levels:
        raise ValueError(f"level must be in 1..{bundle.n_levels}, not {level}")
    g = bundle.graph
    weights = bundle.level_weights(level)
    q8 = _Int8(g, weights, calib) if calib is not None else None
    w = _Writer()
    shapes = {g["input"]["name"]: list(g["input"]["shape"])}
    ttype = 9 if q8 else 0

    def act(shape, tname: str, value: str):
        return w.tensor(shape, tname, ttype=ttype, quant=q8.act(value) if q8 else None)

    def filt(k: np.ndarray, tname: str, axis: int | None, in_value: str):
        """(filter tensor, bias-scale per channel) in the model's number format."""
        if not q8:
            return w.const(k, tname), None
        kq, sc = q8.weights(k, axis)
        return w.const(kq, tname, (sc, np.zeros(len(sc), np.int64), axis or 0)), sc * q8.params[in_value][0]

    def bias_t(b: np.ndarray, tname: str, bscale):
        if bscale is None:
            return w.const(b, tname)
        bscale = np.broadcast_to(bscale, b.shape)
        return w.const(np.round(b / bscale).astype(np.int32), tname, (bscale, np.zeros(len(b), np.int64), 0))

    tid = {g["input"]["name"]: act(_nhwc(shapes[g["input"]["name"]]), "input", g["input"]["name"])}
    for n in g["nodes"]:
        op, name = n["op"], n["name"]
        x = tid[n["inputs"][0]]
        xs = shapes[n["inputs"][0]]
        shapes[name] = list(n["shape"])
        out = act(_nhwc(n["shape"]), name, name)
        if op in ("conv1d", "conv2d"):
            k = np.asarray(weights[n["weight"]], np.float32)
            if op == "conv1d":
                k = k[:, :, None, :]
            kh, kw = k.shape[2:]
            pad = [0] + list(n["padding"]) if op == "conv1d" else list(n["padding"])
            st = [1] + list(n["stride"]) if op == "conv1d" else list(n["stride"])
            dl = [1] + list(n["dilation"]) if op == "conv1d" else list(n["dilation"])
            if any(pad):
                xin = _nhwc(xs)
                padded = act([1, xin[1] + 2 * pad[0], xin[2] + 2 * pad[1], xin[3]], name + "_pad", n["inputs"][0])
                w.op("PAD", [x, w.const(np.array([[0, 0], [pad[0]] * 2, [pad[1]] * 2, [0, 0]], np.int32),
                                        name + "_paddings")], [padded], "PadOptions")
                x = padded
            bias = np.asarray(weights[n["bias"]], np.float32) if n.get("bias") else np.zeros(k.shape[0], np.float32)
            groups, cin = int(n["groups"]), xs[0]
            common = dict(padding=1, strideH=st[0], strideW=st[1], dilationHFactor=dl[0],
                          dilationWFactor=dl[1], fusedActivationFunction=0)
            if groups == 1:
                f, bs = filt(k.transpose(0, 2, 3, 1), name + "_filter", 0, n["inputs"][0])
                w.op("CONV_2D", [x, f, bias_t(bias, name + "_bias", bs)], [out], "Conv2DOptions", **common)
            elif groups == cin and k.shape[1] == 1:
                f, bs = filt(k.transpose(1, 2, 3, 0), name + "_filter", 3, n["inputs"][0])
                w.op("DEPTHWISE_CONV_2D", [x, f, bias_t(bias, name + "_bias", bs)], [out],
                     "DepthwiseConv2DOptions", depthMultiplier=k.shape[0] // cin, **common)
            else:
                raise UnsupportedOpError(f"node '{name}': grouped convolution with {groups} groups of "
                                         f"{k.shape[1]} channels has no TFLite op (only depthwise)")
        elif op == "linear":
            k = np.asarray(weights[n["weight"]], np.float32)
            bias = np.asarray(weights[n["bias"]], np.float32) if n.get("bias") else np.zeros(k.shape[0], np.float32)
            f, bs = filt(k, name + "_weights", None, n["inputs"][0])
            w.op("FULLY_CONNECTED", [x, f, bias_t(bias, name + "_bias", bs)], [out],
                 "FullyConnectedOptions", fusedActivationFunction=0)
        elif op in ("relu", "relu6"):
            w.op(op.upper(), [x], [out])
        elif op in ("maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d"):
            if any(n["padding"]):
                raise UnsupportedOpError(f"node '{name}': padded pooling is not exported")
            kk = [1] + list(n["kernel"]) if op.endswith("1d") else list(n["kernel"])
            ss = [1] + list(n["stride"]) if op.endswith("1d") else list(n["stride"])
            w.op("MAX_POOL_2D" if op.startswith("max") else "AVERAGE_POOL_2D", [x], [out], "Pool2DOptions",
                 padding=1, strideH=ss[0], strideW=ss[1], filterHeight=kk[0], filterWidth=kk[1],
                 fusedActivationFunction=0)
        elif op == "global_avgpool":
            w.op("MEAN", [x, w.const(np.array([1, 2], np.int32), name + "_axes")], [out], "ReducerOptions",
                 keepDims=False)
        elif op == "flatten":
            xin = _nhwc(xs)
            if xin[1] * xin[2] > 1:  # back to NCHW order first, so flattening matches the graph's
                t = act([1, xin[3], xin[1], xin[2]], name + "_nchw", n["inputs"][0])
                w.op("TRANSPOSE", [x, w.const(np.array([0, 3, 1, 2], np.int32), name + "_perm")], [t],
                     "TransposeOptions")
                x = t
            w.op("RESHAPE", [x, w.const(np.array([1, int(np.prod(xs))], np.int32), name + "_shape")], [out],
                 "ReshapeOptions", newShape=np.array([1, int(np.prod(xs))], np.int32))
        elif op == "add":
            w.op("ADD", [x, tid[n["inputs"][1]]], [out], "AddOptions", fusedActivationFunction=0)
        else:
            raise UnsupportedOpError(f"node '{name}': op '{op}' has no TFLite export")
        tid[name] = out
    result = tid[g["output"]]
    if (bundle.manifest.get("source") or {}).get("output_activation") == "softmax":
        sm = w.tensor(_nhwc(shapes[g["output"]]), "softmax", ttype=ttype,
                      quant=(1 / 256, -128, 0) if q8 else None)  # TFLite's fixed int8 softmax output
        w.op("SOFTMAX", [result], [sm], "SoftmaxOptions", beta=1.0)
        result = sm
    data = w.finish([tid[g["input"]["name"]]], [result],
                    f"sparsenest level {level} of {bundle.n_levels}" + (" int8" if q8 else ""))
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data
