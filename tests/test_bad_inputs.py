"""Bad input, command by command: every case ends in one line and the right exit code.

Each case runs one ``ssgan`` command in-process and asserts its exit code (2 for bad
input, 0 where the input is valid), that no traceback is printed, that the message names
the file or field at fault, and, where good inputs sit beside the bad one, that they were
still processed. Disk-full and read-only cases mount a tiny tmpfs and need root; they
skip otherwise (as do permission cases, which root ignores).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from ssgan_cli.main import app
from ssgan_core.checkpoint import load_checkpoint
from tests.synth import synth_kick

runner = CliRunner()
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
TINY_RUN = [
    "data.source.count=12",
    "training.batch_size=4",
    "training.epochs=1",
    "training.preview_count=2",
    "output.preview_wavs=1",
    "inverter.iterations=2",
]


# --------------------------------------------------------------------------- shared inputs


@dataclass
class World:
    """Inputs shared by all cases (built once): good audio, an encoded array, a trained run."""

    root: Path
    good: list[Path] = field(default_factory=list)
    npy: Path = Path()
    run: Path = Path()

    @property
    def ckpt(self) -> Path:
        return self.run / "checkpoints" / "last.ckpt"


def _sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    from ssgan_core.plugins import reset_host

    root = tmp_path_factory.mktemp("world")
    w = World(root)
    (root / "good").mkdir()
    for i in range(2):
        path = root / "good" / f"kick{i}.wav"
        sf.write(path, synth_kick(f0=45 + 5 * i, seed=i).T, 44_100, subtype="PCM_16")
        w.good.append(path)
    w.npy = root / "good.npy"
    reset_host()
    done = runner.invoke(app, ["encode", str(root / "good"), "-o", str(w.npy)])
    assert done.exit_code == 0, done.output
    w.run = root / "runs" / "tiny"
    args = ["train", "--preset", "paper-kicks", "--run-dir", str(w.run), "--device", "cpu"]
    done = runner.invoke(app, [*args, *_sets([f"data.cache_dir={root / 'cache'}", *TINY_RUN])])
    assert done.exit_code == 0, done.output
    reset_host()
    return w


@dataclass
class Case:
    """One command line, what it must exit with and say, and an optional check of its effects."""

    build: Callable[[World, Path], list[str]]
    code: int
    says: tuple[str, ...]
    check: Callable[[World, Path], None] | None = None
    needs_root: bool = False
    needs_non_root: bool = False
    absent: tuple[str, ...] = ()


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    return path


def _folder_with(tmp: Path, world: World, name: str, make: Callable[[Path], None]) -> Path:
    """A folder holding the two good kicks and one bad file made by ``make(path)``."""
    folder = tmp / "in"
    folder.mkdir()
    for good in world.good:
        (folder / good.name).write_bytes(good.read_bytes())
    make(folder / name)
    return folder


def _encode_with(name: str, make: Callable[[Path], None]) -> Callable[[World, Path], list[str]]:
    return lambda w, t: ["encode", str(_folder_with(t, w, name, make)), "-o", str(t / "out.npy")]


def _encoded_rows(rows: int) -> Callable[[World, Path], None]:
    def check(w: World, t: Path) -> None:
        assert np.load(t / "out.npy").shape == (rows, 2, 256, 256)
        sidecar = json.loads((t / "out.npy.json").read_text())
        assert len(sidecar["sources"]) == rows

    return check


def _no_leftovers(folder: str) -> Callable[[World, Path], None]:
    def check(w: World, t: Path) -> None:
        left = [p.name for p in (t / folder).rglob("*") if p.name.startswith(".")]
        assert left == [], left

    return check


def _truncated(path: Path) -> None:
    sf.write(path, synth_kick().T, 44_100, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _nan_wav(path: Path) -> None:
    audio = synth_kick().T.copy()
    audio[100] = np.nan
    sf.write(path, audio, 44_100, subtype="FLOAT")


def _unreadable(path: Path) -> None:
    sf.write(path, synth_kick().T, 44_100)
    path.chmod(0)


def _sidecar_npy(t: Path, w: World, edit: Callable[[dict], object]) -> Path:
    """A copy of the encoded array whose sidecar ``edit`` changed (``edit`` may return new text)."""
    npy = t / "x.npy"
    npy.write_bytes(w.npy.read_bytes())
    data = json.loads(Path(str(w.npy) + ".json").read_text())
    text = edit(data)
    Path(str(npy) + ".json").write_text(text if isinstance(text, str) else json.dumps(data))
    return npy


def _npy(t: Path, array: np.ndarray) -> Path:
    path = t / "arr.npy"
    np.save(path, array, allow_pickle=array.dtype == object)
    return path


def _ckpt_copy(t: Path, w: World, change: Callable[[dict], None]) -> Path:
    payload = load_checkpoint(w.ckpt)
    change(payload)
    path = t / "changed.ckpt"
    torch.save(payload, path)
    return path


def _flip_weights(payload: dict) -> None:
    name = next(k for k, v in payload["generator"].items() if v.is_floating_point() and v.numel() > 100)
    payload["generator"][name] = payload["generator"][name].clone()
    payload["generator"][name].view(-1)[:50] *= -1


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _malicious(path: Path) -> Path:
    """A torch file that would run ``os.system`` if loaded without ``weights_only``."""
    torch.save({"generator": _Evil()}, path)
    return path


def _set_config(name: str, value: object) -> Callable[[dict], None]:
    def change(payload: dict) -> None:
        section, leaf = name.split(".")
        payload["config"][section][leaf] = value
        payload.pop("weights_hash", None)

    return change


def _run_copy(t: Path, w: World) -> Path:
    run = t / "run"
    subprocess.run(["cp", "-r", str(w.run), str(run)], check=True)
    return run


def _half_line(w: World, t: Path) -> list[str]:
    run = _run_copy(t, w)
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 2, "st')
    return ["train", "--resume", str(run)]


def _metrics_whole(w: World, t: Path) -> None:
    lines = (t / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["epoch"] for ln in lines] == [1]


def _with_leftovers(w: World, t: Path) -> list[str]:
    run = _run_copy(t, w)
    dead = _dead_pid()
    _write(run / "checkpoints" / f".last.ckpt.tmp-{dead}", b"half")
    _write(run / "previews" / f".epoch_001.png.{dead}.0123abcd.tmp", b"half")
    return ["train", "--resume", str(run)]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _leftovers_gone(w: World, t: Path) -> None:
    assert not [p for p in (t / "run").rglob(".*") if p.is_file()]


def _resume_unstarted(w: World, t: Path) -> list[str]:
    run = t / "run"
    _write(run / "config.json", (w.run / "config.json").read_text())
    _write(run / "metrics.jsonl", '{"epoch": 1, "half')
    return ["train", "--resume", str(run)]


def _trained(w: World, t: Path) -> None:
    assert load_checkpoint(t / "run" / "checkpoints" / "last.ckpt")["epoch"] == 1


def _wavs(count: int, folder: str = "gen") -> Callable[[World, Path], None]:
    def check(w: World, t: Path) -> None:
        assert len(list((t / folder).glob("*.wav"))) == count

    return check


def _toml(t: Path, text: str) -> Path:
    return _write(t / "cfg.toml", text)


def _silent_folder(t: Path, name: str, silent: int, loud: int) -> Path:
    folder = t / name
    folder.mkdir()
    for i in range(silent):
        sf.write(folder / f"silent{i}.wav", np.zeros((26_460, 2)), 44_100)
    for i in range(loud):
        sf.write(folder / f"loud{i}.wav", synth_kick(seed=i).T, 44_100)
    return folder


def _under_file(t: Path, name: str) -> str:
    _write(t / "afile", "x")
    return str(t / "afile" / name)


def _existing_dir(t: Path, name: str) -> str:
    (t / name).mkdir()
    return str(t / name)


def _flipped_run(w: World, t: Path) -> list[str]:
    run = _run_copy(t, w)
    path = run / "checkpoints" / "last.ckpt"
    payload = load_checkpoint(path)
    _flip_weights(payload)
    torch.save(payload, path)
    return ["train", "--resume", str(run)]


def _bare_state_dict(path: Path) -> Path:
    torch.save({"w": torch.zeros(2)}, path)
    return path


CASES: dict[str, Case] = {
    # ---------------------------------------------------------------- encode: bad files beside good ones
    "encode-empty-wav": Case(
        _encode_with("empty.wav", lambda p: p.write_bytes(b"")), 0, ("empty.wav", "empty"), _encoded_rows(2)
    ),
    "encode-text-as-wav": Case(
        _encode_with("text.wav", lambda p: p.write_text("not audio")),
        0,
        ("text.wav", "not a recognised audio file"),
        _encoded_rows(2),
    ),
    "encode-truncated-wav": Case(
        _encode_with("cut.wav", _truncated), 0, ("cut.wav", "cut short"), _encoded_rows(3)
    ),
    "encode-1hz-wav": Case(
        _encode_with("slow.wav", lambda p: sf.write(p, np.zeros((8, 2)), 1)),
        0,
        ("slow.wav", "sample rate 1 Hz"),
        _encoded_rows(2),
    ),
    "encode-mp3-in-folder": Case(
        _encode_with("song.mp3", lambda p: p.write_bytes(b"ID3fake")),
        0,
        ("skipped 1 .mp3", "WAV or FLAC"),
        _encoded_rows(2),
    ),
    "encode-nan-wav": Case(_encode_with("nan.wav", _nan_wav), 0, ("nan.wav", "NaN"), _encoded_rows(2)),
    "encode-six-channels": Case(
        _encode_with("surround.wav", lambda p: sf.write(p, np.zeros((1000, 6)), 44_100)),
        0,
        ("surround.wav", "6 channels"),
        _encoded_rows(2),
    ),
    "encode-unreadable-file": Case(
        _encode_with("locked.wav", _unreadable),
        0,
        ("locked.wav", "permission denied"),
        _encoded_rows(2),
        needs_non_root=True,
    ),
    "encode-random-bytes": Case(
        _encode_with("noise.flac", lambda p: p.write_bytes(os.urandom(2000))),
        0,
        ("noise.flac",),
        _encoded_rows(2),
    ),
    "encode-folder-named-wav": Case(
        _encode_with("dir.wav", lambda p: p.mkdir()), 0, ("encoded 2 of 2",), _encoded_rows(2)
    ),
    # ---------------------------------------------------------------- encode: bad arguments
    "encode-only-bad-files": Case(
        lambda w, t: ["encode", str(_write(t / "in" / "a.wav", "x").parent), "-o", str(t / "o.npy")],
        2,
        ("a.wav", "nothing could be encoded"),
    ),
    "encode-missing-input": Case(
        lambda w, t: ["encode", str(t / "nope"), "-o", str(t / "o.npy")], 2, ("nope", "no such file")
    ),
    "encode-output-not-npy": Case(
        lambda w, t: ["encode", str(w.good[0]), "-o", str(t / "o.txt")], 2, ("--output", "o.txt")
    ),
    "encode-output-is-folder": Case(
        lambda w, t: ["encode", str(w.good[0]), "-o", _existing_dir(t, "x.npy")],
        2,
        ("x.npy", "existing folder"),
    ),
    "encode-output-under-file": Case(
        lambda w, t: ["encode", str(w.good[0]), "-o", _under_file(t, "x.npy")], 2, ("afile", "is a file")
    ),
    "encode-output-read-only": Case(
        lambda w, t: ["encode", str(w.good[0]), "-o", str(t / "ro" / "x.npy")],
        2,
        ("x.npy", "read-only"),
        needs_root=True,
    ),
    "encode-disk-full": Case(
        lambda w, t: ["encode", str(w.root / "good"), str(w.good[0]), "-o", str(t / "full" / "x.npy")],
        2,
        ("x.npy", "no space left on device"),
        _no_leftovers("full"),
        needs_root=True,
    ),
    "encode-bad-sample-rate-field": Case(
        lambda w, t: ["encode", str(w.good[0]), "-o", str(t / "o.npy"), "--set", "audio.sample_rate=abc"],
        2,
        ("audio.sample_rate",),
    ),
    "encode-bad-transform-option": Case(
        lambda w, t: ["encode", str(w.good[0]), "-o", str(t / "o.npy"), "--set", 'transform.n_fft="abc"'],
        2,
        ("transform.n_fft",),
    ),
    "encode-unknown-transform": Case(
        lambda w, t: ["encode", str(w.good[0]), "-o", str(t / "o.npy"), "--set", "transform.name=mel-db"],
        2,
        ("transform.name", "Unknown transform 'mel-db'", "Installed transforms"),
    ),
    "encode-huge-seed": Case(
        lambda w, t: [
            *("encode", str(w.good[0]), "-o", str(t / "o.npy")),
            *("--set", "seed=100000000000000000000000"),
        ],
        2,
        ("seed", "less than or equal"),
    ),
    "encode-preset-is-number": Case(
        lambda w, t: ["encode", str(w.good[0]), "-o", str(t / "o.npy"), "-c", str(_toml(t, "preset = 5\n"))],
        2,
        ("cfg.toml", "preset"),
    ),
    "encode-config-not-toml": Case(
        lambda w, t: ["encode", str(w.good[0]), "-o", str(t / "o.npy"), "-c", str(_toml(t, "[[[nope"))],
        2,
        ("cfg.toml", "not valid TOML"),
    ),
    "encode-config-missing": Case(
        lambda w, t: ["encode", str(w.good[0]), "-o", str(t / "o.npy"), "-c", str(t / "none.toml")],
        2,
        ("none.toml", "cannot read config file"),
    ),
    # ---------------------------------------------------------------- invert
    "invert-sidecar-nfft-text": Case(
        lambda w, t: [
            "invert",
            str(_sidecar_npy(t, w, lambda d: d["transform"].update(n_fft="abc"))),
            *("-o", str(t / "o.wav"), "-n", "1"),
        ],
        2,
        ("x.npy.json", "transform.n_fft"),
    ),
    "invert-sidecar-not-json": Case(
        lambda w, t: ["invert", str(_sidecar_npy(t, w, lambda d: "{oops")), "-o", str(t / "o.wav")],
        2,
        ("x.npy.json", "not a valid ssgan sidecar"),
    ),
    "invert-sidecar-bad-rate": Case(
        lambda w, t: [
            "invert",
            str(_sidecar_npy(t, w, lambda d: d["audio"].update(sample_rate=1))),
            *("-o", str(t / "o.wav")),
        ],
        2,
        ("x.npy.json", "audio.sample_rate"),
    ),
    "invert-sidecar-unknown-transform": Case(
        lambda w, t: [
            "invert",
            str(_sidecar_npy(t, w, lambda d: d["transform"].update(name="mel-db"))),
            *("-o", str(t / "o.wav")),
        ],
        2,
        ("x.npy.json", "mel-db"),
    ),
    "invert-wrong-shape": Case(
        lambda w, t: ["invert", str(_npy(t, np.zeros((3, 4), np.float32))), "-o", str(t / "o.wav")],
        2,
        ("arr.npy", "shape (3, 4)"),
    ),
    "invert-int-array": Case(
        lambda w, t: ["invert", str(_npy(t, np.zeros((2, 256, 256), np.int16))), "-o", str(t / "o.wav")],
        2,
        ("arr.npy", "dtype int16"),
    ),
    "invert-nan-array": Case(
        lambda w, t: [
            "invert",
            str(_npy(t, np.full((2, 256, 256), np.nan, np.float32))),
            "-o",
            str(t / "o.wav"),
        ],
        2,
        ("arr.npy", "NaN"),
    ),
    "invert-object-array": Case(
        lambda w, t: ["invert", str(_npy(t, np.array([{"a": 1}], dtype=object))), "-o", str(t / "o.wav")],
        2,
        ("arr.npy", "not a readable .npy"),
    ),
    "invert-missing-array": Case(
        lambda w, t: ["invert", str(t / "none.npy"), "-o", str(t / "o.wav")], 2, ("none.npy", "not found")
    ),
    "invert-output-mp3": Case(
        lambda w, t: ["invert", str(w.npy), "-o", str(t / "o.mp3")], 2, ("o.mp3", ".wav or .flac")
    ),
    "invert-output-under-file": Case(
        lambda w, t: ["invert", str(w.npy), "-o", _under_file(t, "o.wav")], 2, ("afile", "is a file")
    ),
    "invert-output-is-folder": Case(
        lambda w, t: [
            "invert",
            str(_npy(t, np.zeros((2, 256, 256), np.float32) - 1)),
            "-o",
            _existing_dir(t, "o.wav"),
        ],
        2,
        ("o.wav", "existing folder"),
    ),
    "invert-negative-iterations": Case(
        lambda w, t: ["invert", str(w.npy), "-o", str(t / "o.wav"), "-n", "-1"], 2, ("--iterations",)
    ),
    "invert-unknown-inverter": Case(
        lambda w, t: ["invert", str(w.npy), "-o", str(t / "o.wav"), "--set", "inverter.name=phase-magic"],
        2,
        ("inverter.name", "Unknown inverter 'phase-magic'"),
    ),
    "invert-disk-full": Case(
        lambda w, t: ["invert", str(w.npy), "-o", str(t / "full" / "o.wav"), "-n", "1"],
        2,
        ("o_00", "no space left on device"),
        _no_leftovers("full"),
        needs_root=True,
    ),
    "invert-without-sidecar-notes-transform": Case(
        lambda w, t: [
            *("invert", str(_npy(t, np.zeros((2, 256, 256), np.float32) - 1)), "-o", str(t / "o.wav")),
            *("-n", "1"),
        ],
        0,
        ("arr.npy has no sidecar", "'stft-db'"),
        lambda w, t: sf.info(str(t / "o.wav")),
    ),
    # ---------------------------------------------------------------- generate
    "generate-missing-source": Case(
        lambda w, t: ["generate", str(t / "nope")], 2, ("nope", "no such run directory")
    ),
    "generate-text-checkpoint": Case(
        lambda w, t: ["generate", str(_write(t / "x.ckpt", "hello"))], 2, ("x.ckpt", "corrupt or truncated")
    ),
    "generate-flipped-weights": Case(
        lambda w, t: ["generate", str(_ckpt_copy(t, w, _flip_weights)), "-o", str(t / "gen")],
        2,
        ("changed.ckpt", "do not match the hash"),
    ),
    "generate-malicious-pickle": Case(
        lambda w, t: ["generate", str(_malicious(t / "evil.ckpt"))],
        2,
        ("evil.ckpt", "refused to load", "posix.system", "malicious"),
    ),
    "generate-bare-state-dict": Case(
        lambda w, t: ["generate", str(_bare_state_dict(t / "sd.ckpt"))], 2, ("sd.ckpt", "import-checkpoint")
    ),
    "generate-unknown-generator-in-checkpoint": Case(
        lambda w, t: ["generate", str(_ckpt_copy(t, w, _set_config("generator.name", "mel-gen")))],
        2,
        ("changed.ckpt", "Unknown generator 'mel-gen'"),
    ),
    "generate-zero-count": Case(
        lambda w, t: ["generate", str(w.run), "-n", "0"], 2, ("-n must be at least 1",)
    ),
    "generate-huge-seed": Case(
        lambda w, t: ["generate", str(w.run), "--seed", str(2**40)], 2, ("--seed", str(2**40))
    ),
    "generate-output-under-file": Case(
        lambda w, t: ["generate", str(w.run), "-o", _under_file(t, "gen")], 2, ("afile", "is a file")
    ),
    "generate-good-run": Case(
        lambda w, t: [
            "generate",
            str(w.run),
            "-n",
            "3",
            "--batch-size",
            "2",
            "-o",
            str(t / "gen"),
            "--iterations",
            "1",
        ],
        0,
        ("wrote 3 WAVs",),
        _wavs(3),
    ),
    "generate-disk-full": Case(
        lambda w, t: ["generate", str(w.run), "-n", "40", "-o", str(t / "full"), "--iterations", "1"],
        2,
        ("no space left on device",),
        _no_leftovers("full"),
        needs_root=True,
    ),
    # ---------------------------------------------------------------- train and resume
    "train-empty-data-folder": Case(
        lambda w, t: ["train", "--data", _existing_dir(t, "empty"), *_sets([f"output.runs_dir={t}/runs"])],
        2,
        ("data.source.path", "has no audio files"),
    ),
    "train-only-bad-audio": Case(
        lambda w, t: [
            *("train", "--data", str(_write(t / "d" / "bad.wav", "x").parent)),
            *_sets([f"output.runs_dir={t}/runs", f"data.cache_dir={t}/cache"]),
        ],
        2,
        ("bad.wav", "no usable audio"),
    ),
    "train-zero-batch-size": Case(
        lambda w, t: ["train", *_sets(["training.batch_size=0"])], 2, ("training.batch_size", "greater than")
    ),
    "train-bad-literal": Case(
        lambda w, t: ["train", *_sets(["training.critic_batches=both"])],
        2,
        ("training.critic_batches", "'joint'"),
    ),
    "train-unknown-loss": Case(
        lambda w, t: ["train", *_sets(["losses.losss.weight=1"])], 2, ("losses.losss", "Installed losses")
    ),
    "train-cache-dir-is-file": Case(
        lambda w, t: [
            "train",
            *_sets(
                [f"data.cache_dir={_write(t / 'cachefile', 'x')}", f"output.runs_dir={t}/runs", *TINY_RUN]
            ),
        ],
        2,
        ("data.cache_dir", "cachefile", "not a folder"),
    ),
    "train-runs-dir-under-file": Case(
        lambda w, t: [
            "train",
            *_sets(
                [f"output.runs_dir={_under_file(t, 'runs')}", f"data.cache_dir={w.root}/cache", *TINY_RUN]
            ),
        ],
        2,
        ("afile", "is a file"),
    ),
    "train-runs-dir-read-only": Case(
        lambda w, t: [
            "train",
            *_sets([f"output.runs_dir={t}/ro", f"data.cache_dir={w.root}/cache", *TINY_RUN]),
        ],
        2,
        ("ro", "read-only"),
        needs_root=True,
    ),
    "train-existing-run-dir": Case(
        lambda w, t: ["train", "--run-dir", str(w.run), *_sets(TINY_RUN)], 2, ("already exists", "--resume")
    ),
    "resume-missing-run": Case(
        lambda w, t: ["train", "--resume", str(t / "nope")], 2, ("nope", "no such run")
    ),
    "resume-with-preset": Case(
        lambda w, t: ["train", "--resume", str(w.run), "--preset", "paper-kicks"], 2, ("--resume", "--device")
    ),
    "resume-not-a-run": Case(
        lambda w, t: ["train", "--resume", _existing_dir(t, "plain")],
        2,
        ("plain", "not an ssgan run directory"),
    ),
    "resume-checkpoint-file-path": Case(
        lambda w, t: ["train", "--resume", str(_run_copy(t, w) / "checkpoints" / "last.ckpt")],
        0,
        ("resuming", "after 1 epoch "),
    ),
    "resume-half-written-metrics-line": Case(_half_line, 0, ("resuming",), _metrics_whole),
    "resume-removes-leftovers": Case(_with_leftovers, 0, ("resuming",), _leftovers_gone),
    "resume-flipped-weights": Case(_flipped_run, 2, ("last.ckpt", "do not match the hash")),
    "resume-killed-before-first-checkpoint": Case(_resume_unstarted, 0, ("starting it over",), _trained),
    # ---------------------------------------------------------------- evaluate
    "evaluate-silent-reference": Case(
        lambda w, t: ["evaluate", str(w.root / "good"), "-r", str(_silent_folder(t, "ref", 3, 0))],
        2,
        ("reference", "silent"),
    ),
    "evaluate-missing-reference": Case(
        lambda w, t: ["evaluate", str(w.root / "good"), "-r", str(t / "nope")],
        2,
        ("reference", "nope", "does not exist"),
    ),
    "evaluate-one-readable-file": Case(
        lambda w, t: [
            "evaluate",
            str(w.root / "good"),
            "-r",
            str(_write(t / "r" / "bad.wav", "x").parent),
        ],
        2,
        ("reference", "readable audio files"),
    ),
    "evaluate-bad-array": Case(
        lambda w, t: ["evaluate", str(_npy(t, np.zeros((5, 5), np.float32))), "-r", str(w.root / "good")],
        2,
        ("arr.npy", "shape"),
    ),
    "evaluate-config-with-run": Case(
        lambda w, t: ["evaluate", str(w.run), "-r", str(w.root / "good"), "--preset", "paper-kicks"],
        2,
        ("--preset/--config/--set",),
    ),
    # ---------------------------------------------------------------- config and plugins
    "config-unknown-section": Case(lambda w, t: ["config", "show", "--set", "nope.x=1"], 2, ("nope",)),
    "config-unknown-preset": Case(
        lambda w, t: ["config", "show", "--preset", "paper-kiks"],
        2,
        ("Unknown preset 'paper-kiks'", "paper-kicks"),
    ),
    "config-bad-json-file": Case(
        lambda w, t: ["config", "show", "-c", str(_write(t / "c.json", "{nope"))],
        2,
        ("c.json", "not valid JSON"),
    ),
    "config-negative-seed": Case(lambda w, t: ["config", "show", "--set", "seed=-1"], 2, ("seed",)),
    "config-check-builds-parts": Case(
        lambda w, t: ["config", "show", "--check", "--preset", "paper-kicks"],
        0,
        ("check: built", "generator paper-generator"),
    ),
    "config-check-bad-plugin-option": Case(
        lambda w, t: ["config", "show", "--check", "--set", "transform.name=fussy"],
        2,
        ("transform 'fussy'", "bands=3", "bands must be even"),
    ),
    "train-bad-plugin-option": Case(
        lambda w, t: ["train", "--set", "transform.name=fussy", *_sets([f"output.runs_dir={t}/runs"])],
        2,
        ("transform 'fussy'", "bands must be even"),
    ),
    "list-plugins-presets-only-match": Case(
        lambda w, t: ["list-plugins", "paper-k*"], 0, ("paper-kicks",), absent=("no parts",)
    ),
    # ---------------------------------------------------------------- import-checkpoint
    "import-missing-original": Case(
        lambda w, t: ["import-checkpoint", str(t / "g.pth"), "-o", str(t / "o.ckpt")], 2, ("g.pth",)
    ),
    "import-text-original": Case(
        lambda w, t: ["import-checkpoint", str(_write(t / "g.pth", "hello")), "-o", str(t / "o.ckpt")],
        2,
        ("g.pth", "corrupt or truncated"),
    ),
    "import-malicious-original": Case(
        lambda w, t: ["import-checkpoint", str(_malicious(t / "g.pth")), "-o", str(t / "o.ckpt")],
        2,
        ("g.pth", "refused to load"),
    ),
    "import-output-is-folder": Case(
        lambda w, t: ["import-checkpoint", str(w.ckpt), "-o", _existing_dir(t, "o.ckpt")],
        2,
        ("o.ckpt", "directory"),
    ),
    "import-output-exists": Case(
        lambda w, t: ["import-checkpoint", str(w.ckpt), "-o", str(_write(t / "o.ckpt", "x"))],
        2,
        ("o.ckpt", "--force"),
    ),
}


# --------------------------------------------------------------------------- fixtures per case


@pytest.fixture
def fussy_plugin() -> Iterator[None]:
    """A plugin transform whose factory raises ValueError for an odd ``bands``."""
    import sys
    import types

    from pydantic import BaseModel

    from ssgan_core import hookimpl
    from ssgan_core.plugins import PluginInfo, get_host

    class FussyOptions(BaseModel):
        bands: int = 3

    def build(options: FussyOptions, audio: object) -> object:
        raise ValueError("bands must be even")

    module = types.ModuleType("fussy_plugin")

    @hookimpl
    def register_transforms(register: Callable[..., None]) -> None:
        register("fussy", build, options=FussyOptions)

    module.register_transforms = register_transforms  # type: ignore[attr-defined]
    sys.modules["fussy_plugin"] = module
    get_host().add_plugin(module, PluginInfo("fussy", "ssgan-fussy", "0.1"))
    yield
    del sys.modules["fussy_plugin"]


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """Mount tiny tmpfs folders (``size`` like "2m", ``options`` like "ro"); root only."""
    mounted: list[Path] = []

    def mount(name: str, options: str) -> Path:
        if shutil.which("mount") is None:
            pytest.skip("no mount command")
        target = tmp_path / name
        target.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount tmpfs: {done.stderr.decode().strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", str(target)], check=False)


# --------------------------------------------------------------------------- the test


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name: str, world: World, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    case = CASES[name]
    if case.needs_root and not IS_ROOT:
        pytest.skip("needs root to mount a tiny or read-only tmpfs")
    if case.needs_non_root and IS_ROOT:
        pytest.skip("root reads files without read permission")
    if case.needs_root:
        mount = request.getfixturevalue("small_mount")
        mount("full", "size=100k")
        ro = mount("ro", "size=100k")
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
    if "bad-plugin-option" in name:
        request.getfixturevalue("fussy_plugin")
    work = tmp_path
    args = case.build(world, work)
    result = runner.invoke(app, args)
    output = " ".join(result.output.split())  # rich may wrap long lines
    assert result.exit_code == case.code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for text in case.says:
        assert " ".join(text.split()) in output, f"{text!r} not in: {result.output}"
    for text in case.absent:
        assert text not in output, result.output
    if case.code == 2:
        assert result.output.count("error:") == 1, result.output
    if case.check is not None:
        case.check(world, work)


def test_there_are_at_least_sixty_cases() -> None:
    assert len(CASES) >= 60


def test_resume_without_checkpoint_then_start_again_is_allowed(world: World, tmp_path: Path) -> None:
    """Both ways out of a run killed before its first checkpoint work (issue 17, item 4)."""
    run = tmp_path / "run"
    _write(run / "config.json", (world.run / "config.json").read_text())
    args = ["train", "--preset", "paper-kicks", "--run-dir", str(run), "--device", "cpu"]
    done = runner.invoke(app, [*args, *_sets([f"data.cache_dir={world.root / 'cache'}", *TINY_RUN])])
    assert done.exit_code == 0, done.output
    assert "starting it over" in done.output
