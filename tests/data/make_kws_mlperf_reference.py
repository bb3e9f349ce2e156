"""Writes kws_mlperf_reference.npz: MFCCs of 8 real clips computed by TensorFlow's own ops, with MLPerf Tiny's
parameters (mlcommons/tiny benchmark/training/keyword_spotting/get_dataset.py, feature_type "mfcc", kws_util.py
defaults). Run once, by hand, in a throwaway environment with TensorFlow (not a project dependency):

    python3.11 -m venv /tmp/tfref && /tmp/tfref/bin/pip install tensorflow-cpu==2.21.0
    /tmp/tfref/bin/python tests/data/make_kws_mlperf_reference.py \
        ../shared/data/speech_commands_v2_testset/speech_commands_test_set_v0.02_wav.tar.xz

It stores the clips' raw int16 samples too, so the test needs neither TensorFlow nor the archive.
"""
import io
import sys
import tarfile
import wave
from pathlib import Path

import numpy as np
import tensorflow as tf

# The first clip of each of these folders in archive order (silence, unknown, six words), then the first
# clip shorter than one second, if any (the official test set has none: every clip is 16,000 samples).
FOLDERS = ["_silence_", "_unknown_", "yes", "no", "left", "stop", "go", "down"]


def tf_mfcc(pcm: np.ndarray) -> np.ndarray:
    """The test-time path of get_dataset.py's prepare_processing_graph for feature_type 'mfcc'."""
    audio = tf.cast(tf.constant(pcm.astype(np.int64)), tf.float32)
    audio = audio / tf.reduce_max(audio)
    audio = tf.pad(audio, [[0, 16000 - tf.shape(audio)[-1]]])
    audio = tf.slice(tf.pad(audio, [[2, 2]], mode="CONSTANT"), [2], [16000])  # the (identity) time shift
    stfts = tf.signal.stft(audio, frame_length=480, frame_step=320, fft_length=None,
                           window_fn=tf.signal.hann_window)
    spectrograms = tf.abs(stfts)
    mel = tf.signal.linear_to_mel_weight_matrix(40, stfts.shape[-1], 16000, 20.0, 4000.0)
    log_mel = tf.math.log(tf.tensordot(spectrograms, mel, 1) + 1e-6)
    return tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :10].numpy()


def main(archive: str) -> None:
    names, pcms, lengths = [], [], []
    with tarfile.open(archive, "r:xz") as tar:
        for m in tar:
            folder = m.name.lstrip("./").split("/", 1)[0]
            if not (m.isfile() and m.name.endswith(".wav")):
                continue
            with wave.open(io.BytesIO(tar.extractfile(m).read())) as w:
                pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
            new_folder = folder in FOLDERS and folder not in [n.split("/", 1)[0] for n in names]
            first_short = len(pcm) < 16000 and min(lengths, default=16000) == 16000
            if new_folder or first_short:
                names.append(m.name.lstrip("./"))
                lengths.append(len(pcm))
                pcms.append(np.pad(pcm, (0, 16000 - len(pcm))))
            if len(names) == len(FOLDERS) + 1:
                break
    feats = np.stack([tf_mfcc(p[:n]) for p, n in zip(pcms, lengths)]).astype(np.float32)
    out = Path(__file__).with_name("kws_mlperf_reference.npz")
    np.savez_compressed(out, names=np.array(names), pcm=np.stack(pcms).astype(np.int16),
                        lengths=np.array(lengths), mfcc=feats, tensorflow=np.array(tf.__version__))
    print(f"wrote {out}: {names}, features {feats.shape}")


if __name__ == "__main__":
    main(sys.argv[1])
