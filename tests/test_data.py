"""Dataset sources, encoding cache and split."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from ssgan_core.data import (
    FolderOptions,
    FolderSource,
    cache_key,
    encode_clips,
    encode_dataset,
    load_dataset,
    split_indices,
)
from ssgan_core.errors import InputError
from ssgan_core.interfaces import AudioSpec
from ssgan_plugins.data import synthetic
from ssgan_plugins.data.synthetic import (
    SyntheticKicks,
    SyntheticKicksOptions,
    SyntheticTones,
    SyntheticTonesOptions,
)
from tests.tiny_parts import SAMPLE_RATE, SECONDS, TinyTransform, tiny_config, tiny_host

SPEC = AudioSpec(SAMPLE_RATE, SECONDS)


def _stack(source) -> np.ndarray:
    return np.stack([c.audio for c in source.clips()])


def test_synthetic_kicks_are_deterministic_varied_and_chunk_independent(monkeypatch):
    spec = AudioSpec(22_050, 0.5)
    kicks = _stack(SyntheticKicks(SyntheticKicksOptions(count=20), spec))
    assert kicks.shape == (20, 2, spec.num_samples) and kicks.dtype == np.float32
    assert np.isfinite(kicks).all() and np.abs(kicks).max() <= 0.951
    assert np.array_equal(kicks, _stack(SyntheticKicks(SyntheticKicksOptions(count=20), spec)))
    monkeypatch.setattr(synthetic, "CHUNK", 3)
    assert np.array_equal(kicks, _stack(SyntheticKicks(SyntheticKicksOptions(count=20), spec)))
    other = _stack(SyntheticKicks(SyntheticKicksOptions(count=20, seed=1), spec))
    assert not np.allclose(kicks, other)

    # Kick-shaped: loud start, quiet end, energy mostly below 200 Hz.
    tenth = spec.num_samples // 10
    rms_start = np.sqrt((kicks[..., :tenth] ** 2).mean((1, 2)))
    rms_end = np.sqrt((kicks[..., -tenth:] ** 2).mean((1, 2)))
    assert (rms_start > 5 * rms_end).all()
    power = np.abs(np.fft.rfft(kicks.mean(1), axis=-1)) ** 2
    freqs = np.fft.rfftfreq(spec.num_samples, 1 / spec.sample_rate)
    assert (power[:, freqs < 200].sum(1) / power.sum(1) > 0.5).all()
    assert _decay_frames(kicks, spec.sample_rate).std() > 2  # decays differ from kick to kick


def _decay_frames(kicks: np.ndarray, sample_rate: int) -> np.ndarray:
    """10 ms frames from the loudest frame until the level falls 20 dB (clip length if never)."""
    hop = sample_rate // 100
    n = kicks.shape[-1] // hop * hop
    rms = np.sqrt((kicks[..., :n].reshape(len(kicks), 2, -1, hop) ** 2).mean((1, 3)))
    frames = np.arange(rms.shape[1])[None]
    below = (rms < 0.1 * rms.max(1, keepdims=True)) & (frames > rms.argmax(1)[:, None])
    return np.where(below.any(1), below.argmax(1), rms.shape[1])


def test_diverse_kicks_are_wider_and_more_varied():
    spec = AudioSpec(44_100, 0.6)
    curated = _stack(SyntheticKicks(SyntheticKicksOptions(count=40), spec))
    diverse = _stack(SyntheticKicks(SyntheticKicksOptions(count=40, variety="diverse"), spec))

    def side(x):
        return np.abs(x[:, 0] - x[:, 1]).mean()

    assert side(diverse) > 2 * side(curated)
    assert _decay_frames(diverse, 44_100).std() > 1.2 * _decay_frames(curated, 44_100).std()


def test_recorded_kicks_have_beater_room_and_noise_over_the_sine_kick():
    """The default layers put energy where recorded kicks have it and the sine kick has
    none: a broadband attack, a decaying mid band, and left/right that differ."""
    spec = AudioSpec(44_100, 0.6)
    recorded = _stack(SyntheticKicks(SyntheticKicksOptions(count=24), spec))
    sine = _stack(SyntheticKicks(SyntheticKicksOptions(count=24, layers="sine"), spec))
    assert recorded.shape == sine.shape and np.isfinite(recorded).all() and np.abs(recorded).max() <= 0.971

    def band_share(x, lo, hi, start_s, stop_s):
        part = x[..., int(start_s * spec.sample_rate) : int(stop_s * spec.sample_rate)].mean(1)
        power = np.abs(np.fft.rfft(part, axis=-1)) ** 2
        freqs = np.fft.rfftfreq(part.shape[-1], 1 / spec.sample_rate)
        return power[:, (freqs >= lo) & (freqs < hi)].sum(1) / power.sum(1)

    # Beater: the first 10 ms hold far more 1-8 kHz energy; noise and room: so does the decay.
    assert np.median(band_share(recorded, 1000, 8000, 0, 0.01)) > 5 * np.median(
        band_share(sine, 1000, 8000, 0, 0.01)
    )
    decay_band = band_share(recorded, 2000, 8000, 0.05, 0.3)
    assert np.median(decay_band) > 3 * np.median(band_share(sine, 2000, 8000, 0.05, 0.3))
    # Still kicks: most energy below 200 Hz, and nothing left at the top of the spectrum.
    assert (band_share(recorded, 0, 200, 0, 0.6) > 0.5).all()
    assert (band_share(recorded, 16000, 22050, 0, 0.6) < 1e-4).all()
    # Room and microphones: the channels differ more than the sine kick's detuning makes them.
    side = np.abs(recorded[:, 0] - recorded[:, 1]).mean(1) / np.abs(recorded).mean((1, 2))
    side_sine = np.abs(sine[:, 0] - sine[:, 1]).mean(1) / np.abs(sine).mean((1, 2))
    assert np.median(side) > 2 * np.median(side_sine)
    # The sine kicks are the ones of earlier versions: the layer draws come after theirs.
    assert (
        SyntheticKicks(SyntheticKicksOptions(count=24), spec).fingerprint()
        != SyntheticKicks(SyntheticKicksOptions(count=24, layers="sine"), spec).fingerprint()
    )


def test_clip_noise_depends_on_the_clip_not_the_chunk():
    whole = synthetic.clip_noise(7, 0, 10, 1000)
    parts = np.concatenate([synthetic.clip_noise(7, 0, 4, 1000), synthetic.clip_noise(7, 4, 6, 1000)])
    assert np.array_equal(whole, parts) and whole.shape == (10, 1000)
    assert abs(float(whole.mean())) < 0.05 and abs(float(whole.std()) - 1.0) < 0.05
    assert abs(np.corrcoef(whole[0], whole[1])[0, 1]) < 0.15  # clips do not share noise
    assert synthetic.clip_noise(7, 0, 3, 1001).shape == (3, 1008)  # whole Philox blocks per clip
    assert not np.array_equal(whole, synthetic.clip_noise(8, 0, 10, 1000))


def test_synthetic_tones():
    spec = AudioSpec(16_000, 0.5)
    source = SyntheticTones(SyntheticTonesOptions(count=10), spec)
    clips = list(source.clips())
    tones = np.stack([c.audio for c in clips])
    assert tones.shape == (10, 2, spec.num_samples) and np.isfinite(tones).all()
    assert np.array_equal(tones, _stack(SyntheticTones(SyntheticTonesOptions(count=10), spec)))
    assert len({c.name.split("_")[0] for c in clips}) > 1  # several timbres
    assert source.fingerprint() != SyntheticTones(SyntheticTonesOptions(count=10, seed=1), spec).fingerprint()


def test_split_is_seeded_disjoint_and_complete():
    groups = torch.arange(50)
    train, val = split_indices(groups, 0.2, seed=3)
    assert len(val) == 10 and len(train) == 40
    assert sorted(torch.cat([train, val]).tolist()) == list(range(50))
    again = split_indices(groups, 0.2, seed=3)
    assert torch.equal(train, again[0]) and torch.equal(val, again[1])
    assert not torch.equal(val, split_indices(groups, 0.2, seed=4)[1])
    assert len(split_indices(torch.arange(2), 0.01, seed=0)[1]) == 1
    with pytest.raises(InputError, match="at least 2"):
        split_indices(torch.zeros(6, dtype=torch.long), 0.2, seed=0)  # six images of one clip


def test_split_by_source_clip_never_leaks_copies_into_validation():
    clips, copies = 40, 3
    groups = torch.arange(clips).repeat(copies + 1)  # originals, then copy 1 of each, ...
    augmented = torch.arange(len(groups)) >= clips
    for seed in range(5):
        train, val = split_indices(groups, 0.25, seed, augmented)
        val_clips, train_clips = set(groups[val].tolist()), set(groups[train].tolist())
        assert len(val_clips) == 10 and not val_clips & train_clips
        assert not augmented[val].any() and len(val) == 10  # one real image per held-out clip
        assert len(train) == 30 * (copies + 1)  # every image of every training clip
    # Without copies the split is the one a plain shuffle of the clips gives.
    plain_train, plain_val = split_indices(torch.arange(clips), 0.25, 7)
    assert torch.equal(split_indices(groups, 0.25, 7, augmented)[1], plain_val)
    assert torch.equal(groups[split_indices(groups, 0.25, 7, augmented)[0][:30]], plain_train)


# --------------------------------------------------------------------------- folders


def _write(path, seconds=0.05, sr=SAMPLE_RATE, freq=200.0, channels=2):
    t = np.arange(int(seconds * sr)) / sr
    tone = 0.5 * np.sin(2 * np.pi * freq * t)
    data = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr)


def _folder(tmp_path):
    root = tmp_path / "clips"
    _write(root / "a.wav", freq=100)
    _write(root / "sub" / "b.wav", freq=300, channels=1)
    _write(root / "c.flac", freq=500)
    (root / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    return root


def test_folder_source_reads_files_and_skips_corrupt_ones(tmp_path):
    root = _folder(tmp_path)
    source = FolderSource(FolderOptions(path=root), SPEC)
    clips = list(source.clips())
    assert sorted(c.name for c in clips) == ["a.wav", "c.flac", "sub/b.wav"]
    assert all(c.audio.shape == (2, SPEC.num_samples) for c in clips)
    assert [s.name for s in source.skipped] == ["broken.wav"] and source.skipped[0].reason
    flat = FolderSource(FolderOptions(path=root, recursive=False), SPEC)
    assert "sub/b.wav" not in [c.name for c in flat.clips()]


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="has no audio files"):
        FolderSource(FolderOptions(path=tmp_path / "empty"), SPEC).fingerprint()
    with pytest.raises(InputError, match="does not exist"):
        FolderSource(FolderOptions(path=tmp_path / "nope"), SPEC).clips().__next__()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.wav").write_bytes(b"not audio")
    with pytest.raises(InputError, match=r"no usable audio.*x\.wav"):
        encode_clips(FolderSource(FolderOptions(path=bad), SPEC), TinyTransform(None, SPEC), SPEC)


def test_non_finite_encoding_names_the_clip(tmp_path):
    class NanTransform(TinyTransform):
        def encode(self, audio: torch.Tensor) -> torch.Tensor:
            images = super().encode(audio)
            images[audio[:, 0, 0] > 0.5] = float("nan")
            return images

    root = tmp_path / "data"
    root.mkdir()
    _write(root / "fine.wav")
    loud = np.zeros((SPEC.num_samples, 2), np.float32)
    loud[0] = 0.9
    sf.write(root / "odd.wav", loud, SPEC.sample_rate)
    with pytest.raises(InputError, match=r"non-finite values while encoding odd\.wav$"):
        encode_clips(FolderSource(FolderOptions(path=root), SPEC), NanTransform(None, SPEC), SPEC)


def test_fingerprint_follows_file_content(tmp_path):
    root = _folder(tmp_path)
    before = FolderSource(FolderOptions(path=root), SPEC).fingerprint()
    assert FolderSource(FolderOptions(path=root), SPEC).fingerprint() == before
    assert FolderSource(FolderOptions(path=root, downmix=True), SPEC).fingerprint() != before
    _write(root / "a.wav", freq=101)  # same name and size, new content
    assert FolderSource(FolderOptions(path=root), SPEC).fingerprint() != before


def test_encoding_is_cached_and_invalidated(tmp_path):
    root = _folder(tmp_path)
    transform = TinyTransform(None, SPEC)

    def encode(source):
        key = cache_key("folder", source.fingerprint(), {"name": "tiny"}, "1", SPEC)
        return encode_dataset(source, transform, SPEC, key=key, cache_dir=tmp_path / "cache")

    first = encode(FolderSource(FolderOptions(path=root), SPEC))
    assert not first.from_cache and len(first) == 3 and first.images.shape[1:] == (2, 32, 32)
    assert np.load(tmp_path / "cache" / f"{first.key}.npy").dtype == np.float16  # half of float32
    assert [s.name for s in first.skipped] == ["broken.wav"]
    every = list(range(3))
    second = encode(FolderSource(FolderOptions(path=root), SPEC))
    assert second.from_cache and second.names == first.names
    assert torch.equal(first.images.take(every), second.images.take(every))
    assert [s.name for s in second.skipped] == ["broken.wav"]  # still reported from the cache

    _write(root / "c.flac", freq=900)
    third = encode(FolderSource(FolderOptions(path=root), SPEC))
    assert not third.from_cache and third.key != first.key
    changed = third.images.take([third.names.index("c.flac")])
    assert not torch.equal(changed, first.images.take([first.names.index("c.flac")]))


def test_load_dataset_key_follows_transform_and_audio_settings(tmp_path):
    host = tiny_host()
    base = load_dataset(tiny_config(tmp_path, host), host)
    assert not base.from_cache and len(base) == 24
    assert load_dataset(tiny_config(tmp_path, host), host).from_cache
    longer = load_dataset(tiny_config(tmp_path, host, "audio.seconds=0.2"), host)
    assert not longer.from_cache and longer.key != base.key
    key = cache_key("s", "f", {"name": "t", "n_fft": 1}, "1", SPEC)
    assert key != cache_key("s", "f", {"name": "t", "n_fft": 2}, "1", SPEC)
    assert key != cache_key("s", "f", {"name": "t", "n_fft": 1}, "2", SPEC)  # plugin version
    fewer = load_dataset(tiny_config(tmp_path, host, "data.source.count=12"), host)
    assert not fewer.from_cache and len(fewer) == 12


# --------------------------------------------------------------------------- the image store


def test_store_gives_the_batches_the_in_memory_array_gave(tmp_path):
    host = tiny_host()
    data = load_dataset(tiny_config(tmp_path, host), host)
    whole = torch.from_numpy(np.load(tmp_path / "runs" / ".cache" / f"{data.key}.npy"))
    assert data.images.shape == tuple(whole.shape) and len(data.images) == 24
    order = torch.randperm(24, generator=torch.Generator().manual_seed(0))
    for idx in (order[:4], order[4:8], torch.tensor([5, 5, 0, 23]), order):
        batch = data.images.take(idx)
        assert batch.dtype == torch.float32 and torch.equal(batch, whole[idx].float())
    with pytest.raises(IndexError):
        data.images.take([24])


class _CountingFile:
    """A file stand-in that counts the bytes read through it."""

    def __init__(self, inner):
        self.inner, self.bytes_read = inner, 0

    def seek(self, offset):
        return self.inner.seek(offset)

    def readinto(self, buffer):
        got = self.inner.readinto(buffer)
        self.bytes_read += got
        return got


def test_store_reads_only_the_rows_asked_for(tmp_path, monkeypatch):
    host = tiny_host()
    cfg = tiny_config(tmp_path, host)
    load_dataset(cfg, host)

    def refuse(*args, **kwargs):
        raise AssertionError("the whole cache was loaded")

    monkeypatch.setattr(np, "load", refuse)
    monkeypatch.setattr(np, "fromfile", refuse)
    monkeypatch.setattr(np, "memmap", refuse)
    data = load_dataset(cfg, host)  # from the cache: opens the file, reads no rows
    assert data.from_cache
    counting = _CountingFile(data.images._file)
    data.images._file = counting
    data.images.take([3, 1, 4, 1])
    assert counting.bytes_read == 4 * data.images.row_bytes < data.images.shape[0] * data.images.row_bytes


def test_encoding_writes_each_batch_to_the_file_as_it_goes(tmp_path):
    source = SyntheticKicks(SyntheticKicksOptions(count=10), SPEC)
    path = tmp_path / "out.npy"
    sizes = []
    with open(path, "w+b", buffering=0) as fh:
        data = encode_clips(
            source,
            TinyTransform(None, SPEC),
            SPEC,
            file=fh,
            batch_size=4,
            progress=lambda done, total: sizes.append((done, path.stat().st_size)),
        )
        row = data.images.row_bytes
        assert sizes == [(done, 128 + done * row) for done in (4, 8, 10)]
        assert torch.equal(data.images.take(range(10)), torch.from_numpy(np.load(path)).float())


def test_encoding_on_worker_threads_gives_the_serial_result(monkeypatch):
    """Batches (with augmented copies) encoded two or three at a time: the same rows,
    names, groups and flags as one at a time."""
    import ssgan_core.data as data_module
    from ssgan_core.config import AugmentConfig

    augment = AugmentConfig(copies=2, gain_db=(-6.0, 3.0), pitch_semitones=(-1.0, 1.0))
    source = SyntheticKicks(SyntheticKicksOptions(count=11), SPEC)

    def encoded(workers: int):
        monkeypatch.setattr(data_module, "encode_workers", lambda device: workers)
        data = encode_clips(source, TinyTransform(None, SPEC), SPEC, augment=augment, seed=3, batch_size=4)
        return data.images.take(range(len(data))), data.names, data.groups, data.augmented

    serial = encoded(1)
    for workers in (2, 3):
        images, names, groups, flags = encoded(workers)
        assert torch.equal(images, serial[0]) and names == serial[1]
        assert torch.equal(groups, serial[2]) and torch.equal(flags, serial[3])
    assert len(serial[1]) == 33 and serial[1][4] == serial[1][0] + "#1"  # a batch, then its copies


def test_encoded_in_order_trims_memory_and_restores_torch_threads(monkeypatch):
    """Results in order; ``release_free_memory`` after every ``TRIM_EVERY`` batches; torch's
    thread count back as it was even when the caller stops with an error mid-way."""
    import ssgan_core.data as data_module

    trims: list[int] = []
    results: list[int] = []
    monkeypatch.setattr(data_module, "encode_workers", lambda device: 2)
    monkeypatch.setattr(data_module, "release_free_memory", lambda: trims.append(len(results)))
    before = torch.get_num_threads()
    batches = range(2 * data_module.TRIM_EVERY + 3)
    for result in data_module.encoded_in_order(lambda b: b * 10, batches, "cpu"):
        assert torch.get_num_threads() == 1
        results.append(result)
    assert results == [b * 10 for b in batches]
    assert trims == [data_module.TRIM_EVERY, 2 * data_module.TRIM_EVERY]
    assert torch.get_num_threads() == before
    with pytest.raises(OSError):
        for _ in data_module.encoded_in_order(lambda b: b, range(10), "cpu"):
            raise OSError("disk full")
    assert torch.get_num_threads() == before


def test_kept_heap_reuses_freed_blocks_instead_of_faulting_them_in():
    """After ``keep_freed_memory`` a freed 16 MiB tensor's pages serve the next one; with
    glibc's default thresholds every allocation maps fresh pages (4,096 faults each).
    Counted in a fresh process: page faults are per process, and other tests leave threads."""
    import json
    import subprocess
    import sys

    script = """
import json, resource, torch
from ssgan_core import memory
def faults_of_ten_tensors():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        torch.ones(4 << 20)  # allocated, written, freed
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
if memory._glibc() is None:
    print(json.dumps(None))
else:
    memory.keep_freed_memory(False)
    mapped = faults_of_ten_tensors()
    memory.keep_freed_memory()
    faults_of_ten_tensors()  # the heap grows once
    print(json.dumps([mapped, faults_of_ten_tensors()]))
"""
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    counts = json.loads(out.stdout)
    if counts is None:
        pytest.skip("not glibc")
    mapped, kept = counts
    assert mapped > 10 * 4000, counts
    assert kept < mapped / 20, counts
