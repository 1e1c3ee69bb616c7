"""`ssgan train` and `ssgan generate` end to end with the real paper parts on tiny settings."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
from typer.testing import CliRunner

from ssgan_cli.main import app

runner = CliRunner()

TINY = [
    "data.source.count=24",
    "training.batch_size=4",
    "training.epochs=1",
    "training.preview_count=4",
    "output.preview_wavs=1",
    "inverter.iterations=2",
]


def _sets(tmp_path, *extra: str) -> list[str]:
    out = []
    for item in [f"output.runs_dir={tmp_path / 'runs'}", *TINY, *extra]:
        out += ["--set", item]
    return out


def test_train_then_generate(tmp_path):
    result = runner.invoke(app, ["train", "--preset", "paper-kicks", "--name", "tiny", *_sets(tmp_path)])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "tiny"
    assert "ssgan generate" in result.output and "after 1 epoch " in result.output
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 1 and np.isfinite(metrics[0]["critic_loss"])
    assert "critic/gradient-penalty" in metrics[0]
    assert (run / "checkpoints" / "last.ckpt").exists()
    assert (run / "previews" / "epoch_001.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "previews" / "epoch_001_000.wav").exists()

    result = runner.invoke(app, ["train", "--resume", str(run)])  # already finished: just the summary
    assert result.exit_code == 0 and "resuming" in result.output and "after 1 epoch " in result.output

    out = tmp_path / "out"
    result = runner.invoke(
        app, ["generate", str(run), "-n", "3", "-o", str(out), "--seed", "7", "--png", "--iterations", "2"]
    )
    assert result.exit_code == 0, result.output
    wavs = sorted(out.glob("*.wav"))
    assert [w.name for w in wavs] == ["seed7_000.wav", "seed7_001.wav", "seed7_002.wav"]
    audio, rate = sf.read(wavs[0])
    assert rate == 44_100 and audio.shape == (26_460, 2) and np.isfinite(audio).all()
    assert (out / "seed7_grid.png").read_bytes()[:4] == b"\x89PNG"


def test_train_errors_are_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    runs = f"output.runs_dir={tmp_path / 'runs'}"
    result = runner.invoke(app, ["train", "--preset", "paper-kicks", "--data", str(empty), "--set", runs])
    assert result.exit_code == 2 and "has no audio files" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("paper-kicks-*"))

    result = runner.invoke(app, ["train", "--resume", str(tmp_path), "--preset", "paper-kicks"])
    assert result.exit_code == 2 and "--resume" in result.output

    result = runner.invoke(app, ["generate", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no such run directory" in result.output
