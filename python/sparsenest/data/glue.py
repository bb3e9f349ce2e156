"""GLUE text-pair tasks (SST-2, MRPC, RTE, STS-B, QNLI) from their TSV files, checksum-verified.

Found through the data search path (`find_dataset_dir`) in a folder `glue/<TASK>/` (e.g. ../shared/data/glue,
see its PROVENANCE.md). What each loader does with its task's quirks:

  SST-2  `sentence<TAB>label` with a header; train (67,349, the GLUE train rows re-shuffled) and dev (872).
  MRPC   files start with a UTF-8 BOM (read as utf-8-sig, so the first header is `Quality`, not
         '\\ufeffQuality'); columns by header name (Quality, #1 String, #2 String); the text is the
         untokenised MSR variant ("doesn't") and contains bare double quotes, so the files are split
         on tabs only, never parsed as CSV with quoting. test.tsv has no labels.
  RTE    Hugging Face columns `sentence1 sentence2 label idx`; labels are numeric, 0 = entailment,
         1 = not_entailment (kept as is). test.tsv labels are -1: loaded with `labels=None`.
  STS-B  dev: the GLUE `dev.tsv` (10 columns, score last). train/test: the STS Benchmark release
         `original/sts-{train,test}.tsv` (no header; genre, file, year, id, score, sentence1, sentence2 and,
         on some rows, two extra source columns that are ignored) - score in column 5. `dev-original`
         gives original/sts-dev.tsv. Scores are float32 in [0, 5].
  QNLI   only `dev.tsv` (labelled, 5,463) and an unlabelled test.tsv; text labels entailment /
         not_entailment map to 0 / 1 (the RTE convention). Asking for QNLI train raises
         `GlueSplitUnavailable`; `split_by_group` makes a leakage-free dev hold-out instead (all rows of one
         question on the same side).

Every split is identified by the sha256 of its source file; files whose hash is known (the shared copy
listed in SHA256SUMS) are verified, and a mismatch raises DatasetChecksumError unless `verify=False`
(e.g. for a user's own official GLUE download, whose SST-2/MRPC bytes differ).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import DatasetChecksumError, DatasetNotFoundError, find_dataset_dir, sha256_files

TASKS = ("sst2", "mrpc", "rte", "stsb", "qnli")
_FOLDER = {"sst2": "SST-2", "mrpc": "MRPC", "rte": "RTE", "stsb": "STS-B", "qnli": "QNLI"}
_ALIASES = {"sst-2": "sst2", "sst": "sst2", "sts-b": "stsb", "sts": "stsb"}

# relative file of each split, per task
_FILES = {
    "sst2": {"train": "train.tsv", "dev": "dev.tsv"},
    "mrpc": {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
    "rte": {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
    "stsb": {"train": "original/sts-train.tsv", "dev": "dev.tsv", "dev-original": "original/sts-dev.tsv",
             "test": "original/sts-test.tsv"},
    "qnli": {"dev": "dev.tsv", "test": "test.tsv"},
}

# sha256 of the files in ../shared/data/glue (its SHA256SUMS); other copies load with verify=False.
_SHA256 = {
    "MRPC/dev.tsv": "81c8a1a9e1dfe461dd2c1a4f98f43fe18bece44d2bf9e3d0b245b88e5aa5eaf7",
    "MRPC/test.tsv": "4ee428d354c01fa35c2f0f6ab835398abb0bec01f17ed68fbcb6c04265505b0a",
    "MRPC/train.tsv": "122becc469405bc16f9defcb8715d2a4b7ce600e9d9381e6dc42bfdd1494c51d",
    "QNLI/dev.tsv": "763e95932dd3578251de71582e06829015f9c3815a518c751dc537219b159de4",
    "QNLI/test.tsv": "6d856264e292fa7a7bc7b8e182efa1454ffd9532733c12ad813017dd5b377a5a",
    "RTE/dev.tsv": "e7e42b7ee79c36ebd780ebbdba525b939017da4ef9624c9e78b9ac2e69e36c28",
    "RTE/test.tsv": "e9bf6d2768eccbccfbd775fac3b8ff50283ecdef4b57caccdd694e17fa95250e",
    "RTE/train.tsv": "0222fd1ea26f263d325d28f5bf5cee4c58dd91cf15f1efa87f79eb714a991dc4",
    "SST-2/dev.tsv": "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
    "SST-2/train.tsv": "8621df47b79e9b3fa010405ef4dd506cbf483319cf851f20f2b6773f61d387b5",
    "STS-B/dev.tsv": "65f79065d85d2135210f502830b4413bb7f3136c2f078d3d19faa59ac69edac6",
    "STS-B/original/sts-dev.tsv": "5d7e944d8b02734b07bfdb5df67db3420c64bed153fcaa1ba47ad03480cf4234",
    "STS-B/original/sts-test.tsv": "affe45928a66ee5a708531233c95b7dacbbdc57f974f002a3d32ea0180cf816a",
    "STS-B/original/sts-train.tsv": "0f71910b59aa1ad973c5897f0791f3b0965a92b8f82b1a95f3eea9f4162fda82",
}

# GLUE metrics per task; the first is the one a one-number table reports (as in the BERT paper).
METRICS = {"sst2": ("accuracy",), "mrpc": ("f1", "accuracy"), "rte": ("accuracy",),
           "stsb": ("spearman", "pearson"), "qnli": ("accuracy",)}
CLASSES = {"sst2": ["negative", "positive"], "mrpc": ["not_equivalent", "equivalent"],
           "rte": ["entailment", "not_entailment"], "stsb": [], "qnli": ["entailment", "not_entailment"]}
NUM_LABELS = {"sst2": 2, "mrpc": 2, "rte": 2, "stsb": 1, "qnli": 2}  # 1 = regression

_HOW = ("copy the GLUE task folders (SST-2, MRPC, RTE, STS-B, QNLI; see ../shared/data/glue/PROVENANCE.md) "
        "into a folder 'glue'")


class GlueSplitUnavailable(DatasetNotFoundError):
    """The task exists but this split does not (e.g. QNLI train)."""


@dataclass
class GlueData:
    task: str
    split: str
    text_a: list[str]
    text_b: list[str] | None  # None for single-sentence tasks (SST-2)
    labels: np.ndarray | None  # int64 classes, float32 scores (STS-B), None for unlabelled test splits
    sha256: str
    source: str  # the file it came from
    note: str = ""
    groups: list[str] = field(default_factory=list)  # rows sharing a group must stay on one side of a split

    @property
    def num_labels(self) -> int:
        return NUM_LABELS[self.task]

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    @property
    def metrics(self) -> tuple[str, ...]:
        return METRICS[self.task]

    @property
    def classes(self) -> list[str]:
        return CLASSES[self.task]

    def __len__(self) -> int:
        return len(self.text_a)

    def take(self, idx, split: str | None = None, note: str | None = None) -> "GlueData":
        idx = np.asarray(idx, dtype=np.int64)
        pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
        return GlueData(self.task, split or self.split, pick(self.text_a),
                        None if self.text_b is None else pick(self.text_b),
                        None if self.labels is None else self.labels[idx], self.sha256, self.source,
                        self.note if note is None else note, pick(self.groups) if self.groups else [])

    def subset(self, n: int | None, *, seed: int = 0) -> "GlueData":
        """n random rows (all if n is None or >= len), in file order; the split name records it."""
        if n is None or n >= len(self):
            return self
        idx = np.sort(np.random.default_rng(seed).permutation(len(self))[:n])
        return self.take(idx, f"{self.split}[{n}@{seed}]")

    def identity(self) -> dict:
        out = {"task": self.task, "split": self.split, "num_samples": len(self), "sha256": self.sha256,
               "source": self.source, "note": self.note}
        if self.labels is not None:
            if self.is_regression:
                out["score_mean"] = float(np.mean(self.labels)) if len(self) else None
            else:
                out["label_counts"] = np.bincount(self.labels, minlength=self.num_labels).tolist()
        return out


def canonical_task(task: str) -> str:
    t = task.lower().replace("_", "-")
    t = _ALIASES.get(t, t)
    if t not in TASKS:
        raise KeyError(f"unknown GLUE task {task!r}; known here: {', '.join(TASKS)} (MNLI, QQP, CoLA and "
                       "WNLI are not available offline)")
    return t


def _read_rows(path: Path) -> list[list[str]]:
    """Tab-split lines; utf-8-sig drops a leading BOM (MRPC). No CSV quoting: quotes are text."""
    text = path.read_text(encoding="utf-8-sig")
    return [line.split("\t") for line in text.splitlines() if line.strip()]


def _col(header: list[str], *names: str) -> int:
    for n in names:
        if n in header:
            return header.index(n)
    raise ValueError(f"none of the columns {names} in header {header}")


def _parse(task: str, split: str, path: Path):
    rows = _read_rows(path)
    a, b, labels, groups = [], [], [], []
    if task == "stsb" and split != "dev":  # STS Benchmark release: no header, score in column 5
        for i, r in enumerate(rows):
            if len(r) < 7:
                raise ValueError(f"{path}:{i + 1}: expected >= 7 tab-separated columns, got {len(r)}")
            labels.append(float(r[4]))
            a.append(r[5])
            b.append(r[6])
        return a, b, np.asarray(labels, np.float32), []
    header, body = rows[0], rows[1:]
    if task == "sst2":
        ia, il = _col(header, "sentence"), _col(header, "label")
        for r in body:
            a.append(r[ia].strip())
            labels.append(int(r[il]))
        return a, None, np.asarray(labels, np.int64), []
    if task == "mrpc":
        ia, ib = _col(header, "#1 String"), _col(header, "#2 String")
        il = header.index("Quality") if "Quality" in header else None
        for r in body:
            a.append(r[ia])
            b.append(r[ib])
            if il is not None:
                labels.append(int(r[il]))
    elif task == "rte":
        ia, ib, il = _col(header, "sentence1"), _col(header, "sentence2"), _col(header, "label")
        for r in body:
            a.append(r[ia])
            b.append(r[ib])
            labels.append(int(r[il]))
        if labels and all(v == -1 for v in labels):
            labels = []
    elif task == "stsb":  # GLUE dev.tsv
        ia, ib, il = _col(header, "sentence1"), _col(header, "sentence2"), _col(header, "score")
        for r in body:
            a.append(r[ia])
            b.append(r[ib])
            labels.append(float(r[il]))
        return a, b, np.asarray(labels, np.float32), []
    elif task == "qnli":
        ia, ib = _col(header, "question"), _col(header, "sentence")
        il = header.index("label") if "label" in header else None
        cls = CLASSES["qnli"]
        for r in body:
            a.append(r[ia])
            b.append(r[ib])
            if il is not None:
                if r[il] not in cls:
                    raise ValueError(f"{path}: unexpected QNLI label {r[il]!r}")
                labels.append(cls.index(r[il]))
        groups = list(a)
    if labels and len(labels) != len(a):
        raise ValueError(f"{path}: {len(labels)} labels for {len(a)} rows")
    return a, b, (np.asarray(labels, np.int64) if labels else None), groups


def load_glue(task: str, split: str = "train", *, verify: bool = True) -> GlueData:
    """load_glue('rte', 'dev') -> GlueData. Raises DatasetNotFoundError saying where it looked,
    GlueSplitUnavailable for a split this task does not have here (QNLI train)."""
    t = canonical_task(task)
    folder = _FOLDER[t]
    if split not in _FILES[t]:
        extra = ""
        if t == "qnli" and split == "train":
            extra = (" QNLI train (~28 MB) is not part of the offline copy: hold out part of dev for training "
                     "(sparsenest.data.glue.split_by_group) or evaluate a model fine-tuned on another "
                     "entailment task.")
        raise GlueSplitUnavailable(f"GLUE {folder} has no split {split!r} here (available: "
                                   f"{', '.join(_FILES[t])}).{extra}")
    rel = _FILES[t][split]
    d = find_dataset_dir(f"glue/{folder}", [rel], _HOW)
    path = d / rel
    digest = sha256_files([path])
    key = f"{folder}/{rel}"
    if verify and key in _SHA256 and digest != _SHA256[key]:
        raise DatasetChecksumError(
            f"{path}: sha256 {digest} differs from the shared copy's {_SHA256[key]}. The file is corrupt or a "
            "different release; replace it, or load with verify=False (CLI: --no-verify) to use it anyway.")
    a, b, labels, groups = _parse(t, split, path)
    note = {("stsb", "train"): "STS Benchmark original/sts-train.tsv (GLUE has no other STS-B train here)",
            ("sst2", "train"): "GLUE SST-2 train rows in a shuffled order"}.get((t, split), "")
    return GlueData(t, split, a, b, labels, digest, str(path), note, groups)


def split_by_group(data: GlueData, eval_size: int, *, seed: int = 0) -> tuple[GlueData, GlueData]:
    """(train part, eval part) of one labelled split, no group (QNLI: question) on both sides. The eval
    part gets about `eval_size` rows (whole groups are added in a seeded random order until it has at
    least that many). Used for QNLI, whose train split is not available offline."""
    groups = data.groups or [str(i) for i in range(len(data))]
    uniq = sorted(set(groups))
    order = np.random.default_rng(seed).permutation(len(uniq))
    rows_of: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        rows_of.setdefault(g, []).append(i)
    ev: list[int] = []
    for j in order:
        if len(ev) >= eval_size:
            break
        ev += rows_of[uniq[j]]
    ev_set = set(ev)
    tr = [i for i in range(len(data)) if i not in ev_set]
    ev = sorted(ev)
    base = data.split
    note = (f"{data.task} has no train split here: {base} divided by {'group' if data.groups else 'row'} "
            f"(seed {seed}) into {len(tr)} rows for training and {len(ev)} held out for evaluation")
    return (data.take(tr, f"{base}-holdout-train", note), data.take(ev, f"{base}-holdout-eval", note))
