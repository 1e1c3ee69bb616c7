"""``ssgan encode`` and ``ssgan invert`` end to end, including every bad-input case."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from ssgan_cli.main import app
from tests.synth import synth_kick

runner = CliRunner()


def run(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture()
def kick_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "kicks"
    (folder / "sub").mkdir(parents=True)
    for i, pan in enumerate((-0.5, 0.0, 0.5)):
        sf.write(folder / f"k{i}.wav", synth_kick(f0=45 + 5 * i, pan=pan, seed=i).T, 44_100, subtype="PCM_24")
    sf.write(folder / "sub" / "mono48k.flac", synth_kick(sample_rate=48_000)[0], 48_000)
    (folder / "sub" / "broken.wav").write_text("not audio at all")
    return folder


def test_encode_folder_skips_bad_file_and_writes_sidecar(kick_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "data.npy"
    result = run("encode", kick_folder, "-o", out)
    assert result.exit_code == 0, result.output
    data = np.load(out)
    assert data.shape == (4, 2, 256, 256) and data.dtype == np.float32
    assert data.min() >= -1 and data.max() <= 1
    sidecar = json.loads((tmp_path / "data.npy.json").read_text())
    assert sidecar["transform"]["name"] == "stft-db" and sidecar["transform"]["scaling"] == "level"
    assert sidecar["audio"] == {"sample_rate": 44_100, "seconds": 0.6}
    assert [Path(p).name for p in sidecar["sources"]] == ["k0.wav", "k1.wav", "k2.wav", "mono48k.flac"]
    assert len(sidecar["skipped"]) == 1 and "broken.wav" in sidecar["skipped"][0]["path"]
    assert "broken.wav" in result.output and "encoded 4 of 5" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npy", "data.npy.json", "kicks"]


def test_encode_uses_config_overrides(kick_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "paper.npy"
    result = run(
        "encode", kick_folder / "k0.wav", "-o", out, "-p", "paper-kicks", "--set", "transform.scaling=paper"
    )
    assert result.exit_code == 0, result.output
    data = np.load(out)
    assert data.shape == (1, 2, 256, 256)
    np.testing.assert_allclose(data.min(axis=(2, 3)), -1.0)  # paper: every channel spans [-1, 1]
    assert json.loads((tmp_path / "paper.npy.json").read_text())["transform"]["scaling"] == "paper"


def test_encode_nothing_readable_fails(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "b.wav").write_text("text")
    result = run("encode", tmp_path, "-o", tmp_path / "out.npy")
    assert result.exit_code == 2
    assert "nothing could be encoded" in result.output and "empty" in result.output
    assert not (tmp_path / "out.npy").exists()
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["empty_dir"], "no audio files"),
        (["missing"], "no such file"),
    ],
)
def test_encode_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty_dir").mkdir()
    result = run("encode", *(tmp_path / a for a in args), "-o", tmp_path / "o.npy")
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_encode_rejects_non_npy_output(kick_folder: Path, tmp_path: Path) -> None:
    result = run("encode", kick_folder, "-o", tmp_path / "o.txt")
    assert result.exit_code == 2 and ".npy" in result.output


def test_invert_batch_with_sidecar_and_png(kick_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "data.npy"
    assert run("encode", kick_folder, "-o", out).exit_code == 0
    result = run("invert", out, "-o", tmp_path / "wav" / "x.wav", "--iterations", "3", "--png")
    assert result.exit_code == 0, result.output
    assert "sidecar" in result.output
    for i in range(4):
        audio, rate = sf.read(tmp_path / "wav" / f"x_{i:03d}.wav")
        assert audio.shape == (26_460, 2) and rate == 44_100
        assert (tmp_path / "wav" / f"x_{i:03d}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Level scaling keeps the pan: k0 is panned left (right channel at half level).
    left, right = np.sqrt((sf.read(tmp_path / "wav" / "x_000.wav")[0] ** 2).mean(axis=0))
    assert 20 * np.log10(left / right) == pytest.approx(6.0, abs=1.0)


def test_invert_into_a_folder_one_wav_per_item(tmp_path: Path) -> None:
    """``-o DIR/`` (new or existing) writes ``DIR/<array name>_000.wav`` ...; one item: ``<name>.wav``."""
    images = np.random.default_rng(1).uniform(-1, -0.2, (3, 2, 256, 256)).astype(np.float32)
    np.save(tmp_path / "gen.npy", images)
    np.save(tmp_path / "one.npy", images[0])
    result = run("invert", tmp_path / "gen.npy", "-o", f"{tmp_path / 'out'}/", "-n", "1", "--png")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [f"gen_{i:03d}.{ext}" for i in range(3) for ext in ("png", "wav")]
    assert sf.read(tmp_path / "out" / "gen_002.wav")[0].shape == (26_460, 2)
    (tmp_path / "existing.d").mkdir()
    for target in (tmp_path / "out", tmp_path / "existing.d"):
        assert run("invert", tmp_path / "one.npy", "-o", target, "-n", "1").exit_code == 0
        assert sf.read(target / "one.wav")[0].shape == (26_460, 2)


def test_invert_single_and_mono_arrays(tmp_path: Path) -> None:
    image = np.random.default_rng(0).uniform(-1, -0.2, (2, 256, 256)).astype(np.float32)
    np.save(tmp_path / "one.npy", image)
    np.save(tmp_path / "mono.npy", image[0].astype(np.float64))
    assert run("invert", tmp_path / "one.npy", "-o", tmp_path / "one.wav", "-n", "1").exit_code == 0
    assert sf.read(tmp_path / "one.wav")[0].shape == (26_460, 2)
    result = run(
        "invert", tmp_path / "mono.npy", "-o", tmp_path / "mono.flac", "-n", "1", "-p", "paper-instruments"
    )
    assert result.exit_code == 0, result.output
    mono, rate = sf.read(tmp_path / "mono.flac")
    assert mono.shape == (66_150, 2) and rate == 44_100
    np.testing.assert_array_equal(mono[:, 0], mono[:, 1])


def test_invert_clips_values_within_tolerance(tmp_path: Path) -> None:
    image = np.full((2, 256, 256), -1.0005, np.float32)
    image[:, :5, :20] = 1.0005
    np.save(tmp_path / "edge.npy", image)
    assert run("invert", tmp_path / "edge.npy", "-o", tmp_path / "edge.wav", "-n", "1").exit_code == 0


def _nan() -> np.ndarray:
    image = np.zeros((2, 256, 256), np.float32)
    image[1, 2, 3] = np.nan
    return image


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((1, 256, 256), np.float32), "shape (1, 256, 256)"),
        (np.zeros((3, 2, 128, 256), np.float32), "expected (2, 256, 256)"),
        (np.zeros((2, 256, 256), np.int64), "dtype int64"),
        (_nan(), "NaN"),
        (np.full((2, 256, 256), 1.5, np.float32), "[-1, 1]"),
        (np.full((2, 256, 256), np.inf, np.float32), "infinite"),
    ],
)
def test_invert_bad_arrays_exit_2(tmp_path: Path, array: np.ndarray, message: str) -> None:
    np.save(tmp_path / "bad.npy", array)
    result = run("invert", tmp_path / "bad.npy", "-o", tmp_path / "out.wav")
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "out.wav").exists()


def test_invert_unreadable_inputs_exit_2(tmp_path: Path) -> None:
    (tmp_path / "text.npy").write_text("hello")
    for name, message in (("text.npy", "not a readable"), ("missing.npy", "not found")):
        result = run("invert", tmp_path / name, "-o", tmp_path / "o.wav")
        assert result.exit_code == 2 and message in result.output
    np.save(tmp_path / "ok.npy", np.zeros((2, 256, 256), np.float32))
    result = run("invert", tmp_path / "ok.npy", "-o", tmp_path / "o.mp3")
    assert result.exit_code == 2 and ".wav" in result.output and "folder" in result.output


def test_invert_bad_device_names_the_option(tmp_path: Path) -> None:
    np.save(tmp_path / "ok.npy", np.zeros((2, 256, 256), np.float32))
    result = run("invert", tmp_path / "ok.npy", "-o", tmp_path / "o.wav", "--device", "tpu")
    assert result.exit_code == 2 and "--device: unknown device 'tpu'" in result.output, result.output
    assert not (tmp_path / "o.wav").exists()
