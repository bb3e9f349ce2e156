"""Keyword spotting with MLPerf Tiny's front end: the DS-CNN's 49x10 MFCC input, in numpy.

MLPerf Tiny (mlcommons/tiny, benchmark/training/keyword_spotting/get_dataset.py, feature_type "mfcc",
with kws_util.py's defaults) computes its features with TensorFlow ops; this module repeats each step:

  1. waveform: the clip's int16 samples as float32, divided by the clip's largest sample
     (`tf.reduce_max`, not the largest magnitude), zero-padded at the end to 16,000 samples. The
     "time shift" of the test pipeline (pad 2 + slice from 2) is the identity. No background noise.
  2. `tf.signal.stft(frame_length=480 (30 ms), frame_step=320 (20 ms), fft_length=None -> 512,
     window_fn=hann_window)`: periodic Hann window of 480, frames without end padding -> 49 frames,
     each zero-padded to 512 by the real FFT -> 257 bins; magnitude `tf.abs` (not power).
  3. `tf.signal.linear_to_mel_weight_matrix(40, 257, 16000, 20.0, 4000.0)`: HTK mel scale
     (1127 ln(1 + f/700)), triangles spaced evenly in mel between 20 and 4,000 Hz, the DC bin zeroed.
  4. `tf.math.log(mel + 1e-6)` (natural log).
  5. `tf.signal.mfccs_from_log_mel_spectrograms`: unnormalised DCT-II (2 sum x cos) times
     1/sqrt(2 * 40); the first 10 coefficients.

TensorFlow computes in float32; this module computes in float64 and rounds the result to float32,
so values differ from TensorFlow's by float32 rounding (tests/data/kws_mlperf_reference.npz holds
features computed by TensorFlow itself; the test states the tolerance). A clip whose largest sample is
<= 0 (all silence) would divide by zero in TensorFlow; here it is left unscaled.

Data: the official Speech Commands v0.02 12-class test set (`speech_commands_v2_testset`). Classes in
MLPerf's (TFDS) order, which the MLPerf models' outputs follow:
  0 down 1 go 2 left 3 no 4 off 5 on 6 right 7 stop 8 up 9 yes 10 _silence_ 11 _unknown_
Splits: "all" (the 4,890 clips, what MLPerf reports on), "train"/"test" (speaker-disjoint 80/20 split
of the test set, exactly the `speech_commands` loader's, so fine-tuning never sees a held-out speaker).
Layout x [N, 1, 49, 10] float32 (one channel, time x coefficient): the same bytes as TFLite's NHWC
[N, 49, 10, 1]. No standardisation: the MLPerf model expects raw MFCCs.
"""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
import wave
from pathlib import Path

import numpy as np

from . import Dataset, DatasetChecksumError, cache_dir, register_dataset
from .speech_commands import ARCHIVE, MANIFEST, _HOW, _read_manifest, _sources, speaker_of, speaker_split

CLASSES = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "_silence_", "_unknown_"]
SAMPLE_RATE = 16000
CLIP = 16000
FRAME = 480          # 30 ms
STEP = 320           # 20 ms
FFT = 512            # tf.signal.stft: the next power of two >= FRAME
N_MEL, F_LO, F_HI = 40, 20.0, 4000.0
LOG_OFFSET = 1e-6
N_DCT = 10
FRAMES = 1 + (CLIP - FRAME) // STEP  # 49
RECIPE = f"mlperf-tiny-kws-mfcc-v1 {FRAME} {STEP} {FFT} {N_MEL} {F_LO} {F_HI} {LOG_OFFSET} {N_DCT}"


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)


def mel_matrix() -> np.ndarray:
    """[257, 40]: tf.signal.linear_to_mel_weight_matrix(40, 257, 16000, 20, 4000), in float64."""
    n_bins = FFT // 2 + 1
    freqs = np.linspace(0.0, SAMPLE_RATE / 2.0, n_bins)[1:]  # HTK: the DC bin gets no weight
    mel = _hz_to_mel(freqs)[:, None]
    edges = np.linspace(_hz_to_mel(F_LO), _hz_to_mel(F_HI), N_MEL + 2)
    lower, center, upper = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    w = np.maximum(0.0, np.minimum((mel - lower) / (center - lower), (upper - mel) / (upper - center)))
    return np.vstack([np.zeros((1, N_MEL)), w])


def dct_matrix() -> np.ndarray:
    """[40, 10]: TensorFlow's MFCC DCT, 2 cos(pi k (2n+1) / 2N) / sqrt(2N)."""
    n = np.arange(N_MEL)[:, None]
    k = np.arange(N_DCT)[None]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * N_MEL)) / np.sqrt(2.0 * N_MEL)


def scale_waveform(pcm: np.ndarray) -> np.ndarray:
    """int16 samples of one clip -> float64 [16000]: divided by the clip's maximum, zero-padded."""
    x = np.asarray(pcm, np.float64)[:CLIP]
    peak = x.max() if x.size else 0.0
    if peak > 0:
        x = x / peak
    out = np.zeros(CLIP, np.float64)
    out[:len(x)] = x
    return out


def mfcc(waves: np.ndarray) -> np.ndarray:
    """Scaled waveforms [B, 16000] -> MFCC [B, 49, 10] float32 (MLPerf Tiny's recipe, module docstring)."""
    waves = np.atleast_2d(np.asarray(waves, np.float64))
    n = np.arange(FRAME)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / FRAME)  # periodic Hann, as tf.signal.hann_window
    idx = np.arange(FRAMES)[:, None] * STEP + n[None]
    frames = waves[:, idx] * window                          # [B, 49, 480]
    mag = np.abs(np.fft.rfft(frames, n=FFT, axis=-1))         # [B, 49, 257]
    log_mel = np.log(mag @ mel_matrix() + LOG_OFFSET)
    return (log_mel @ dct_matrix()).astype(np.float32)


def _read_pcm(raw: bytes, name: str) -> np.ndarray:
    with wave.open(io.BytesIO(raw)) as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1 or w.getframerate() != SAMPLE_RATE:
            raise DatasetChecksumError(f"{name}: expected 16-bit mono {SAMPLE_RATE} Hz PCM")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def label_of(path: str) -> int:
    return CLASSES.index(path.split("/", 1)[0])


def extract_features(folder: Path, *, progress: bool = True) -> dict[str, np.ndarray]:
    """Every clip of the archive (checked against MANIFEST.sha256) -> x [N, 49, 10], y, speaker, path."""
    from tqdm.auto import tqdm

    manifest = _read_manifest(folder)
    waves: dict[str, np.ndarray] = {}
    with tarfile.open(folder / ARCHIVE, "r:xz") as tar, \
            tqdm(total=len(manifest), desc="KWS (MLPerf): reading wavs", unit="wav", disable=not progress) as bar:
        for m in tar:
            if not m.isfile() or not m.name.endswith(".wav"):
                continue
            name = m.name[2:] if m.name.startswith("./") else m.name
            raw = tar.extractfile(m).read()
            if manifest.get(name) != hashlib.sha256(raw).hexdigest():
                raise DatasetChecksumError(f"{folder / ARCHIVE}: member {name} does not match {MANIFEST}; "
                                           f"the archive is corrupt ({_HOW})")
            waves[name] = scale_waveform(_read_pcm(raw, name))
            bar.update(1)
    missing = sorted(set(manifest) - set(waves))
    if missing:
        raise DatasetChecksumError(f"{folder / ARCHIVE}: {len(missing)} files of {MANIFEST} are missing "
                                   f"(first: {missing[0]}). {_HOW}")
    paths = sorted(waves)
    x = np.concatenate([mfcc(np.stack([waves[p] for p in paths[i:i + 256]]))
                        for i in range(0, len(paths), 256)])
    speakers = [speaker_of(p) or f"silence-{p.rsplit('/', 1)[-1].split('.')[0]}" for p in paths]
    return {"x": x, "y": np.array([label_of(p) for p in paths], np.int64), "speaker": np.array(speakers),
            "path": np.array(paths)}


def _cached_features(progress: bool = True) -> tuple[dict[str, np.ndarray], str]:
    folder, ident = _sources()
    key = hashlib.sha256((ident + RECIPE).encode()).hexdigest()[:16]
    path = cache_dir() / f"speech_commands_v2_test_mlperf_mfcc_{key}.npz"
    if path.exists():
        try:
            with np.load(path) as z:
                return {k: z[k] for k in z.files}, ident
        except Exception:  # a torn write: rebuild
            pass
    f = extract_features(folder, progress=progress)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, **f)
    os.replace(tmp, path)
    return f, ident


@register_dataset("speech_commands_mlperf")
def load_speech_commands_mlperf(split: str = "train", *, seed: int = 0, test_fraction: float = 0.2,
                                progress: bool = True) -> Dataset:
    """x [N, 1, 49, 10] float32 MLPerf Tiny MFCCs, y in MLPerf's class order. split: "all", or "train" /
    "test" of the speaker-disjoint split (`seed`, `test_fraction`)."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"speech_commands_mlperf: split must be 'train', 'test' or 'all', not {split!r}")
    f, ident = _cached_features(progress)
    if split == "all":
        mask = np.ones(len(f["y"]), bool)
        note = "Speech Commands v0.02, 12 classes: the whole official test set (4,890 clips), MLPerf Tiny MFCCs"
    else:
        is_test = speaker_split(f["speaker"], seed=seed, test_fraction=test_fraction)
        mask = is_test if split == "test" else ~is_test
        note = (f"Speech Commands v0.02, 12 classes, MLPerf Tiny MFCCs: a speaker-disjoint "
                f"{1 - test_fraction:.0%}/{test_fraction:.0%} split (seed {seed}) of the official test set "
                f"({int((~is_test).sum())} train / {int(is_test.sum())} test clips)")
    split_id = hashlib.sha256(f"{ident} {RECIPE} seed={seed} test_fraction={test_fraction} {split}"
                              .encode()).hexdigest()
    ds = Dataset("speech_commands_mlperf", split, np.ascontiguousarray(f["x"][mask][:, None]),
                 f["y"][mask].astype(np.int64), len(CLASSES), split_id, list(CLASSES), note)
    ds.groups = f["speaker"][mask].astype(str)
    return ds
