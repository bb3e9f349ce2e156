"""GLUE loaders on the real shared files: each task's quirks, label sets and counts, clear errors."""
import shutil

import numpy as np
import pytest

from sparsenest import data
from sparsenest.data import DatasetChecksumError, DatasetNotFoundError
from sparsenest.data.glue import (CLASSES, TASKS, GlueSplitUnavailable, canonical_task, load_glue,
                                  split_by_group)


@pytest.fixture(scope="module", autouse=True)
def _need_glue():
    try:
        load_glue("rte", "dev")
    except DatasetNotFoundError as e:
        pytest.skip(f"GLUE files not on the data search path: {e}")


def counts(d):
    return np.bincount(d.labels, minlength=2).tolist()


def test_sst2_train_and_dev():
    tr, dev = load_glue("sst2", "train"), load_glue("SST-2", "dev")
    assert (len(tr), len(dev)) == (67349, 872)
    assert counts(tr) == [29780, 37569] and counts(dev) == [428, 444]
    assert tr.text_b is None and dev.text_b is None
    assert dev.text_a[0] == "it 's a charming and often affecting journey ."  # GLUE's tokenised SST text
    assert dev.metrics == ("accuracy",) and dev.num_labels == 2
    with pytest.raises(GlueSplitUnavailable, match="no split 'test'"):
        load_glue("sst2", "test")


def test_mrpc_bom_untokenised_text_and_bare_quotes():
    dev = load_glue("mrpc", "dev")
    tr = load_glue("mrpc", "train")
    assert (len(tr), len(dev)) == (3668, 408)  # quoting would merge rows: every line is one pair
    assert counts(dev) == [129, 279] and counts(tr) == [1194, 2474]
    # the BOM is gone (the header was found by name) and the MSR text is untokenised
    assert dev.text_a[0].startswith("He said the foodservice pie business doesn't fit")
    assert dev.text_b[0].startswith('"The foodservice pie business does not fit')  # a bare quote is text
    assert not any(t.startswith("\ufeff") for t in dev.text_a[:5])
    assert sum("n't" in t for t in tr.text_a) > 50 and not any(" n't" in t for t in tr.text_a)
    assert dev.metrics == ("f1", "accuracy")
    test = load_glue("mrpc", "test")
    assert len(test) == 1725 and test.labels is None


def test_rte_numeric_labels_zero_is_entailment():
    tr, dev, test = load_glue("rte", "train"), load_glue("rte", "dev"), load_glue("rte", "test")
    assert (len(tr), len(dev), len(test)) == (2490, 277, 3000)
    assert counts(tr) == [1249, 1241] and counts(dev) == [146, 131]
    assert set(np.unique(dev.labels)) == {0, 1} and CLASSES["rte"][0] == "entailment"
    assert test.labels is None  # -1 in the file
    i = dev.text_a.index(next(t for t in dev.text_a if t.startswith("Dana Reeve")))
    assert dev.text_b[i] == "Christopher Reeve had an accident." and dev.labels[i] == 1


def test_stsb_original_files_score_in_column_5():
    tr = load_glue("sts-b", "train")
    assert len(tr) == 5749 and tr.labels.dtype == np.float32
    assert tr.text_a[0] == "A plane is taking off." and tr.labels[0] == 5.0
    assert tr.text_b[0] == "An air plane is taking off."
    assert 0 <= tr.labels.min() and tr.labels.max() <= 5
    # rows with two extra source columns parse like the others
    j = next(i for i, t in enumerate(tr.text_a) if t.startswith("Driver backs into stroller"))
    assert tr.labels[j] == 4.0 and tr.text_b[j].startswith("Driver backs into mom")
    dev, orig = load_glue("stsb", "dev"), load_glue("stsb", "dev-original")
    assert len(dev) == len(orig) == 1500
    assert abs(float(dev.labels.mean()) - 2.364) < 1e-3
    same = sum(a == c and b == d and x == y for a, b, x, c, d, y in
               zip(dev.text_a, dev.text_b, dev.labels, orig.text_a, orig.text_b, orig.labels))
    assert same >= 1490  # PROVENANCE: 1,493 rows identical field by field
    assert dev.metrics == ("spearman", "pearson") and dev.is_regression
    test = load_glue("stsb", "test")
    assert len(test) == 1379 and test.labels is not None  # the STS Benchmark test set has gold scores


def test_qnli_dev_only_and_group_holdout():
    dev = load_glue("qnli", "dev")
    assert len(dev) == 5463 and counts(dev) == [2702, 2761]  # 0 = entailment, as RTE
    with pytest.raises(GlueSplitUnavailable, match="hold out part of dev"):
        load_glue("qnli", "train")
    assert load_glue("qnli", "test").labels is None
    tr, ev = split_by_group(dev, 1000, seed=0)
    assert len(tr) + len(ev) == len(dev) and 1000 <= len(ev) < 1030
    assert not set(tr.groups) & set(ev.groups)  # no question on both sides
    assert "no train split" in ev.note and ev.split == "dev-holdout-eval"
    tr2, ev2 = split_by_group(dev, 1000, seed=0)
    assert ev2.text_a == ev.text_a  # deterministic


def test_subset_and_identity():
    tr = load_glue("sst2", "train")
    s = tr.subset(500, seed=3)
    assert len(s) == 500 and s.split == "train[500@3]" and s.sha256 == tr.sha256
    assert tr.subset(None) is tr
    ident = s.identity()
    assert ident["num_samples"] == 500 and sum(ident["label_counts"]) == 500


def test_unknown_task_and_missing_files_are_clear(tmp_path, monkeypatch):
    with pytest.raises(KeyError, match="MNLI, QQP"):
        load_glue("mnli", "dev")
    assert canonical_task("STS-B") == "stsb" and set(TASKS) == {"sst2", "mrpc", "rte", "stsb", "qnli"}
    monkeypatch.setattr(data, "search_path", lambda: [tmp_path])
    with pytest.raises(DatasetNotFoundError) as e:
        load_glue("rte", "dev")
    msg = str(e.value)
    assert "glue/RTE" in msg and str(tmp_path) in msg and "Looked in" in msg


def test_checksum_and_sliced_copies(tmp_path, monkeypatch):
    src = load_glue("mrpc", "dev").source
    d = tmp_path / "glue" / "MRPC"
    d.mkdir(parents=True)
    raw = open(src, "rb").read()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw.split(b"\n")
    (d / "dev.tsv").write_bytes(b"\n".join(lines[:21]) + b"\n")  # BOM + header + 20 rows
    monkeypatch.setattr(data, "search_path", lambda: [tmp_path])
    with pytest.raises(DatasetChecksumError, match="verify=False"):
        load_glue("mrpc", "dev")
    s = load_glue("mrpc", "dev", verify=False)
    assert len(s) == 20 and s.text_a[0].startswith("He said the foodservice")
    shutil.copy(src, d / "dev.tsv")
    assert len(load_glue("mrpc", "dev")) == 408  # the real bytes verify
