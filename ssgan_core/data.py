"""Training data: the folder source, encoding clips to images with a disk cache, the split.

Clips from a dataset source are encoded once with the run's transform and cached as
``<key>.npy`` (float32 ``(N, 2, freq, time)``) plus ``<key>.json`` (names, skipped
inputs). The key hashes the source's fingerprint (for folders: every file's bytes),
the transform's name, options and package version, and the audio spec, so a changed
file or setting re-encodes and anything else reuses the cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from ssgan_core.config import RunConfig
from ssgan_core.errors import AudioError, InputError, OutputError
from ssgan_core.files import atomic_write, ensure_folder, remove_leftovers, write_text
from ssgan_core.interfaces import AudioSpec, Clip, DatasetSource, SkippedItem, Transform

CACHE_FORMAT = 2
STORED_DTYPE = np.float16
"""dtype of encoded images in memory and in the cache (see :class:`EncodedDataset`)."""
ENCODE_BATCH = 32
ProgressFn = Callable[[int, int | None], None]
"""``progress(done, total)``; ``total`` is ``None`` when the source cannot say."""


# --------------------------------------------------------------------------- folder source


class FolderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path = Field(description="Folder of audio files (wav, flac, ogg, aiff, ...).")
    recursive: bool = Field(True, description="Also read files in sub-folders.")
    downmix: bool = Field(
        False,
        description="Average all channels to mono, then duplicate (needed for files with > 2 channels).",
    )


class FolderSource(DatasetSource):
    """Every audio file under a folder; unreadable files are reported in ``skipped``."""

    def __init__(self, options: FolderOptions, audio: AudioSpec) -> None:
        self.options, self.audio = options, audio
        self.skipped: list[SkippedItem] = []
        self._files: list[Path] | None = None

    @property
    def files(self) -> list[Path]:
        if self._files is None:
            from ssgan_core.audio import find_audio_files

            root = self.options.path
            if not root.exists():
                raise InputError(f"data.source.path: {root} does not exist")
            if not root.is_dir():
                raise InputError(f"data.source.path: {root} is not a folder")
            self._files = sorted(Path(p) for p in find_audio_files([root], recursive=self.options.recursive))
            if not self._files:
                where = "in it or its sub-folders" if self.options.recursive else "in it"
                raise InputError(f"data.source.path: {root} has no audio files {where}")
        return self._files

    def size_hint(self) -> int:
        return len(self.files)

    def fingerprint(self) -> str:
        """Hash of every file's relative path and bytes, plus the options that change clips."""
        digest = hashlib.blake2b(digest_size=20)
        digest.update(f"folder:{self.options.recursive}:{self.options.downmix}".encode())
        root = self.options.path
        for path in self.files:
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            try:
                with open(path, "rb") as fh:
                    while block := fh.read(1 << 20):
                        digest.update(block)
            except OSError as exc:  # reported again, with the reason, when clips are read
                digest.update(f"unreadable:{exc.errno}".encode())
        return f"folder:{digest.hexdigest()}"

    def clips(self) -> Iterator[Clip]:
        from ssgan_core.audio import read_audio

        self.skipped = []
        root = self.options.path
        for path in self.files:
            name = str(path.relative_to(root))
            try:
                audio = read_audio(path, self.audio, downmix=self.options.downmix)
            except AudioError as exc:
                self.skipped.append(SkippedItem(name, exc.reason))
                continue
            yield Clip(name, np.asarray(audio, dtype=np.float32))


def build_folder_source(options: FolderOptions, audio: AudioSpec) -> FolderSource:
    return FolderSource(options, audio)


# --------------------------------------------------------------------------- encoding + cache


@dataclass
class EncodedDataset:
    """Encoded images ``(N, 2, freq, time)`` on the CPU, their clip names, and what was skipped.

    Images are float16 (``STORED_DTYPE``): they lie in ``[-1, 1]``, where float16 keeps
    about 0.03 dB of the default 100 dB range, and the cache and memory are half the size.
    """

    images: torch.Tensor
    names: list[str]
    skipped: list[SkippedItem] = field(default_factory=list)
    key: str = ""
    from_cache: bool = False

    def __len__(self) -> int:
        return len(self.names)


def cache_key(
    source_name: str,
    fingerprint: str,
    transform: dict[str, Any],
    transform_version: str,
    audio: AudioSpec,
) -> str:
    """Stable hash of everything that decides the encoded tensor."""
    material = {
        "format": CACHE_FORMAT,
        "source": source_name,
        "fingerprint": fingerprint,
        "transform": transform,
        "transform_version": transform_version,
        "audio": {"sample_rate": audio.sample_rate, "num_samples": audio.num_samples},
    }
    blob = json.dumps(material, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def load_cached(cache_dir: Path, key: str) -> EncodedDataset | None:
    """The cached dataset for ``key``, or ``None`` if absent or unreadable (then re-encode)."""
    npy, meta_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    if not (npy.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        array = np.load(npy, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if meta.get("key") != key or array.shape[0] != len(meta.get("names", ())) or array.dtype != STORED_DTYPE:
        return None
    skipped = [SkippedItem(n, r) for n, r in meta.get("skipped", [])]
    return EncodedDataset(torch.from_numpy(array), list(meta["names"]), skipped, key, from_cache=True)


def prepare_cache_dir(cache_dir: Path) -> Path:
    """Check ``data.cache_dir`` is a usable folder and drop temp files of killed encoders."""
    if cache_dir.exists() and not cache_dir.is_dir():
        raise InputError(f"data.cache_dir: {cache_dir} is a file, not a folder")
    try:
        ensure_folder(cache_dir, "data.cache_dir")
    except OutputError as exc:
        raise InputError(f"data.cache_dir: {exc}") from None
    remove_leftovers(cache_dir)
    return cache_dir


def _save_cache(cache_dir: Path, key: str, data: EncodedDataset, info: dict[str, Any]) -> None:
    """Array first, then its metadata: a reader needs both, so a kill between them is harmless."""
    meta = {
        "key": key,
        **info,
        "shape": list(data.images.shape),
        "names": data.names,
        "skipped": [[s.name, s.reason] for s in data.skipped],
    }
    with atomic_write(cache_dir / f"{key}.npy") as fh:
        np.save(fh, data.images.numpy(), allow_pickle=False)
    write_text(cache_dir / f"{key}.json", json.dumps(meta, indent=1))


def _batches(clips: Iterator[Clip], size: int) -> Iterator[list[Clip]]:
    batch: list[Clip] = []
    for clip in clips:
        batch.append(clip)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def encode_clips(
    source: DatasetSource,
    transform: Transform,
    audio: AudioSpec,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = ENCODE_BATCH,
    progress: ProgressFn | None = None,
) -> EncodedDataset:
    """Run every clip of ``source`` through ``transform.encode`` in batches.

    Raises :class:`InputError` when no clip is usable, listing why inputs were skipped.
    """
    total = source.size_hint()
    out: np.ndarray | None = None
    names: list[str] = []
    done = 0
    transform = transform.to(device).eval()
    for batch in _batches(source.clips(), batch_size):
        for clip in batch:
            if clip.audio.shape != (2, audio.num_samples):
                raise InputError(
                    f"dataset clip {clip.name}: shape {tuple(clip.audio.shape)}, "
                    f"expected (2, {audio.num_samples})"
                )
        waves = torch.from_numpy(np.stack([c.audio for c in batch])).to(device)
        with torch.no_grad():
            images = transform.encode(waves).float().cpu().numpy()
        finite = np.isfinite(images).reshape(len(batch), -1).all(axis=1)
        if not finite.all():
            bad = ", ".join(c.name for c, ok in zip(batch, finite, strict=True) if not ok)
            raise InputError(f"the transform produced non-finite values while encoding {bad}")
        if out is None:
            rows = max(total or 0, len(batch))
            out = np.empty((rows, *images.shape[1:]), dtype=STORED_DTYPE)
        if done + len(batch) > out.shape[0]:  # the source yielded more than it hinted
            out = np.concatenate(
                [out, np.empty((done + len(batch) - out.shape[0], *out.shape[1:]), STORED_DTYPE)]
            )
        out[done : done + len(batch)] = images
        names.extend(c.name for c in batch)
        done += len(batch)
        if progress is not None:
            progress(done, total)
    skipped = list(source.skipped)
    if out is None or done == 0:
        reasons = "; ".join(f"{s.name}: {s.reason}" for s in skipped[:5])
        more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
        raise InputError(f"no usable audio in the dataset: {len(skipped)} input(s) skipped. {reasons}{more}")
    return EncodedDataset(torch.from_numpy(out[:done]), names, skipped)


def encode_dataset(
    source: DatasetSource,
    transform: Transform,
    audio: AudioSpec,
    *,
    key: str,
    cache_dir: Path | None,
    info: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
    progress: ProgressFn | None = None,
) -> EncodedDataset:
    """Cached :func:`encode_clips`: reuse ``<cache_dir>/<key>.npy`` when present."""
    if cache_dir is not None:
        prepare_cache_dir(cache_dir)
        cached = load_cached(cache_dir, key)
        if cached is not None:
            return cached
    data = encode_clips(source, transform, audio, device=device, progress=progress)
    data.key = key
    if cache_dir is not None:
        _save_cache(cache_dir, key, data, info or {})
    return data


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded shuffle into (train, validation) index tensors; both non-empty."""
    if n < 2:
        raise InputError(f"the dataset has {n} usable clip(s); at least 2 are needed to hold out validation")
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[n_val:].sort().values, order[:n_val].sort().values


def load_dataset(
    cfg: RunConfig,
    host: Any = None,
    *,
    device: torch.device | str = "cpu",
    progress: ProgressFn | None = None,
) -> EncodedDataset:
    """The run's dataset encoded with its transform, from the cache when unchanged."""
    from ssgan_core.generation import build_part
    from ssgan_core.plugins import get_host

    host = host or get_host()
    audio = cfg.audio.spec()
    source = build_part("dataset", cfg.data.source, audio, host)
    transform = build_part("transform", cfg.transform, audio, host)
    section = cfg.data.source
    key = cache_key(
        section.name,
        source.fingerprint(),
        {"name": cfg.transform.name, **cfg.transform.options},
        host.registry("transform").get(cfg.transform.name).version,
        audio,
    )
    cache_dir = cfg.data.cache_dir or cfg.output.runs_dir / ".cache"
    info = {"source": {"name": section.name, **section.options}, "transform": cfg.transform.name}
    return encode_dataset(
        source, transform, audio, key=key, cache_dir=cache_dir, info=info, device=device, progress=progress
    )
