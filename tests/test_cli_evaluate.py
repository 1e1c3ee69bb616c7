"""``ssgan evaluate`` on folders, encoded .npy files and checkpoints; bad input exits 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from ssgan_cli.main import app

from .test_metrics import kicks

pytest.importorskip("ssgan_core.audio", reason="audio I/O not written yet")

runner = CliRunner()
SR = 22_050
SECONDS = 0.5
SMALL = ["--set", f"audio.sample_rate={SR}", "--set", f"audio.seconds={SECONDS}"]


def write_set(folder, audio: np.ndarray, sample_rate: int = SR) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, clip in enumerate(audio):
        sf.write(folder / f"kick_{i:02d}.wav", clip.T, sample_rate, subtype="FLOAT")


def run_json(*args: str) -> dict:
    result = runner.invoke(app, ["evaluate", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def folders(tmp_path):
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    write_set(gen, kicks(10, seed=11))
    write_set(ref, kicks(12, seed=12))
    (gen / "broken.wav").write_bytes(b"RIFF not really a wav")
    return gen, ref


def test_folders_json_reports_metrics_and_skipped_files(folders):
    gen, ref = folders
    out = run_json(str(gen), "-r", str(ref), "--no-roundtrip", *SMALL)
    metrics = out["metrics"]
    assert {"fd", "kid", "ndb", "jsd", "diversity_gen", "precision", "recall"} <= set(metrics)
    assert "roundtrip_sc" not in metrics
    assert out["generated"]["clips"] == 10 and out["reference"]["clips"] == 12
    assert [s["name"] for s in out["generated"]["skipped"]] == ["broken.wav"]
    assert out["generated"]["sample_rate"] == SR and out["generated"]["samples"] == int(SR * SECONDS)
    same = run_json(str(ref), "-r", str(ref), "--no-roundtrip", *SMALL)["metrics"]
    assert same["fd"] == pytest.approx(0, abs=1e-6) and same["fd"] < metrics["fd"]
    assert run_json(str(gen), "-r", str(ref), "--no-roundtrip", *SMALL)["metrics"] == metrics  # seeded


def test_table_output_and_roundtrip_with_paper_parts(folders):
    from ssgan_core.plugins import get_host

    if "stft-db" not in get_host().registry("transform"):
        pytest.skip("stft-db transform not written yet")
    gen, ref = folders
    result = runner.invoke(app, ["evaluate", str(gen), "-r", str(ref), "-n", "6", *SMALL])
    assert result.exit_code == 0, result.output
    for key in ("fd", "kid", "recall", "roundtrip_sc", "roundtrip_lsd"):
        assert key in result.stdout
    assert "broken.wav" in result.stderr


def test_npy_of_encoded_spectrograms_with_and_without_sidecar(tmp_path, folders):
    from ssgan_core import AudioSpec
    from ssgan_core.plugins import get_host

    if "stft-db" not in get_host().registry("transform"):
        pytest.skip("stft-db transform not written yet")
    gen, ref = folders
    encoded = tmp_path / "ref.npy"
    done = runner.invoke(app, ["encode", str(ref), "-o", str(encoded), *SMALL])
    assert done.exit_code == 0, done.output
    # The .npy is decoded with the transform and audio spec its sidecar names.
    out = run_json(str(gen), "-r", str(encoded), "--no-roundtrip", *SMALL)
    assert out["reference"]["kind"] == "npy" and out["reference"]["clips"] == 12
    assert out["reference"]["samples"] == int(SR * SECONDS)

    transform = get_host().registry("transform").create("stft-db", {}, AudioSpec(SR, SECONDS))
    bare = tmp_path / "gen.npy"
    np.save(bare, transform.encode(torch.from_numpy(kicks(8, seed=13))).numpy())
    out = run_json(str(bare), "-r", str(encoded), "--no-roundtrip", *SMALL)
    assert out["generated"]["clips"] == 8 and np.isfinite(list(out["metrics"].values())).all()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (np.zeros((3, 2, 64, 64), np.float32), "or (N, 2, 256, 256)"),
        (np.full((3, 2, 256, 256), np.nan, np.float32), "NaN"),
        (np.full((3, 2, 256, 256), 3.0, np.float32), "[-1, 1]"),
        (np.zeros((3, 2, 256, 256), np.int16), "dtype"),
    ],
)
def test_bad_npy_is_a_usage_error(tmp_path, folders, content, message):
    bad = tmp_path / "bad.npy"
    np.save(bad, content)
    result = runner.invoke(app, ["evaluate", str(bad), "-r", str(folders[1]), *SMALL])
    assert result.exit_code == 2
    assert message in result.stderr and "bad.npy" in result.stderr and "Traceback" not in result.output


def test_missing_and_empty_inputs_are_usage_errors(tmp_path, folders):
    missing = runner.invoke(app, ["evaluate", str(tmp_path / "nope"), "-r", str(folders[1])])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(app, ["evaluate", str(folders[0]), "-r", str(tmp_path / "empty"), *SMALL])
    assert empty.exit_code == 2 and "no audio files" in empty.stderr


def test_checkpoint_generates_on_the_fly(tmp_path, monkeypatch):
    from ssgan_core import plugins
    from ssgan_core.checkpoint import new_payload, save_checkpoint
    from ssgan_core.config import dump_config
    from ssgan_core.generation import build_part

    from .tiny_parts import SAMPLE_RATE, SECONDS, tiny_config, tiny_host

    host = tiny_host()
    monkeypatch.setattr(plugins, "_host", host)
    cfg = tiny_config(tmp_path, host)
    generator = build_part("generator", cfg.generator, cfg.audio.spec(), host)
    ckpt = save_checkpoint(
        tmp_path / "run" / "checkpoints" / "best.ckpt", new_payload(dump_config(cfg), generator.state_dict())
    )
    ref = tmp_path / "ref"
    write_set(ref, kicks(8, seed=14, sample_rate=SAMPLE_RATE, seconds=SECONDS), SAMPLE_RATE)

    out = run_json(str(tmp_path / "run"), "-r", str(ref), "-n", "6", "--seed", "3")
    assert out["generated"]["kind"] == "checkpoint" and out["generated"]["clips"] == 6
    assert out["generated"]["source"] == str(ckpt)
    assert {"roundtrip_sc", "roundtrip_lsd", "transform_sc"} <= set(out["metrics"])
    again = run_json(str(ckpt), "-r", str(ref), "-n", "6", "--seed", "3")
    assert again["metrics"] == out["metrics"]
    clash = runner.invoke(app, ["evaluate", str(ckpt), "-r", str(ref), "--preset", "paper-kicks"])
    assert clash.exit_code == 2 and "saved config" in clash.stderr
