"""Keyword spotting: Speech Commands v0.02, 12 classes, MFCC features, speaker-disjoint split.

Source: the official 12-class *test* set (speech_commands_test_set_v0.02, 4,890 one-second 16 kHz clips,
CC BY 4.0, Warden 2018) in the folder `speech_commands_v2_testset` (archive + MANIFEST.sha256 +
SHA256SUMS). No training wavs are available offline, so train and test here are both cut from that test
set, **disjoint by speaker**: every number must say so (the Dataset's `note` does).

Classes (TensorFlow's speech_commands order: silence, unknown, then the ten words):
  0 _silence_   1 _unknown_   2 yes  3 no  4 up  5 down  6 left  7 right  8 on  9 off  10 stop  11 go
The archive's folders are exactly these twelve. `_unknown_` files are named
`<word>_<speaker>_nohash_<n>.wav.wav` (other words: backward, bed, ...), the ten words
`<speaker>_nohash_<n>.wav`, `_silence_` files `<n>.wav` (background-noise snippets, no speaker).

Split: speaker id = the 8-hex-digit token just before `_nohash_`. The sorted speakers are shuffled with
`seed` (default 0) and `test_fraction` (default 0.2) of them go to test; every clip of a test speaker is
test, whichever class. `_silence_` clips have no speaker and are split at random with the same seed and
fraction.

Features (librosa 0.11): per clip (padded/trimmed to 16,000 samples) an MFCC matrix with 40 ms Hann
windows (n_fft = 640), 20 ms hop (320), no centre padding -> 49 frames; 40 mel bands 20-4,000 Hz (power
spectrum, Slaney mel), log (dB, `power_to_db`), DCT-II (ortho), 10 coefficients -- the "Hello Edge"
(Zhang et al. 2017) / MLPerf Tiny KWS front end. Layout x [N, 1, 49, 10] (time x coefficient, one input
channel) for a small 2-D CNN; standardised per coefficient with the training clips' mean/std.
Features are extracted once (about 10 s) into `cache_dir()` keyed by the archive's sha256.

The Dataset has `.groups` = speaker id per clip (str; `_silence_` clips get "silence-<n>").
"""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
import wave
from pathlib import Path

import numpy as np

from . import (Dataset, DatasetChecksumError, cache_dir, find_dataset_dir, read_cache, register_dataset,
               sha256_file, verify_sha256sums)

FOLDER = "speech_commands_v2_testset"
ARCHIVE = "speech_commands_test_set_v0.02_wav.tar.xz"
MANIFEST = "MANIFEST.sha256"
WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
CLASSES = ["_silence_", "_unknown_"] + WORDS
SAMPLE_RATE = 16000
CLIP = 16000
MFCC = dict(n_mfcc=10, n_fft=640, win_length=640, hop_length=320, center=False, n_mels=40, fmin=20.0,
            fmax=4000.0, window="hann")
FRAMES = 1 + (CLIP - MFCC["n_fft"]) // MFCC["hop_length"]  # 49
RECIPE = "kws-mfcc-v1 " + repr(sorted(MFCC.items()))

_HOW = (f"copy the Speech Commands v0.02 test set archive {ARCHIVE} with its {MANIFEST} and SHA256SUMS "
        f"into a folder '{FOLDER}' (the project keeps one in ../shared/data)")


def speaker_of(path: str) -> str | None:
    """Speaker id of an archive path (the token before `_nohash_`), None for `_silence_` clips."""
    name = path.rsplit("/", 1)[-1]
    if "_nohash_" not in name:
        return None
    return name.split("_nohash_")[0].split("_")[-1]


def _read_wav(raw: bytes, name: str) -> np.ndarray:
    with wave.open(io.BytesIO(raw)) as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1 or w.getframerate() != SAMPLE_RATE:
            raise DatasetChecksumError(f"{name}: expected 16-bit mono {SAMPLE_RATE} Hz PCM")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    out = np.zeros(CLIP, np.float32)
    n = min(CLIP, len(pcm))
    out[:n] = pcm[:n].astype(np.float32) / 32768.0
    return out


def _read_manifest(folder: Path) -> dict[str, str]:
    out = {}
    for line in (folder / MANIFEST).read_text().splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            out[parts[1].lstrip("*").strip()] = parts[0].lower()
    return out


def extract_features(folder: Path, *, progress: bool = True) -> dict[str, np.ndarray]:
    """Decode every wav of the archive (each checked against MANIFEST.sha256) and compute MFCCs.

    Returns x [N, 49, 10] float32 (unstandardised), y [N] int64, speaker [N] str, path [N] str."""
    import librosa
    from tqdm.auto import tqdm

    manifest = _read_manifest(folder)
    clips: dict[str, np.ndarray] = {}
    with tarfile.open(folder / ARCHIVE, "r:xz") as tar, \
            tqdm(total=len(manifest), desc="KWS: reading wavs", unit="wav", disable=not progress) as bar:
        for m in tar:
            if not m.isfile() or not m.name.endswith(".wav"):
                continue
            name = m.name[2:] if m.name.startswith("./") else m.name
            raw = tar.extractfile(m).read()
            want = manifest.get(name)
            got = hashlib.sha256(raw).hexdigest()
            if want is None or got != want:
                raise DatasetChecksumError(
                    f"{folder / ARCHIVE}: member {name} has sha256 {got}, {MANIFEST} says {want}. "
                    f"The archive or manifest is corrupt; replace them ({_HOW}).")
            clips[name] = _read_wav(raw, name)
            bar.update(1)
    missing = sorted(set(manifest) - set(clips))
    if missing:
        raise DatasetChecksumError(f"{folder / ARCHIVE}: {len(missing)} files of {MANIFEST} are missing "
                                   f"(first: {missing[0]}). {_HOW}")
    paths = sorted(clips)
    labels = np.array([CLASSES.index(p.split("/", 1)[0]) for p in paths], np.int64)
    audio = np.stack([clips[p] for p in paths])
    feats = []
    batch = 256
    for i in tqdm(range(0, len(paths), batch), desc="KWS: MFCC", unit="batch", disable=not progress):
        m = librosa.feature.mfcc(y=audio[i:i + batch], sr=SAMPLE_RATE, **MFCC)  # [B, 10, 49]
        feats.append(np.transpose(m, (0, 2, 1)))
    x = np.concatenate(feats).astype(np.float32)
    speakers = [speaker_of(p) or f"silence-{p.rsplit('/', 1)[-1].split('.')[0]}" for p in paths]
    return {"x": x, "y": labels, "speaker": np.array(speakers), "path": np.array(paths)}


def _sources() -> tuple[Path, str]:
    folder = find_dataset_dir(FOLDER, [ARCHIVE, MANIFEST, "SHA256SUMS"], _HOW)
    sums = verify_sha256sums(folder, [ARCHIVE], how_to_fix=_HOW)
    ident = hashlib.sha256((sums[ARCHIVE] + sha256_file(folder / MANIFEST)).encode()).hexdigest()
    return folder, ident


def _cached_features(*, progress: bool = True) -> tuple[dict[str, np.ndarray], str]:
    folder, ident = _sources()
    key = hashlib.sha256((ident + RECIPE).encode()).hexdigest()[:16]
    path = cache_dir() / f"speech_commands_v2_test_mfcc_{key}.npz"
    cached = read_cache(path)  # None: missing, torn or foreign (planted) -> rebuild
    if cached is not None:
        return cached, ident
    f = extract_features(folder, progress=progress)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, **f)
    os.replace(tmp, path)
    return f, ident


def speaker_split(speakers: np.ndarray, *, seed: int = 0, test_fraction: float = 0.2) -> np.ndarray:
    """Boolean mask, True = test: a `test_fraction` of the speakers (shuffled with `seed`); clips
    without a speaker ("silence-*") are split at random with the same seed and fraction."""
    speakers = np.asarray(speakers).astype(str)
    rng = np.random.default_rng(seed)
    silent = np.char.startswith(speakers, "silence-")
    real = np.unique(speakers[~silent])
    order = rng.permutation(len(real))
    test_spk = set(real[order[: int(round(test_fraction * len(real)))]].tolist())
    is_test = np.array([s in test_spk for s in speakers])
    sil_idx = np.flatnonzero(silent)
    sil_idx = sil_idx[rng.permutation(len(sil_idx))]
    is_test[sil_idx[: int(round(test_fraction * len(sil_idx)))]] = True
    return is_test


@register_dataset("speech_commands")
def load_speech_commands(split: str = "train", *, seed: int = 0, test_fraction: float = 0.2,
                         standardize: bool = True, progress: bool = True) -> Dataset:
    """12-class KWS: x [N, 1, 49, 10] float32 MFCC (time x coefficient), y [N] int64 (CLASSES order).

    Train/test are a speaker-disjoint split (`seed`, `test_fraction`) of the official v0.02 test set.
    `.groups` = speaker id per clip."""
    if split not in ("train", "test"):
        raise ValueError(f"speech_commands: split must be 'train' or 'test', not {split!r}")
    f, ident = _cached_features(progress=progress)
    is_test = speaker_split(f["speaker"], seed=seed, test_fraction=test_fraction)
    mask = is_test if split == "test" else ~is_test
    x = f["x"][mask]
    if standardize:
        train = f["x"][~is_test]
        mean = train.mean(axis=(0, 1), dtype=np.float64)
        std = train.std(axis=(0, 1), dtype=np.float64)
        x = ((x - mean) / std).astype(np.float32)
    n_spk = len({s for s in f["speaker"][~np.char.startswith(f["speaker"].astype(str), "silence-")]})
    note = (f"Speech Commands v0.02, 12 classes: a speaker-disjoint {1 - test_fraction:.0%}/"
            f"{test_fraction:.0%} split (seed {seed}; {n_spk} speakers) of the official test set only "
            f"({int((~is_test).sum())} train / {int(is_test.sum())} test clips); not comparable to "
            "numbers trained on the full training set")
    # Identity: the source files' digests + feature recipe + split definition + split name.
    split_id = hashlib.sha256(f"{ident} {RECIPE} seed={seed} test_fraction={test_fraction} "
                              f"standardize={standardize} {split}".encode()).hexdigest()
    ds = Dataset("speech_commands", split, np.ascontiguousarray(x[:, None, :, :]),
                 f["y"][mask].astype(np.int64), len(CLASSES), split_id, list(CLASSES), note)
    ds.groups = f["speaker"][mask].astype(str)
    return ds
