"""ONNX model -> layer graph + float weights -> bundle (through the `onnx` package).

ONNX is NCHW like the graph: weights and activations keep their layout. Supported ops: Conv (1-D/2-D,
groups, explicit or SAME/VALID auto_pad), Gemm / MatMul with a constant weight (a following Add of a
constant becomes the bias), BatchNormalization after a Conv/Gemm/MatMul (folded into it), Relu,
Clip(0, 6) (relu6), MaxPool, AveragePool (no padding), GlobalAveragePool, ReduceMean over all spatial
axes, Flatten, Reshape to [N, -1], Squeeze/Unsqueeze of size-1 axes, Add of two tensors, Identity,
Dropout, Softmax as the last op (dropped; recorded as `source.output_activation`). Constants come
from initializers or Constant nodes. Anything else: UnsupportedOpError naming the op and its output.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .mapping import GraphBuilder, UnsupportedOpError, file_identity, same_pads


def _attrs(node) -> dict:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def import_onnx(path: str | Path, *, dataset: dict | None = None):
    """Read a .onnx file and return its Bundle (one level: the model as it is)."""
    import onnx
    from onnx import numpy_helper, shape_inference

    path = Path(path)
    try:
        model = onnx.load(str(path))
        model = shape_inference.infer_shapes(model)
    except Exception as e:  # protobuf/onnx raise many kinds on a bad file
        raise UnsupportedOpError(f"{path}: not a readable ONNX model ({e})") from e
    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    shapes: dict[str, list] = {}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1 or len(g.output) != 1:
        raise UnsupportedOpError(f"{path}: {len(inputs)} inputs / {len(g.output)} outputs; one of each is "
                                 "supported")
    b = GraphBuilder(str(path))
    in_name = inputs[0].name
    in_shape = shapes[in_name][1:]
    if any(s is None for s in in_shape):
        raise UnsupportedOpError(f"{path}: input '{in_name}' has a dynamic non-batch dimension {in_shape}")
    val = {in_name: b.set_input(in_shape, in_name)}
    out_name = g.output[0].name
    output_activation = None
    consumers: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1

    for k, node in enumerate(g.node):
        op, a = node.op_type, _attrs(node)
        out = node.output[0] if node.output else ""
        where = f"{path}: op {op} (output tensor '{out}')"

        def src(i: str) -> str:
            if i not in val:
                raise UnsupportedOpError(f"{where}: input tensor '{i}' is not produced by a supported op")
            return val[i]

        def const(i: str, what: str) -> np.ndarray:
            if i not in consts:
                raise UnsupportedOpError(f"{where}: {what} '{i}' must be a constant")
            return np.asarray(consts[i])

        def rank(i: str) -> int:
            return len(shapes.get(i) or [])

        if op == "Constant":
            consts[out] = numpy_helper.to_array(a["value"]) if "value" in a else np.asarray(
                a.get("value_float", a.get("value_floats", a.get("value_int", a.get("value_ints")))))
        elif op == "Conv":
            w = const(node.input[1], "the weight").astype(np.float32)
            bias = const(node.input[2], "the bias") if len(node.input) > 2 and node.input[2] else None
            nsp = w.ndim - 2
            kernel = list(w.shape[2:])
            st = list(a.get("strides", [1] * nsp))
            dl = list(a.get("dilations", [1] * nsp))
            auto = a.get("auto_pad", b"NOTSET")
            auto = auto.decode() if isinstance(auto, bytes) else auto
            if auto in ("SAME_UPPER", "SAME_LOWER"):
                sizes = shapes[node.input[0]][2:]
                pp = [same_pads(sizes[d], kernel[d], st[d], dl[d], auto == "SAME_UPPER") for d in range(nsp)]
                before, after = [p[0] for p in pp], [p[1] for p in pp]
            else:
                pads = list(a.get("pads", [0] * (2 * nsp)))
                before, after = pads[:nsp], pads[nsp:]
            val[out] = b.conv(src(node.input[0]), w, bias, stride=st, pad_before=before, pad_after=after,
                              dilation=dl, groups=int(a.get("group", 1)), source_name=out)
        elif op in ("Gemm", "MatMul"):
            if op == "Gemm" and (a.get("transA", 0) or a.get("alpha", 1.0) != 1.0):
                raise UnsupportedOpError(f"{where}: Gemm with transA or alpha != 1 is not supported")
            if rank(node.input[0]) != 2:
                raise UnsupportedOpError(f"{where}: the input must be [N, features] (rank 2)")
            w = const(node.input[1], "the weight").astype(np.float32)
            if op == "MatMul" or not a.get("transB", 0):
                w = w.T  # [in, out] -> [out, in]
            bias = None
            if op == "Gemm" and len(node.input) > 2 and node.input[2]:
                bias = const(node.input[2], "the bias").astype(np.float32) * a.get("beta", 1.0)
                bias = np.broadcast_to(bias.reshape(-1), (w.shape[0],)).copy()
            val[out] = b.linear(src(node.input[0]), w, bias, source_name=out)
        elif op == "Add" and any(i in consts for i in node.input):
            x_in = next(i for i in node.input if i not in consts)
            c = np.asarray(const(next(i for i in node.input if i in consts), "the addend"), np.float32)
            node_name = src(x_in)
            rec = next((n for n in b.nodes if n["name"] == node_name), None)
            if rec is None or rec["op"] != "linear" or rec.get("bias") or consumers.get(x_in, 0) != 1:
                raise UnsupportedOpError(f"{where}: adding a constant is supported only as the bias of a "
                                         "MatMul")
            rec["bias"] = rec["weight"][:-len("weight")] + "bias"
            b.arrays[rec["bias"]] = np.broadcast_to(c.reshape(-1), (b.arrays[rec["weight"]].shape[0],)).copy()
            val[out] = node_name
        elif op == "Add":
            if shapes.get(node.input[0]) != shapes.get(node.input[1]):
                raise UnsupportedOpError(f"{where}: broadcasting add is not supported")
            val[out] = b.add(src(node.input[0]), src(node.input[1]), out)
        elif op == "BatchNormalization":
            node_name = src(node.input[0])
            rec = next((n for n in b.nodes if n["name"] == node_name), None)
            if rec is None or rec["op"] not in ("conv1d", "conv2d", "linear") or consumers.get(node.input[0]) != 1:
                raise UnsupportedOpError(f"{where}: batch norm must directly follow a Conv/Gemm/MatMul to be "
                                         "folded")
            gamma, beta, mean, var = (const(i, "a batch-norm parameter").astype(np.float64)
                                      for i in node.input[1:5])
            scale = gamma / np.sqrt(var + a.get("epsilon", 1e-5))
            w = b.arrays[rec["weight"]]
            b.arrays[rec["weight"]] = (w * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
            old = b.arrays.get(rec["bias"]) if rec.get("bias") else np.zeros(w.shape[0])
            rec["bias"] = rec["weight"][:-len("weight")] + "bias"
            b.arrays[rec["bias"]] = ((old - mean) * scale + beta).astype(np.float32)
            val[out] = node_name
        elif op == "Relu":
            val[out] = b.activation(src(node.input[0]), "relu", out)
        elif op == "Clip":
            lo = float(const(node.input[1], "the minimum")) if len(node.input) > 1 and node.input[1] else \
                a.get("min")
            hi = float(const(node.input[2], "the maximum")) if len(node.input) > 2 and node.input[2] else \
                a.get("max")
            if lo != 0.0 or hi != 6.0:
                raise UnsupportedOpError(f"{where}: Clip({lo}, {hi}); only Clip(0, 6) (ReLU6) is supported")
            val[out] = b.activation(src(node.input[0]), "relu6", out)
        elif op in ("MaxPool", "AveragePool"):
            kernel = list(a["kernel_shape"])
            nsp = len(kernel)
            pads = list(a.get("pads", [0] * (2 * nsp)))
            if a.get("ceil_mode", 0) or pads[:nsp] != pads[nsp:] or any(d != 1 for d in a.get("dilations", [1])):
                raise UnsupportedOpError(f"{where}: ceil_mode, dilation or asymmetric padding")
            if op == "AveragePool" and any(pads):
                raise UnsupportedOpError(f"{where}: padded average pooling is not supported")
            val[out] = b.pool(src(node.input[0]), "max" if op == "MaxPool" else "avg", kernel,
                              list(a.get("strides", kernel)), pads[:nsp], out)
        elif op == "GlobalAveragePool":
            val[out] = b.global_avgpool(src(node.input[0]), out)
        elif op == "ReduceMean":
            axes = a.get("axes")
            if axes is None and len(node.input) > 1:
                axes = const(node.input[1], "the axes").tolist()
            r = rank(node.input[0])
            spatial = [d for d in range(2, r) if (shapes[node.input[0]][d] or 0) > 1]
            if axes is None or not set(spatial) <= {int(x) % r for x in axes} or 0 in {int(x) % r for x in axes} \
                    or 1 in {int(x) % r for x in axes}:
                raise UnsupportedOpError(f"{where}: ReduceMean over axes {axes}; only over all spatial axes")
            val[out] = b.global_avgpool(src(node.input[0]), out)
        elif op in ("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout"):
            x = src(node.input[0])
            oshape = shapes.get(out)
            if op == "Flatten" and a.get("axis", 1) != 1:
                raise UnsupportedOpError(f"{where}: Flatten with axis {a.get('axis')}")
            if op in ("Flatten", "Reshape") and oshape is not None and len(oshape) != 2:
                raise UnsupportedOpError(f"{where}: reshape to {oshape}; only flattening to [N, -1] is supported")
            if op in ("Flatten", "Reshape") and not b.is_flat(x):
                val[out] = b.flatten(x, out)
            else:
                val[out] = x  # no data movement in the graph's layout
        elif op == "Softmax" and k == len(g.node) - 1 and out == out_name:
            output_activation = "softmax"
            val[out] = src(node.input[0])
        else:
            raise UnsupportedOpError(f"{where} is not supported. Supported: Conv, Gemm, MatMul, Add, "
                                     "BatchNormalization, Relu, Clip(0,6), MaxPool, AveragePool, "
                                     "GlobalAveragePool, ReduceMean, Flatten, Reshape, Squeeze, Unsqueeze, "
                                     "Identity, Dropout, Softmax (last op)")
    output = val.get(out_name)
    if output is None or output == b.input_name:
        raise UnsupportedOpError(f"{path}: the output '{out_name}' is not computed by any supported op")
    source = file_identity(path) | {"format": "onnx", "opset": [int(o.version) for o in model.opset_import],
                                    "output_activation": output_activation}
    return b.bundle(output, source=source, dataset=dataset)

