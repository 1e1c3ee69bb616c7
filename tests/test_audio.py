"""Audio I/O: formats, resampling, fixed length, writing, folder scans, and every bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ssgan_core.audio import (
    AUDIO_EXTENSIONS,
    AudioWriter,
    find_audio_files,
    fit_length,
    read_audio,
    write_audio,
)
from ssgan_core.errors import AudioError
from ssgan_core.interfaces import AudioSpec
from tests.synth import synth_kick

SPEC = AudioSpec(44_100, 0.6)


def sine(rate: int, seconds: float, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize(
    ("suffix", "subtype", "tolerance"),
    [
        (".wav", "PCM_24", 2e-7),
        (".wav", "PCM_16", 4e-5),
        (".wav", "PCM_U8", 1e-2),  # 8-bit WAV is unsigned
        (".wav", "PCM_32", 1e-8),
        (".wav", "FLOAT", 0.0),
        (".flac", "PCM_24", 2e-7),
        (".aiff", "PCM_16", 4e-5),
    ],
)
def test_reads_integer_and_float_formats(tmp_path: Path, suffix: str, subtype: str, tolerance: float) -> None:
    kick = synth_kick(pan=0.3)
    path = tmp_path / f"kick{suffix}"
    sf.write(path, kick.T, 44_100, subtype=subtype)
    audio = read_audio(path, SPEC)
    assert audio.shape == (2, SPEC.num_samples) and audio.dtype == np.float32
    assert np.abs(audio - kick).max() <= tolerance + 1e-9


def test_reads_ogg_vorbis(tmp_path: Path) -> None:
    kick = synth_kick()
    path = tmp_path / "kick.ogg"
    sf.write(path, kick.T, 44_100, format="OGG", subtype="VORBIS")
    audio = read_audio(path, SPEC)
    assert audio.shape == (2, SPEC.num_samples)
    # Lossy codec: compare shape of the waveform, not samples.
    assert np.corrcoef(audio[0], kick[0])[0, 1] > 0.98


def test_mono_is_duplicated(tmp_path: Path) -> None:
    mono = synth_kick()[0]
    sf.write(tmp_path / "mono.wav", mono, 44_100, subtype="FLOAT")
    audio = read_audio(tmp_path / "mono.wav", SPEC)
    np.testing.assert_array_equal(audio[0], mono)
    np.testing.assert_array_equal(audio[1], mono)


def test_other_sample_rate_is_resampled(tmp_path: Path) -> None:
    sf.write(tmp_path / "48k.wav", np.stack([sine(48_000, 1.0), sine(48_000, 1.0, 1000.0)], 1), 48_000)
    audio = read_audio(tmp_path / "48k.wav", SPEC)
    assert audio.shape == (2, SPEC.num_samples)
    expected = sine(44_100, 0.6)
    # Away from the start (filter edge), the resampled sine matches one made at 44.1 kHz.
    np.testing.assert_allclose(audio[0, 500:], expected[500:], atol=2e-3)
    spectrum = np.abs(np.fft.rfft(audio[1]))
    assert np.fft.rfftfreq(audio.shape[1], 1 / 44_100)[spectrum.argmax()] == pytest.approx(1000, abs=2)


def test_length_is_fixed_by_padding_and_cutting(tmp_path: Path) -> None:
    sf.write(tmp_path / "short.wav", sine(44_100, 0.1)[:, None], 44_100, subtype="FLOAT")
    sf.write(tmp_path / "long.wav", sine(44_100, 2.0)[:, None], 44_100, subtype="FLOAT")
    short, long = read_audio(tmp_path / "short.wav", SPEC), read_audio(tmp_path / "long.wav", SPEC)
    assert short.shape == long.shape == (2, SPEC.num_samples)
    assert np.all(short[:, 4410:] == 0) and np.abs(short[:, :4410]).max() > 0.4
    np.testing.assert_array_equal(long[0], sine(44_100, 2.0)[: SPEC.num_samples])
    assert fit_length(np.ones((2, 5)), 3).shape == (2, 3)
    np.testing.assert_array_equal(fit_length(np.ones(2), 4), [1, 1, 0, 0])


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("missing.wav", None, "not found"),
        ("empty.wav", lambda p: p.write_bytes(b""), "empty"),
        ("text.wav", lambda p: p.write_text("this is a text file\n" * 20), "not a recognised audio file"),
        ("corrupt.flac", lambda p: p.write_bytes(b"fLaC" + bytes(range(256)) * 4), "corrupt"),
        ("zero.wav", lambda p: sf.write(p, np.zeros((0, 2), np.float32), 44_100), "no audio frames"),
        (
            "nan.wav",
            lambda p: sf.write(p, np.full((64, 2), np.nan, np.float32), 44_100, subtype="FLOAT"),
            "NaN",
        ),
        ("six.wav", lambda p: sf.write(p, np.zeros((64, 6), np.float32), 44_100), "6 channels"),
    ],
)
def test_bad_files_raise_audio_error_naming_file_and_reason(tmp_path: Path, name, make, reason) -> None:
    path = tmp_path / name
    if make is not None:
        make(path)
    with pytest.raises(AudioError) as info:
        read_audio(path, SPEC)
    assert info.value.path == path and reason in info.value.reason
    assert str(path) in str(info.value)


def test_truncated_wav_header_is_an_audio_error(tmp_path: Path) -> None:
    sf.write(tmp_path / "ok.wav", synth_kick().T, 44_100)
    (tmp_path / "cut.wav").write_bytes((tmp_path / "ok.wav").read_bytes()[:30])
    with pytest.raises(AudioError, match=r"cut\.wav"):
        read_audio(tmp_path / "cut.wav", SPEC)


def test_folder_is_an_audio_error(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="folder"):
        read_audio(tmp_path, SPEC)


def test_downmix_averages_many_channels(tmp_path: Path) -> None:
    data = np.stack([np.full(100, v, np.float32) for v in (0.1, 0.2, 0.3, 0.4)], 1)
    sf.write(tmp_path / "quad.wav", data, 44_100, subtype="FLOAT")
    audio = read_audio(tmp_path / "quad.wav", SPEC, downmix=True)
    np.testing.assert_allclose(audio[:, :100], 0.25, atol=1e-6)


@pytest.mark.parametrize(
    ("suffix", "subtype", "atol"),
    [(".wav", "PCM_24", 2e-7), (".wav", "FLOAT", 0.0), (".flac", "PCM_16", 4e-5)],
)
def test_write_read_round_trip(tmp_path: Path, suffix: str, subtype, atol: float) -> None:
    kick = synth_kick(pan=-0.5)
    path = write_audio(tmp_path / "sub" / f"out{suffix}", kick, 44_100, subtype)
    assert sf.info(str(path)).subtype == subtype and sf.info(str(path)).channels == 2
    np.testing.assert_allclose(read_audio(path, SPEC), kick, atol=atol + 1e-9)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary files left


def test_write_clips_integer_formats_but_not_float(tmp_path: Path) -> None:
    loud = np.array([[2.0, -3.0, 0.5]] * 2, np.float32)
    write_audio(tmp_path / "int.wav", loud, 44_100, "PCM_16")
    write_audio(tmp_path / "float.wav", loud, 44_100, "FLOAT")
    assert np.abs(sf.read(tmp_path / "int.wav")[0]).max() <= 1.0
    np.testing.assert_array_equal(sf.read(tmp_path / "float.wav", dtype="float32")[0].T, loud)


def test_write_mono_vector(tmp_path: Path) -> None:
    write_audio(tmp_path / "mono.wav", np.zeros(100), 44_100)
    assert sf.info(str(tmp_path / "mono.wav")).channels == 1


@pytest.mark.parametrize(
    ("name", "audio", "subtype", "reason"),
    [
        ("x.mp3", np.zeros((2, 10)), "PCM_24", ".mp3"),
        ("x.flac", np.zeros((2, 10)), "FLOAT", "FLAC"),
        ("x.wav", np.zeros((3, 10)), "PCM_24", "shape"),
        ("x.wav", np.full((2, 10), np.nan), "PCM_24", "NaN"),
    ],
)
def test_write_errors(tmp_path: Path, name: str, audio: np.ndarray, subtype, reason: str) -> None:
    with pytest.raises(AudioError, match=reason):
        write_audio(tmp_path / name, audio, 44_100, subtype)
    assert list(tmp_path.iterdir()) == []


def test_find_audio_files(tmp_path: Path) -> None:
    for rel in ["b.WAV", "a.flac", "sub/c.aiff", "sub/deep/d.ogg", "notes.txt", ".hidden/e.wav", "._f.wav"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    explicit = tmp_path / "notes.txt"
    found = find_audio_files([tmp_path, explicit, tmp_path / "a.flac"])
    names = [p.relative_to(tmp_path).as_posix() for p in found]
    assert names == ["a.flac", "b.WAV", "sub/c.aiff", "sub/deep/d.ogg", "notes.txt"]
    flat = find_audio_files([tmp_path], recursive=False)
    assert [p.name for p in flat] == ["a.flac", "b.WAV"]
    assert {".wav", ".flac", ".ogg", ".aiff"} <= AUDIO_EXTENSIONS
    with pytest.raises(AudioError, match="no such file"):
        find_audio_files([tmp_path / "nope"])


def test_audio_writer_writes_batches_in_the_background_and_reports_errors(tmp_path: Path) -> None:
    clips = np.stack([synth_kick(seed=i) for i in range(3)]) * 0.5
    paths = [tmp_path / f"k{i}.wav" for i in range(3)]
    with AudioWriter(44_100, "FLOAT") as writer:
        writer.write(paths[:2], clips[:2])
        writer.write(paths[2:], clips[2:])
    for path, clip in zip(paths, clips, strict=True):
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        assert rate == 44_100 and np.array_equal(data.T, clip)
    bad = clips[:1].copy()
    bad[0, 0, 10] = np.nan
    with pytest.raises(AudioError, match="NaN"), AudioWriter(44_100) as writer:
        writer.write([tmp_path / "bad.wav"], bad)
    assert not (tmp_path / "bad.wav").exists()
