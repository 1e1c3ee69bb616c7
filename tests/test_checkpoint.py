"""Checkpoint files: atomic round trip, and a clear CheckpointError for every bad file."""

from __future__ import annotations

import os

import pytest
import torch

from ssgan_core.checkpoint import FORMAT, find_checkpoint, load_checkpoint, new_payload, save_checkpoint
from ssgan_core.errors import CheckpointError


def _payload() -> dict:
    net = torch.nn.Linear(3, 2)
    return new_payload(
        {"seed": 1},
        net.state_dict(),
        critic=None,
        rng={"torch": torch.get_rng_state()},
        epoch=2,
        step=40,
        best={"epoch": None, "metric": None},
    )


def test_round_trip_keeps_tensors_and_plain_data(tmp_path):
    payload = _payload()
    path = save_checkpoint(tmp_path / "sub" / "last.ckpt", payload)
    loaded = load_checkpoint(path)
    assert loaded["format"] == FORMAT and loaded["epoch"] == 2 and loaded["critic"] is None
    assert torch.equal(loaded["generator"]["weight"], payload["generator"]["weight"])
    assert torch.equal(loaded["rng"]["torch"], payload["rng"]["torch"])
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temp file left behind


def test_failed_write_keeps_previous_file(tmp_path):
    path = save_checkpoint(tmp_path / "last.ckpt", _payload())
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="cannot pickle"):
        save_checkpoint(path, {**_payload(), "generator": _Unsaveable()})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


class _Unsaveable:
    def __reduce__(self):
        raise RuntimeError("cannot pickle")


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: None, "no such checkpoint"),
        (lambda p: p.write_bytes(b""), "corrupt or truncated"),
        (lambda p: p.write_bytes(os.urandom(300)), "corrupt or truncated"),
        (lambda p: p.write_text("hello, not a checkpoint"), "corrupt or truncated"),
    ],
    ids=["missing", "empty", "random-bytes", "text"],
)
def test_bad_files_raise_clear_errors(tmp_path, make, needle):
    path = tmp_path / "x.ckpt"
    make(path)
    with pytest.raises(CheckpointError, match=needle) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_truncated_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path / "last.ckpt", _payload())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_plain_state_dict_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(CheckpointError, match="import-checkpoint"):
        load_checkpoint(path)


def test_pickled_objects_are_refused_without_running_them(tmp_path):
    path = tmp_path / "evil.ckpt"
    marker = tmp_path / "ran"
    torch.save({"format": FORMAT, "payload": _Evil(str(marker))}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


class _Evil:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_newer_format_version_and_missing_generator(tmp_path):
    path = tmp_path / "a.ckpt"
    torch.save({**_payload(), "format_version": 99}, path)
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(path)
    torch.save({"format": FORMAT, "format_version": 1, "config": {}}, path)
    with pytest.raises(CheckpointError, match="missing generator"):
        load_checkpoint(path)


def test_find_checkpoint_prefers_best(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(CheckpointError, match="no such run"):
        find_checkpoint(run)
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        find_checkpoint(run)
    save_checkpoint(run / "checkpoints" / "last.ckpt", _payload())
    assert find_checkpoint(run).name == "last.ckpt"
    save_checkpoint(run / "checkpoints" / "best.ckpt", _payload())
    assert find_checkpoint(run).name == "best.ckpt"
    assert find_checkpoint(run / "checkpoints" / "last.ckpt").name == "last.ckpt"
