"""Checkpoint files: written atomically, read without executing anything from the file.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, saved with
``torch.save`` and loaded with ``torch.load(weights_only=True)``, so a file from an
untrusted source can never run code. RNG states are stored as tensors for that reason.

Payload (``FORMAT``, version ``FORMAT_VERSION``)::

    {"format": "ssgan-checkpoint", "format_version": 1,
     "config": <resolved run config, JSON types>,
     "generator": state_dict, "critic": state_dict | None,
     "optimizers": {...}, "schedulers": {...}, "epoch": int, "step": int,
     "rng": {...}, "best": {...}, "early_stopping": {...},
     "weights_hash": {"generator": <hex>, "critic": <hex>}, ...}

``weights_hash`` holds a BLAKE2b digest of each network's tensors (names, dtypes,
shapes and bytes), written on save and checked on load, so flipped bits in a file
that still unpickles are reported instead of generating noise. Files written before
the hash existed have none and load as before.

Only ``format``, ``format_version``, ``config`` and ``generator`` are required: an
imported generator-only checkpoint (critic ``None``) is enough to generate.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ssgan_core.errors import CheckpointError
from ssgan_core.files import atomic_write

FORMAT = "ssgan-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("config", "generator")
BEST = "best.ckpt"
LAST = "last.ckpt"
CHECKPOINT_DIR = "checkpoints"
HASH_KEY = "weights_hash"
HASHED = ("generator", "critic")
"""Payload entries whose tensors are hashed."""


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
    """Write ``payload`` to ``path`` atomically (temp file, fsync, rename), with weight hashes.

    A crash or kill mid-write leaves the previous file intact, never a half file; a full
    disk is an :class:`~ssgan_core.errors.OutputError` naming the file.
    """
    path = Path(path)
    if payload.get("format") != FORMAT:
        payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    payload = {**payload, HASH_KEY: weights_hashes(payload)}
    with atomic_write(path, durable=True) as handle:
        try:
            torch.save(payload, handle)
        except RuntimeError as exc:  # torch hides the writer's OSError (e.g. ENOSPC) behind its own
            if isinstance(exc.__context__, OSError):
                raise exc.__context__ from None
            raise
    return path


def weights_hashes(payload: dict[str, Any]) -> dict[str, str]:
    """Digest of every hashed network present in ``payload``."""
    return {key: state_dict_digest(payload[key]) for key in HASHED if isinstance(payload.get(key), dict)}


def state_dict_digest(state: dict[str, Any]) -> str:
    """BLAKE2b over each tensor's name, dtype, shape and raw bytes, in name order."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(state):
        value = state[name]
        digest.update(str(name).encode() + b"\0")
        if isinstance(value, torch.Tensor):
            flat = value.detach().to("cpu").contiguous().reshape(-1)
            digest.update(f"{flat.dtype}{tuple(value.shape)}".encode())
            if flat.numel():
                digest.update(flat.view(torch.uint8).numpy().tobytes())
        else:
            digest.update(repr(value).encode())
    return digest.hexdigest()


def verify_weights(path: Path, payload: dict[str, Any]) -> None:
    """Refuse a checkpoint whose weights no longer match the hashes saved with them."""
    stored = payload.get(HASH_KEY)
    if stored is None:
        return  # written before hashes existed
    if not isinstance(stored, dict):
        raise CheckpointError(f"{path}: damaged checkpoint ({HASH_KEY} is not a table)")
    for key, expected in stored.items():
        state = payload.get(key)
        if not isinstance(state, dict) or state_dict_digest(state) != expected:
            raise CheckpointError(
                f"{path}: the {key} weights do not match the hash saved with them; the file is damaged "
                "(disk or copy error). Use another checkpoint, e.g. best.ckpt or last.ckpt of the run"
            )


def read_torch_file(path: Path, *, map_location: Any = "cpu", what: str = "checkpoint") -> Any:
    """``torch.load(weights_only=True)`` with every failure a :class:`CheckpointError` that says
    which it was: missing, unreadable (permissions), corrupt, or refused (asks to import code)."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such {what} file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, expected a {what} file")
    if not os.access(path, os.R_OK):
        raise CheckpointError(f"{path}: cannot read {what} (permission denied)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "global" not in text.lower():  # random bytes: "Unsupported operand", truncation: EOF
            raise CheckpointError(f"{path}: not a readable {what} (corrupt or truncated)") from None
        raise CheckpointError(
            f"{path}: refused to load: the file asks to import Python objects, which a weights-only "
            f"load never runs ({_refusal_detail(text)}); a {what} needs only tensors and plain data, "
            "so this file is damaged or not what it claims, and may be malicious"
        ) from None
    except PermissionError:
        raise CheckpointError(f"{path}: cannot read {what} (permission denied)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, IndexError, KeyError) as exc:
        raise CheckpointError(
            f"{path}: not a readable {what} (corrupt or truncated): {_first_line(exc)}"
        ) from None


def load_checkpoint(path: str | Path, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint; any problem is a :class:`CheckpointError` naming the file."""
    path = Path(path)
    payload = read_torch_file(path, map_location=map_location)
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
    verify_weights(path, payload)
    return payload


def _refusal_detail(text: str) -> str:
    """The line of torch's long refusal that says what was refused."""
    markers = ("GLOBAL", "global")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    detail = next((ln for ln in lines if any(m in ln for m in markers) and "PyTorch 2.6" not in ln), "")
    detail = detail.removeprefix("WeightsUnpickler error: ").split(". Please")[0]
    return detail.rstrip(".") or "unsupported pickle content"


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
