"""The bundle: a trained nested model as a versioned, self-describing directory.

    NAME.nest/manifest.json   what it is (graph, levels, pruning, data set, config, array index)
    NAME.nest/arrays.npz      float32 state_dict tensors + uint8 `intro/<weight key>` nesting arrays

Loading validates everything it can (format, version, array index and checksums, shapes, dtypes,
nesting, NaN/Inf, masks agreeing with the stored zeros) and raises BundleError saying what is wrong,
where, and what to do. Saving never replaces an existing bundle unless asked to.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from . import bundle_validate as check
from .bundle_validate import INTRO_PREFIX, BundleError  # noqa: F401  (BundleError is part of this API)
from .levels import level_mask

FORMAT = "sparsenest-bundle"
BUNDLE_MARKER = "manifest.json"   # its "format" key (FORMAT) marks a folder as a bundle this tool wrote
VERSION = 1


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


class Bundle:
    def __init__(self, manifest: dict, arrays: dict[str, np.ndarray], path: Path | None = None):
        self.manifest = manifest
        self.arrays = arrays
        self.path = path

    # -- views ------------------------------------------------------------------------------
    @property
    def graph(self) -> dict:
        return self.manifest["graph"]

    @property
    def levels(self) -> list[dict]:
        return self.manifest["levels"]

    @property
    def n_levels(self) -> int:
        return len(self.manifest["levels"])

    @property
    def dataset(self) -> dict:
        return self.manifest["dataset"]

    @property
    def weights(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.arrays.items() if not k.startswith(INTRO_PREFIX)}

    @property
    def intro(self) -> dict[str, np.ndarray]:
        return {k[len(INTRO_PREFIX):]: v for k, v in self.arrays.items() if k.startswith(INTRO_PREFIX)}

    def mask(self, key: str, level: int) -> np.ndarray:
        intro = self.arrays[INTRO_PREFIX + key]
        return level_mask(intro, level)

    def level_weights(self, level: int) -> dict[str, np.ndarray]:
        """The state_dict a level computes with (shared weights are the same float values)."""
        w = dict(self.weights)
        for key in self.intro:
            w[key] = w[key] * self.mask(key, level)
        return w

    def load_into(self, model, level: int | None = None):
        """Copy the weights (of `level`, or the union when None) into a torch model."""
        import torch
        sd = self.weights if level is None else self.level_weights(level)
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in sd.items()})
        return model

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_model(cls, model, intro: dict[str, np.ndarray], *, graph: dict, levels: list[dict],
                   prune: dict, dataset: dict, train_config: dict, model_spec: dict) -> "Bundle":
        arrays = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
        for key, a in intro.items():
            a = np.asarray(a.cpu().numpy() if hasattr(a, "cpu") else a).astype(np.uint8)
            arrays[key] = np.where(a == 0, np.float32(0), arrays[key])  # pruned everywhere = stored 0
            arrays[INTRO_PREFIX + key] = a
        # The recorded sparsity is what the nesting arrays give (the targets stay as asked).
        measured = check.measured_sparsities({k: arrays[INTRO_PREFIX + k] for k in intro}, len(levels))
        levels = [dict(lv, sparsity=round(s, 6)) for lv, s in zip(levels, measured)]
        manifest = {"format": FORMAT, "version": VERSION, "model": model_spec, "graph": graph,
                    "levels": levels, "prune": prune, "dataset": dataset, "train_config": train_config}
        b = cls(manifest, arrays)
        b.manifest["arrays"] = b._array_index()
        b.validate()
        return b

    def _array_index(self) -> dict:
        return {k: {"shape": list(v.shape), "dtype": str(v.dtype), "sha256": _sha(v)}
                for k, v in sorted(self.arrays.items())}

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        from .safe_output import check_output_dir, is_tool_dir, replace_dir, temp_sibling
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists; choose another output path or pass "
                                  "overwrite=True (--force on the command line) to replace it")
        # Only a folder whose manifest says it is a bundle is ever replaced (not `.`, not any folder).
        check_output_dir(path, marker=BUNDLE_MARKER, fmt=FORMAT, force=overwrite, what="bundle",
                         kind="sparsenest bundle")
        self.manifest["arrays"] = self._array_index()
        self.validate()
        # Write beside the target and rename, so an interrupted save never leaves half a bundle.
        tmp = temp_sibling(path)
        try:
            np.savez(tmp / "arrays.npz", **self.arrays)
            (tmp / BUNDLE_MARKER).write_text(json.dumps(self.manifest, indent=1, sort_keys=True) + "\n")
            replace_dir(tmp, path, owned=lambda p: is_tool_dir(p, BUNDLE_MARKER, FORMAT))
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Bundle":
        """Read and validate a bundle; anything wrong raises BundleError (one line: what, where, what
        to do). Files are checked (regular, sizes, headers) before they are read (bundle_validate)."""
        path = Path(path)
        if not path.exists():
            raise BundleError(f"{path}: no such bundle. Train one with `sparsenest train -o {path}`.")
        if not path.is_dir():
            raise BundleError(f"{path}: not a bundle directory (a bundle is a NAME.nest/ folder with "
                              "manifest.json and arrays.npz); point at the folder `sparsenest train` wrote")
        mpath, apath = path / "manifest.json", path / "arrays.npz"
        for p in (mpath, apath):
            if not p.exists():
                raise BundleError(f"{path}: missing {p.name}; this is not a complete sparsenest bundle "
                                  "(re-run `sparsenest train`)")
        manifest = check.read_manifest(mpath)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise BundleError(f"{mpath}: not a sparsenest bundle manifest (format is "
                              f"{check.show(manifest.get('format') if isinstance(manifest, dict) else None)}); "
                              "point at a bundle written by `sparsenest train`")
        if manifest.get("version") != VERSION:
            raise BundleError(f"{mpath}: bundle version {check.show(manifest.get('version'))}, this "
                              f"sparsenest reads version {VERSION}; re-train or use a matching sparsenest release")
        check.check_sections(manifest, str(mpath))
        arrays = check.read_arrays(apath, manifest["arrays"])
        b = cls(manifest, arrays, path)
        b.validate(check_index=True)
        return b

    # -- validation -------------------------------------------------------------------------
    def validate(self, check_index: bool = False) -> None:
        """The whole contract of docs/architecture.md "Bundle": manifest sections and their types, the
        array index (and, with check_index, every array's checksum), the arrays' dtypes and nesting,
        the layer graph against the arrays, the level metadata against the nesting arrays."""
        m = self.manifest
        where = str(self.path / "manifest.json") if self.path else "bundle"
        check.check_sections(m, where)
        index = m["arrays"]
        missing = sorted(set(index) - set(self.arrays))
        extra = sorted(set(self.arrays) - set(index))
        if missing or extra:
            raise BundleError(f"{where} key 'arrays': the index does not match the arrays (missing "
                              f"{missing[:5]}, unexpected {extra[:5]}); {check.RETRAIN}")
        for k, meta in index.items():
            a = self.arrays[k]
            if list(a.shape) != meta["shape"] or a.dtype != np.dtype(meta["dtype"]):
                raise BundleError(f"{where} key 'arrays.{k}': array is {a.dtype}{list(a.shape)}, the index "
                                  f"says {meta['dtype']}{meta['shape']}; {check.RETRAIN}")
            if check_index and _sha(a) != meta["sha256"]:
                raise BundleError(f"{where} key 'arrays.{k}': array does not match its checksum; the bundle "
                                  "is corrupt (re-train or restore it from a copy)")
        check.check_graph(m["graph"], self.arrays, where)
        check.check_arrays(self.arrays, m["graph"], len(m["levels"]), where)
        check.check_levels(m["levels"], self.intro, where)
