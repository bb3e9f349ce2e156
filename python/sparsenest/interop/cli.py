"""The `sparsenest import`, `export-tflite` and `train --from` command engines (cli.py parses options)."""
from __future__ import annotations

from pathlib import Path

from .mapping import UnsupportedOpError


def import_model(src: str | Path, out: str | Path, *, dataset: str | None = None, force: bool = False):
    """MODEL.tflite | MODEL.onnx -> bundle at `out`. dataset: the data set the model expects (recorded so
    `compile` can calibrate and `train --from` can fine-tune)."""
    src, out = Path(src), Path(out)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such model file")
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; choose another -o path or pass --force to replace it")
    ds = _dataset_identity(dataset) if dataset else None
    suffix = src.suffix.lower()
    if suffix == ".tflite":
        from .tflite_import import import_tflite
        b = import_tflite(src, dataset=ds)
    elif suffix == ".onnx":
        from .onnx_import import import_onnx
        b = import_onnx(src, dataset=ds)
    else:
        raise UnsupportedOpError(f"{src}: unknown model type '{suffix}'; import reads .tflite and .onnx files")
    b.save(out, overwrite=force)
    return b


def _dataset_identity(name: str) -> dict:
    from .. import data
    test = data.load(name, "test")
    return test.identity()
