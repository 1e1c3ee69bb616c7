"""Checkpoint files: written atomically, read without executing anything from the file.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, saved with
``torch.save`` and loaded with ``torch.load(weights_only=True)``, so a file from an
untrusted source can never run code. RNG states are stored as tensors for that reason.

Payload (``FORMAT``, version ``FORMAT_VERSION``)::

    {"format": "ssgan-checkpoint", "format_version": 1,
     "config": <resolved run config, JSON types>,
     "generator": state_dict, "critic": state_dict | None,
     "optimizers": {...}, "schedulers": {...}, "epoch": int, "step": int,
     "rng": {...}, "best": {...}, "early_stopping": {...}, ...}

Only ``format``, ``format_version``, ``config`` and ``generator`` are required: an
imported generator-only checkpoint (critic ``None``) is enough to generate.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ssgan_core.errors import CheckpointError

FORMAT = "ssgan-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("config", "generator")
BEST = "best.ckpt"
LAST = "last.ckpt"
CHECKPOINT_DIR = "checkpoints"


def new_payload(config: dict[str, Any], generator: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A payload with the format marker filled in."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config,
        "generator": generator,
        **fields,
    }


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically: temp file, fsync, rename.

    A crash or kill mid-write leaves the previous file intact, never a half file.
    """
    path = Path(path)
    if payload.get("format") != FORMAT:
        payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint; any problem is a :class:`CheckpointError` naming the file."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, expected a .ckpt file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        refused = next((ln.strip() for ln in text.splitlines() if "allowed global" in ln), None)
        if refused is None:
            raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or truncated)") from None
        raise CheckpointError(
            f"{path}: refused to load: the file holds Python objects, not only tensors and plain data "
            f"({refused.split('. ')[0].removeprefix('WeightsUnpickler error: ')}); ssgan checkpoints never do"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, IndexError, KeyError) as exc:
        raise CheckpointError(
            f"{path}: not a readable checkpoint (corrupt or truncated): {_first_line(exc)}"
        ) from None
    if not isinstance(payload, dict):
        raise CheckpointError(
            f"{path}: not an ssgan checkpoint (holds a {type(payload).__name__}, not a dict)"
        )
    if payload.get("format") != FORMAT:
        hint = ""
        if payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            hint = " It looks like a bare state dict; convert it with `ssgan import-checkpoint`."
        raise CheckpointError(f"{path}: not an ssgan checkpoint (no '{FORMAT}' format marker).{hint}")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is newer than this ssgan reads "
            f"({FORMAT_VERSION}); upgrade ssgan"
        )
    missing = [k for k in REQUIRED_KEYS if not isinstance(payload.get(k), dict)]
    if missing:
        raise CheckpointError(f"{path}: checkpoint is missing {', '.join(missing)}")
    return payload


def find_checkpoint(path: str | Path) -> Path:
    """A run directory (best, else last checkpoint), its checkpoints folder, or a file."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise CheckpointError(f"{path}: no such run directory or checkpoint file")
    folders = [path / CHECKPOINT_DIR, path]
    for folder in folders:
        for name in (BEST, LAST):
            if (folder / name).is_file():
                return folder / name
    raise CheckpointError(
        f"{path}: no checkpoint found (looked for {CHECKPOINT_DIR}/{BEST} and {CHECKPOINT_DIR}/{LAST})"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
