"""Training data: the folder source, encoding clips to images with a disk cache, the split.

Clips from a dataset source are encoded once with the run's transform and cached as
``<key>.npy`` (float32 ``(N, C, freq, time)``, the transform's image shape) plus
``<key>.json`` (names, skipped inputs). The key hashes the source's fingerprint (for
folders: every file's bytes), the transform's name, options and package version, and
the audio spec, so a changed file or setting re-encodes and anything else reuses the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import torch
from torch import Tensor

from ssgan_core.augment import augment as augment_audio
from ssgan_core.augment import draw_parameters
from ssgan_core.config import AugmentConfig, FolderOptions, RunConfig
from ssgan_core.errors import AudioError, InputError, OutputError
from ssgan_core.files import describe_os_error, ensure_folder, remove_leftovers, temp_path, write_text
from ssgan_core.image_arrays import NpyStream
from ssgan_core.interfaces import AUDIO_CHANNELS, AudioSpec, Clip, DatasetSource, SkippedItem, Transform
from ssgan_core.memory import release_free_memory
from ssgan_core.parallel import map_in_order, torch_threads

CACHE_FORMAT = 3
"""3: rows written as encoded (fixed 128-byte header), groups and augmented flags in the JSON."""
STORED_DTYPE = np.float16
"""dtype of encoded images in the cache (see :class:`EncodedDataset`)."""
ENCODE_BATCH = 16
TRIM_EVERY = 8
"""Encoded batches between :func:`release_free_memory` calls."""
MAX_ENCODE_WORKERS = 8
"""Batches encoded at once at most (:func:`encode_workers`)."""
_Batch = TypeVar("_Batch")
_Encoded = TypeVar("_Encoded")
ProgressFn = Callable[[int, int | None], None]
"""``progress(done, total)``; ``total`` is ``None`` when the source cannot say."""


# --------------------------------------------------------------------------- folder source


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
        """Files decoded in parallel threads (:func:`~ssgan_core.audio.read_many`), in sorted order."""
        from ssgan_core.audio import read_many

        self.skipped = []
        root = self.options.path
        for path, audio in read_many(self.files, self.audio, downmix=self.options.downmix):
            name = str(path.relative_to(root))
            if isinstance(audio, AudioError):
                self.skipped.append(SkippedItem(name, audio.reason))
                continue
            yield Clip(name, np.asarray(audio, dtype=np.float32))


def build_folder_source(options: FolderOptions, audio: AudioSpec) -> FolderSource:
    return FolderSource(options, audio)


# --------------------------------------------------------------------------- the image store


class ImageStore:
    """Encoded images ``(N, C, freq, time)`` in a float16 ``.npy`` file, read a batch at a time.

    Training asks for a batch of rows (:meth:`take`); each row is read from the file with
    one ``readinto`` into the batch's own buffer. Nothing is memory-mapped and nothing is
    kept, so the process holds one batch whatever ``N`` is (a memory map would do as
    well at first, but every page it touches stays in the resident set, and a run
    touches them all). The OS page cache keeps the file's hot pages, outside our RSS.
    """

    def __init__(self, file: io.FileIO, offset: int, shape: tuple[int, ...]) -> None:
        self._file, self._offset = file, offset
        self.shape = tuple(int(n) for n in shape)
        self.row_bytes = int(np.prod(self.shape[1:])) * STORED_DTYPE().itemsize
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path) -> ImageStore:
        """The store of an ``.npy`` cache file; :class:`ValueError` if it is not a float16 4-D array."""
        fh = open(path, "rb", buffering=0)  # noqa: SIM115 (the store owns it)
        try:
            major, _ = np.lib.format.read_magic(fh)
            read_header = (
                np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(fh)
            if fortran or np.dtype(dtype) != STORED_DTYPE or len(shape) != 4:
                raise ValueError(f"{path}: not a C-order float16 (N, C, F, T) array")
            store = cls(fh, fh.tell(), shape)
            if os.fstat(fh.fileno()).st_size != store._offset + store.shape[0] * store.row_bytes:
                raise ValueError(f"{path}: file size does not match its header")
        except BaseException:
            fh.close()
            raise
        return store

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, idx: np.ndarray | Tensor | list[int]) -> np.ndarray:
        """Rows ``idx`` (any order, repeats allowed) as a new float16 array."""
        if isinstance(idx, Tensor):
            idx = idx.detach().cpu().numpy()
        order = np.asarray(idx, dtype=np.int64).reshape(-1)
        if order.size and (order.min() < 0 or order.max() >= len(self)):
            raise IndexError(f"image index out of range 0..{len(self) - 1}")
        out = np.empty((len(order), *self.shape[1:]), dtype=STORED_DTYPE)
        with self._lock:
            for slot, row in enumerate(order.tolist()):
                self._file.seek(self._offset + row * self.row_bytes)
                got = self._file.readinto(out[slot].data.cast("B"))
                if got != self.row_bytes:
                    raise OSError(f"image cache file ended early at row {row} (it changed on disk?)")
        return out

    def take(self, idx: np.ndarray | Tensor | list[int], device: torch.device | str = "cpu") -> Tensor:
        """Rows ``idx`` as a float32 batch on ``device`` (copied as float16, widened there)."""
        return torch.from_numpy(self.rows(idx)).to(device).float()

    def close(self) -> None:
        self._file.close()


# --------------------------------------------------------------------------- encoding + cache


@dataclass
class EncodedDataset:
    """Encoded images ``(N, C, freq, time)`` in an :class:`ImageStore`, and what each one is.

    Images are float16 (``STORED_DTYPE``): they lie in ``[-1, 1]``, where float16 keeps
    about 0.03 dB of the default 100 dB range, and the cache is half the size.
    ``groups[i]`` is the index of the source clip image ``i`` was made from (its copies
    share it) and ``augmented[i]`` says whether it is an augmented copy, so a split can
    keep every copy of a clip on one side.
    """

    images: ImageStore
    names: list[str]
    groups: Tensor
    augmented: Tensor
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
    augment: dict[str, Any] | None = None,
) -> str:
    """Stable hash of everything that decides the encoded images (``augment``: options and seed, when on)."""
    material = {
        "format": CACHE_FORMAT,
        "source": source_name,
        "fingerprint": fingerprint,
        "transform": transform,
        "transform_version": transform_version,
        "audio": {"sample_rate": audio.sample_rate, "num_samples": audio.num_samples},
        "augment": augment,
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
        store = ImageStore.open(npy)
    except (OSError, ValueError):
        return None
    names, groups, copies = meta.get("names", ()), meta.get("groups", ()), meta.get("augmented", ())
    if meta.get("key") != key or not len(store) == len(names) == len(groups) == len(copies):
        store.close()
        return None
    skipped = [SkippedItem(n, r) for n, r in meta.get("skipped", [])]
    return EncodedDataset(
        store,
        list(names),
        torch.tensor(groups, dtype=torch.long),
        torch.tensor(copies, dtype=torch.bool),
        skipped,
        key,
        from_cache=True,
    )


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


def _write_meta(cache_dir: Path, key: str, data: EncodedDataset, info: dict[str, Any]) -> None:
    meta = {
        "key": key,
        **info,
        "shape": list(data.images.shape),
        "names": data.names,
        "groups": data.groups.tolist(),
        "augmented": data.augmented.tolist(),
        "skipped": [[s.name, s.reason] for s in data.skipped],
    }
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


def _numbered(batches: Iterator[list[Clip]]) -> Iterator[tuple[int, list[Clip]]]:
    """``(index of the batch's first clip, batch)``."""
    first = 0
    for batch in batches:
        yield first, batch
        first += len(batch)


def encode_workers(device: torch.device | str) -> int:
    """Batches encoded at once: one per torch thread on the CPU (each with one intra-op
    thread), one on a GPU. A batch's small ops and its FFTs parallelise poorly inside one
    call; whole batches on separate threads use every core (docs/benchmarks.md)."""
    if torch.device(device).type != "cpu":
        return 1
    return max(1, min(torch.get_num_threads(), MAX_ENCODE_WORKERS))


def encoded_in_order(
    encode: Callable[[_Batch], _Encoded], batches: Iterable[_Batch], device: torch.device | str
) -> Iterator[_Encoded]:
    """``encode(batch)`` for every batch, in order, on :func:`encode_workers` threads of one
    intra-op torch thread each; freed memory is trimmed every ``TRIM_EVERY`` batches, else
    it piles up in fragmented heaps. Serves ``encode_clips`` and ``ssgan encode``."""
    workers = encode_workers(device)
    with torch_threads(1) if workers > 1 else contextlib.nullcontext():
        for number, result in enumerate(map_in_order(encode, batches, workers, name="ssgan-encode")):
            yield result
            if number % TRIM_EVERY == TRIM_EVERY - 1:
                release_free_memory()


def encode_clips(
    source: DatasetSource,
    transform: Transform,
    audio: AudioSpec,
    *,
    file: io.FileIO | None = None,
    augment: AugmentConfig | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    batch_size: int = ENCODE_BATCH,
    progress: ProgressFn | None = None,
) -> EncodedDataset:
    """Run every clip of ``source`` (and ``augment.copies`` augmented copies of it) through
    ``transform.encode`` in batches, writing each batch to ``file`` as it is made.

    ``file`` (opened ``w+b``) becomes the store's file; by default an anonymous temporary
    file. Memory holds one batch whatever the source's size. A batch's images are its
    clips, then copy 1 of each, copy 2 of each, ... Raises :class:`InputError` when no
    clip is usable, listing why inputs were skipped.
    """
    total = source.size_hint()
    copies = augment.copies if augment is not None else 0
    if file is None:
        file = cast(io.FileIO, tempfile.TemporaryFile(buffering=0))  # noqa: SIM115 (the store owns it)
    writer = NpyStream(file, STORED_DTYPE)
    names: list[str] = []
    groups: list[Tensor] = []
    augmented: list[bool] = []
    transform = transform.to(device).eval()

    def encode_batch(numbered: tuple[int, list[Clip]]) -> list[tuple[list[str], np.ndarray]]:
        """``(names, images)`` of a batch's clips, then of each augmented copy of them."""
        first, batch = numbered
        waves = _stack_clips(batch, audio).to(device)
        batch_names = [c.name for c in batch]
        encoded = [(batch_names, _encode_checked(transform, waves, batch_names))]
        for copy in range(1, copies + 1):
            assert augment is not None
            params = draw_parameters(augment, seed, first, len(batch), copy)
            varied = augment_audio(waves, params, audio.sample_rate)
            copy_names = [f"{name}#{copy}" for name in batch_names]
            encoded.append((copy_names, _encode_checked(transform, varied, copy_names)))
        return encoded

    done = 0
    batches = _numbered(_batches(source.clips(), batch_size))
    for encoded in encoded_in_order(encode_batch, batches, device):
        first, done = done, done + len(encoded[0][0])
        for copy, (copy_names, images) in enumerate(encoded):
            writer.append(images)
            names.extend(copy_names)
            groups.append(torch.arange(first, done))
            augmented.extend([copy > 0] * len(copy_names))
        if progress is not None:
            progress(done, total)
    skipped = list(source.skipped)
    if done == 0:
        file.close()
        reasons = "; ".join(f"{s.name}: {s.reason}" for s in skipped[:5])
        more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
        raise InputError(f"no usable audio in the dataset: {len(skipped)} input(s) skipped. {reasons}{more}")
    flags = torch.tensor(augmented, dtype=torch.bool)
    store = ImageStore(file, NpyStream.HEADER_BYTES, writer.finish())
    return EncodedDataset(store, names, torch.cat(groups), flags, skipped)


def _stack_clips(batch: list[Clip], audio: AudioSpec) -> Tensor:
    for clip in batch:
        if clip.audio.shape != (AUDIO_CHANNELS, audio.num_samples):
            raise InputError(
                f"dataset clip {clip.name}: shape {tuple(clip.audio.shape)}, "
                f"expected ({AUDIO_CHANNELS}, {audio.num_samples})"
            )
    return torch.from_numpy(np.stack([c.audio for c in batch]))


def _encode_checked(transform: Transform, waves: Tensor, names: list[str]) -> np.ndarray:
    """``transform.encode`` as float16 numpy; :class:`InputError` naming any clip that gave NaN/inf."""
    with torch.no_grad():
        images = transform.encode(waves).float().cpu()
    finite = np.isfinite(images.numpy()).reshape(len(images), -1).all(axis=1)
    if not finite.all():
        bad = ", ".join(n for n, ok in zip(names, finite, strict=True) if not ok)
        raise InputError(f"the transform produced non-finite values while encoding {bad}")
    return images.to(torch.float16).numpy()  # numpy's astype took 0.65 ms an image, torch 0.01-0.24


def encode_dataset(
    source: DatasetSource,
    transform: Transform,
    audio: AudioSpec,
    *,
    key: str,
    cache_dir: Path | None,
    info: dict[str, Any] | None = None,
    augment: AugmentConfig | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: ProgressFn | None = None,
) -> EncodedDataset:
    """Cached :func:`encode_clips`: reuse ``<cache_dir>/<key>.npy`` when present, else encode
    straight into it (a temporary name, renamed when complete)."""
    if cache_dir is None:
        data = encode_clips(
            source, transform, audio, augment=augment, seed=seed, device=device, progress=progress
        )
        data.key = key
        return data
    prepare_cache_dir(cache_dir)
    cached = load_cached(cache_dir, key)
    if cached is not None:
        return cached
    final = cache_dir / f"{key}.npy"
    tmp = temp_path(final)
    try:
        file = open(tmp, "w+b", buffering=0)  # noqa: SIM115 (the store keeps it open)
    except OSError as exc:
        raise OutputError(tmp, f"cannot write the dataset cache ({describe_os_error(exc)})") from None
    try:
        data = encode_clips(
            source, transform, audio, file=file, augment=augment, seed=seed, device=device, progress=progress
        )
        data.key = key
        os.replace(tmp, final)  # the open file follows the rename
        _write_meta(cache_dir, key, data, info or {})
    except OSError as exc:  # a full disk: no half cache left behind, one line for the user
        file.close()
        raise OutputError(final, f"cannot write the dataset cache ({describe_os_error(exc)})") from None
    except BaseException:
        file.close()
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return data


def split_indices(
    groups: Tensor, val_fraction: float, seed: int, augmented: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Seeded split of images into (train, validation) index tensors by source clip; both non-empty.

    Whole groups (a clip and its augmented copies) go to one side; validation keeps only
    the un-augmented image of each of its clips, so it measures real clips only.
    """
    ids, group_of = torch.unique(groups, return_inverse=True)
    n = len(ids)
    if n < 2:
        raise InputError(f"the dataset has {n} usable clip(s); at least 2 are needed to hold out validation")
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    held = torch.zeros(n, dtype=torch.bool)
    held[order[:n_val]] = True
    in_val = held[group_of]
    original = torch.ones_like(in_val) if augmented is None else ~augmented.to(torch.bool)
    train = torch.nonzero(~in_val).flatten()
    val = torch.nonzero(in_val & original).flatten()
    return train, val


def load_dataset(
    cfg: RunConfig,
    host: Any = None,
    *,
    device: torch.device | str = "cpu",
    progress: ProgressFn | None = None,
) -> EncodedDataset:
    """The run's dataset (and augmented copies) encoded with its transform, from the cache when unchanged."""
    from ssgan_core.generation import build_part, build_run_parts
    from ssgan_core.plugins import get_host

    host = host or get_host()
    audio = cfg.audio.spec()
    source = build_part("dataset", cfg.data.source, audio, host)
    transform = build_run_parts(cfg, host, kinds=()).transform
    section = cfg.data.source
    augment = cfg.data.augment if cfg.data.augment.copies > 0 else None
    key = cache_key(
        section.name,
        source.fingerprint(),
        {"name": cfg.transform.name, **cfg.transform.options},
        host.registry("transform").get(cfg.transform.name).version,
        audio,
        None if augment is None else {**augment.model_dump(), "seed": cfg.seed},
    )
    cache_dir = cfg.data.cache_dir or cfg.output.runs_dir / ".cache"
    info = {"source": {"name": section.name, **section.options}, "transform": cfg.transform.name}
    return encode_dataset(
        source,
        transform,
        audio,
        key=key,
        cache_dir=cache_dir,
        info=info,
        augment=augment,
        seed=cfg.seed,
        device=device,
        progress=progress,
    )
