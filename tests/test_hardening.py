"""The pieces behind issue 17: the atomic writer, leftovers, weight hashes, SIGTERM, restarts, plugins."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import BaseModel, Field

from ssgan_core import hookimpl
from ssgan_core.checkpoint import HASH_KEY, load_checkpoint, new_payload, save_checkpoint
from ssgan_core.config import resolve_config
from ssgan_core.config_docs import render_config_docs
from ssgan_core.errors import CheckpointError, ConfigError, InputError, OutputError
from ssgan_core.files import atomic_write, check_output_file, remove_leftovers, write_bytes
from ssgan_core.generation import generate_images, iter_generated, load_generation_model
from ssgan_core.image_arrays import NpyStream
from ssgan_core.plugins import PluginHost, PluginInfo, get_host
from ssgan_core.registry import UnknownPartError
from ssgan_core.training import Reporter, Trainer
from tests.tiny_parts import tiny_config, tiny_host

# --------------------------------------------------------------------------- files


def test_atomic_write_keeps_the_old_file_when_the_block_fails(tmp_path: Path) -> None:
    target = write_bytes(tmp_path / "a.bin", b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write(b"new, half")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_a_full_disk_is_one_output_error_and_no_temp_file(tmp_path: Path) -> None:
    full = pytest.raises(OutputError, match=r"x\.bin: cannot write \(no space left on device\)")
    with full, atomic_write(tmp_path / "x.bin") as fh:
        fh.write(b"a" * 10)
        raise OSError(errno.ENOSPC, "No space left on device")  # what write() raises on a full disk
    assert list(tmp_path.iterdir()) == []


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_remove_leftovers_only_touches_temp_files_of_dead_writers(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getppid()
    names = {
        f".last.ckpt.{dead}.0123abcd.ssgan-tmp": True,  # this writer
        f".last.ckpt.tmp-{dead}": True,  # older checkpoint writer
        f".x.npy.{dead}.partial.npy": True,  # older encoder
        f".k.wav.{dead}.89abcdef.tmp": True,  # older audio writer
        f".last.ckpt.{alive}.0123abcd.ssgan-tmp": False,  # a live process is still writing
        ".DS_Store": False,
        "kick.wav": False,
        f".notes.{dead}.txt": False,
    }
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    removed = {p.name for p in remove_leftovers(tmp_path)}
    assert removed == {n for n, gone in names.items() if gone}
    assert {p.name for p in tmp_path.iterdir()} == {n for n, gone in names.items() if not gone}


def test_check_output_file_names_what_is_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "folder.npy").mkdir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="existing folder"):
        check_output_file(tmp_path / "folder.npy")
    with pytest.raises(OutputError, match=r"file is a file, not a folder"):
        check_output_file(tmp_path / "file" / "sub" / "x.npy")
    assert check_output_file(tmp_path / "new" / "x.npy") == tmp_path / "new" / "x.npy"


@pytest.mark.parametrize("rows", [9, 4, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_npy_stream_writes_a_loadable_array_of_the_rows_written(rows: int, dtype) -> None:
    buffer = io.BytesIO()
    stream = NpyStream(buffer, dtype)
    data = np.arange(rows * 6, dtype=dtype).reshape(rows, 2, 3)
    for start in range(0, rows, 4):
        stream.append(data[start : start + 4])
    assert stream.finish() == (rows, 2, 3)
    buffer.seek(0)
    loaded = np.load(buffer)
    assert loaded.dtype == dtype and np.array_equal(loaded, data)
    with pytest.raises(InputError, match="do not fit"):
        stream.append(np.zeros((1, 3, 2), dtype=dtype))


# --------------------------------------------------------------------------- checkpoints


def _payload() -> dict:
    return new_payload(
        {"seed": 0}, {"w": torch.arange(6.0), "b": torch.ones(2)}, critic={"c": torch.zeros(3)}
    )


def test_weights_carry_a_hash_that_load_verifies(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "a.ckpt", _payload())
    payload = load_checkpoint(path)
    assert set(payload[HASH_KEY]) == {"generator", "critic"}
    payload["generator"]["w"][3] = 1e6  # one flipped weight
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"a\.ckpt: the generator weights do not match"):
        load_checkpoint(path)


def test_checkpoints_without_a_hash_still_load(tmp_path: Path) -> None:
    path = tmp_path / "old.ckpt"
    torch.save(_payload(), path)  # as written before hashes existed
    assert torch.equal(load_checkpoint(path)["generator"]["w"], torch.arange(6.0))


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_pickle_that_imports_code_is_refused_not_called_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"generator": _Evil()}, path)
    with pytest.raises(CheckpointError, match=r"refused to load.*posix\.system.*malicious"):
        load_checkpoint(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_unreadable_checkpoint_says_permission(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "a.ckpt", _payload())
    path.chmod(0)
    with pytest.raises(CheckpointError, match="permission denied"):
        load_checkpoint(path)


# --------------------------------------------------------------------------- training


@pytest.fixture
def host() -> PluginHost:
    return tiny_host()


class _TermAtStep3(Reporter):
    def step(self, batch, stats):
        pass

    def epoch_start(self, epoch, epochs, batches, start_batch):
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_saves_like_ctrl_c(tmp_path: Path, host: PluginHost) -> None:
    cfg = tiny_config(tmp_path, host, "training.checkpoint_every_steps=0")
    before = signal.getsignal(signal.SIGTERM)
    trainer = Trainer.start(cfg, tmp_path / "run", host=host, reporter=_TermAtStep3())
    result = trainer.fit()
    assert result.status == "interrupted" and trainer.stop_signal == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["step"] == result.step == 5


def test_resume_drops_a_half_written_metrics_line(tmp_path: Path, host: PluginHost) -> None:
    cfg = tiny_config(tmp_path, host, "training.epochs=1")
    Trainer.start(cfg, tmp_path / "run", host=host).fit()
    with open(tmp_path / "run" / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 2, "st')
    Trainer.resume(tmp_path / "run", host=host)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1]


def test_a_run_killed_before_its_first_checkpoint_can_resume_or_start_again(
    tmp_path: Path, host: PluginHost
) -> None:
    cfg = tiny_config(tmp_path, host, "training.epochs=1")
    run = tmp_path / "run"
    Trainer.start(cfg, run, host=host)  # writes config.json, then "dies" before any step
    (run / f".config.json.{_dead_pid()}.0123abcd.ssgan-tmp").write_text("{")
    resumed = Trainer.resume(run, host=host)
    assert resumed.epoch == 0 and not any(p.name.startswith(".") for p in run.iterdir())
    again = Trainer.start(cfg, run, host=host)  # the other way out works too
    assert again.fit().status == "finished"
    with pytest.raises(Exception, match="already exists"):
        Trainer.start(cfg, run, host=host)  # now it has a checkpoint: resume only


def test_generated_batches_equal_one_big_batch(tmp_path: Path, host: PluginHost) -> None:
    cfg = tiny_config(tmp_path, host, "training.epochs=1")
    Trainer.start(cfg, tmp_path / "run", host=host).fit()
    model = load_generation_model(tmp_path / "run", device="cpu", host=host)
    whole = generate_images(model, 5, seed=3, batch_size=5)
    parts = list(iter_generated(model, 5, seed=3, batch_size=2))
    assert [len(p.images) for p in parts] == [2, 2, 1]
    assert torch.allclose(torch.cat([p.images for p in parts]), whole, atol=1e-6)
    assert all(p.audio.shape[0] == len(p.images) for p in parts)


# --------------------------------------------------------------------------- plugins


class _BandsOptions(BaseModel):
    bands: int = Field(3, ge=1, le=64)


def _fussy(options: _BandsOptions, audio: object) -> object:
    raise ValueError("bands must be even")


class _FussyPlugin:
    @hookimpl
    def register_transforms(self, register):
        register("fussy", _fussy, options=_BandsOptions)


def test_a_factory_exception_is_one_config_error_naming_part_and_options() -> None:
    host = PluginHost.with_builtins(_FussyPlugin())
    with pytest.raises(ConfigError, match=r"transform 'fussy' \(from .*\) could not be built with bands=3: "):
        host.registry("transform").create("fussy", {}, resolve_config(host=host).audio.spec())


def test_with_builtins_gives_the_builtin_parts_and_presets_beside_mine() -> None:
    host = PluginHost.with_builtins(_FussyPlugin())
    assert {"stft-db", "fussy"} <= set(host.registry("transform").names())
    assert "paper-kicks" in host.presets and host.presets["paper-kicks"].version


def test_unknown_names_say_which_failed_plugin_may_provide_them() -> None:
    class Broken:
        @hookimpl
        def register_transforms(self, register):
            raise ModuleNotFoundError("No module named 'librosa'")

    host = get_host()
    host.add_plugin(Broken(), PluginInfo("mel", "ssgan-mel-plugin", "0.1"))
    with pytest.raises(UnknownPartError) as info:
        host.registry("transform").get("mel-db")
    text = str(info.value)
    assert "'mel-db' may come from ssgan-mel-plugin 0.1" in text and "No module named 'librosa'" in text
    assert "Installed losses" in str(UnknownPartError("loss", "x", ["a"]))


def test_ssgan_debug_prints_the_traceback_of_a_failed_plugin(monkeypatch, capsys) -> None:
    class Broken:
        @hookimpl
        def register_transforms(self, register):
            raise ModuleNotFoundError("No module named 'librosa'")

    monkeypatch.setenv("SSGAN_DEBUG", "1")
    PluginHost().add_plugin(Broken(), PluginInfo("mel", "ssgan-mel-plugin", "0.1"))
    err = capsys.readouterr().err
    assert "Traceback" in err and "ModuleNotFoundError: No module named 'librosa'" in err
    monkeypatch.delenv("SSGAN_DEBUG")
    PluginHost().add_plugin(Broken(), PluginInfo("mel", "ssgan-mel-plugin", "0.1"))
    assert capsys.readouterr().err == ""


def test_config_docs_show_bounds_and_choices() -> None:
    text = render_config_docs(get_host())
    assert "| `audio.sample_rate` | int, ≥ 8000, ≤ 192000 |" in text
    assert "one of `joint`, `separate`" in text or "one of `separate`, `joint`" in text
    assert "| Literal |" not in text
