"""Reading, fitting and writing stereo clips; every failure is an :class:`AudioError`.

Reading returns float32 ``(2, spec.num_samples)`` at ``spec.sample_rate``: any format
libsndfile reads (WAV, FLAC, OGG, AIFF; 8/16/24/32-bit integer or float), resampled
with ``scipy.signal.resample_poly``, mono duplicated, zero-padded or cut to length.
"""

from __future__ import annotations

import functools
import io
import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from ssgan_core.errors import AudioError, AudioWarning, OutputError
from ssgan_core.files import write_bytes
from ssgan_core.interfaces import AUDIO_CHANNELS, AudioSpec
from ssgan_core.parallel import map_in_order

AUDIO_EXTENSIONS: frozenset[str] = frozenset({".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".aifc"})
"""Suffixes (lower case) that folder scans treat as audio."""

UNSUPPORTED_AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp3", ".m4a", ".aac", ".wma", ".mp4", ".ape", ".alac", ".amr"}
)
"""Audio suffixes libsndfile does not read here: folder scans skip them and say so."""

SAMPLE_RATE_RANGE = (1000, 768_000)
"""Plausible file sample rates in Hz; outside it the header is broken or the file is not audio."""

WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}
Subtype = Literal["PCM_16", "PCM_24", "FLOAT"]

READ_WORKERS = min(8, os.cpu_count() or 1)
"""Threads that decode files in :func:`read_many` (one per core, at most 8)."""

_RESAMPLE_MARGIN = 64
"""Extra input frames (at the file's rate, beyond the ones we keep) read before
resampling, so the filter's edge effects fall outside the kept samples."""


def _describe(exc: Exception) -> str:
    """A human reason for a libsndfile failure, keeping its own words in parentheses."""
    raw = str(exc).strip()
    if raw.startswith("Error opening"):
        raw = raw.split(":", 2)[-1].strip()
    lowered = raw.lower()
    if "format not recognised" in lowered or "unknown format" in lowered or "not recognised" in lowered:
        reason = "not a recognised audio file (expected WAV, FLAC, OGG or AIFF)"
    elif "unsupported" in lowered or "not supported" in lowered:
        reason = "audio encoding not supported by libsndfile"
    elif "permission" in lowered:
        reason = "permission denied"
    else:
        reason = "corrupt or unreadable audio file"
    return f"{reason} ({raw})" if raw else reason


def read_audio(path: str | Path, spec: AudioSpec, *, downmix: bool = False) -> np.ndarray:
    """Read one file as float32 ``(2, spec.num_samples)`` at ``spec.sample_rate``.

    Mono is duplicated to both channels. A file with more than two channels is an
    error unless ``downmix``: then all channels are averaged to mono and duplicated
    (files rarely say which channel is which, so no surround layout is assumed).
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a folder, not an audio file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioError(path, f"cannot read file ({exc.strerror or exc})") from None
    if size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise AudioError(path, "permission denied (the file exists but cannot be read)")
    try:
        with sf.SoundFile(str(path)) as f:
            rate, channels, total = f.samplerate, f.channels, f.frames
            _check_rate(path, rate)
            wanted = math.ceil(spec.num_samples * rate / spec.sample_rate) + _RESAMPLE_MARGIN
            data = f.read(frames=min(total, wanted) if total > 0 else -1, dtype="float32", always_2d=True)
            log = f.extra_info
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(path, _describe(exc)) from None
    except PermissionError:
        raise AudioError(path, "permission denied (the file exists but cannot be read)") from None
    except OSError as exc:
        raise AudioError(path, f"cannot read file ({exc.strerror or exc})") from None
    if _cut_short(log):
        warnings.warn(
            AudioWarning(
                path,
                f"is cut short: its header promises more audio than the file holds "
                f"(read the {total} frames present)",
            ),
            stacklevel=2,
        )
    if data.shape[0] == 0:
        raise AudioError(path, "contains no audio frames")
    if not np.isfinite(data).all():
        raise AudioError(path, "contains NaN or infinite samples")
    if channels > AUDIO_CHANNELS:
        if not downmix:
            raise AudioError(
                path,
                f"has {channels} channels; only mono and stereo are read (--downmix averages them)",
            )
        data = data.mean(axis=1, keepdims=True)
    if rate != spec.sample_rate:
        data = resample(data, rate, spec.sample_rate, axis=0)
    stereo = np.repeat(data.T, AUDIO_CHANNELS, axis=0) if data.shape[1] == 1 else data.T
    return fit_length(stereo, spec.num_samples)


_DATA_SIZE = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _cut_short(log: str) -> bool:
    """Whether libsndfile's header log says the data chunk is shorter than declared."""
    match = _DATA_SIZE.search(log)
    return match is not None and int(match.group(2)) < int(match.group(1))


def _check_rate(path: Path, rate: int) -> None:
    low, high = SAMPLE_RATE_RANGE
    if not low <= rate <= high:
        raise AudioError(
            path, f"sample rate {rate} Hz is implausible (expected {low} to {high} Hz); the header is broken"
        )


def read_many(
    paths: Sequence[Path], spec: AudioSpec, *, downmix: bool = False, workers: int | None = None
) -> Iterator[tuple[Path, np.ndarray | AudioError]]:
    """:func:`read_audio` over many files in threads, yielded in order as ``(path, audio or error)``.

    libsndfile decodes with the GIL released, so reads overlap; at most ``4 * workers``
    files are in flight, so memory does not grow with the folder.
    """

    def read(path: Path) -> tuple[Path, np.ndarray | AudioError]:
        return path, _read_or_error(path, spec, downmix)

    workers = workers or READ_WORKERS
    yield from map_in_order(read, paths, workers, ahead=4 * workers, name="ssgan-read")


def _read_or_error(path: Path, spec: AudioSpec, downmix: bool) -> np.ndarray | AudioError:
    try:
        return read_audio(path, spec, downmix=downmix)
    except AudioError as exc:
        return exc


def resample(audio: np.ndarray, rate: int, target: int, axis: int = -1) -> np.ndarray:
    """Polyphase resampling by the reduced ratio ``target / rate`` (float32 out).

    ``scipy.signal.resample_poly`` with its own default filter, designed once per rate
    pair instead of once per call (the design cost as much as the filtering).
    """
    import scipy.signal  # 0.7 s to import: only when a file needs resampling

    g = math.gcd(int(rate), int(target))
    up, down = int(target) // g, int(rate) // g
    out = scipy.signal.resample_poly(audio, up, down, axis=axis, window=_resample_filter(up, down))
    return out.astype(np.float32, copy=False)


@functools.lru_cache(maxsize=32)
def _resample_filter(up: int, down: int) -> np.ndarray:
    """``resample_poly``'s default filter (Kaiser beta 5, 10 zero crossings), float32."""
    import scipy.signal

    max_rate = max(up, down)
    taps = scipy.signal.firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    return taps.astype(np.float32)


def fit_length(audio: np.ndarray, num_samples: int) -> np.ndarray:
    """Zero-pad or cut the last axis to ``num_samples``; returns contiguous float32."""
    have = audio.shape[-1]
    if have >= num_samples:
        out = audio[..., :num_samples]
    else:
        out = np.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(0, num_samples - have)])
    return np.ascontiguousarray(out, dtype=np.float32)


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int, subtype: Subtype = "PCM_24") -> Path:
    """Write ``(2, n)`` or ``(n,)`` audio to ``.wav`` or ``.flac``, atomically.

    Integer formats are clipped to ``[-1, 1]``. The file appears complete or not at all
    (written to a temporary file in the same folder, then renamed).
    """
    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(path, f"cannot write {path.suffix or 'files without a suffix'}; use .wav or .flac")
    if fmt == "FLAC" and subtype == "FLOAT":
        raise AudioError(path, "FLAC stores integers only; use PCM_16 or PCM_24, or write a .wav")
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim not in (1, 2) or (data.ndim == 2 and data.shape[0] not in (1, 2)) or data.size == 0:
        raise AudioError(path, f"audio to write has shape {data.shape}; expected (2, samples) or (samples,)")
    if not np.isfinite(data).all():
        raise AudioError(path, "audio to write contains NaN or infinite samples")
    if subtype != "FLOAT":
        data = np.clip(data, -1.0, 1.0)
    frames = data.T if data.ndim == 2 else data
    buffer = io.BytesIO()  # encoded in memory: libsndfile's writes to a full disk fail obscurely
    try:
        sf.write(buffer, frames, int(sample_rate), subtype=subtype, format=fmt)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioError(path, f"cannot write audio ({exc})") from None
    try:
        write_bytes(path, buffer.getbuffer())
    except OutputError as exc:
        raise AudioError(path, exc.reason) from None
    return path


class AudioWriter:
    """Writes batches of clips on one background thread while the caller computes the next batch.

    Encoding and writing a file releases the GIL (libsndfile, the OS write), so a
    command that alternates compute and writes (``ssgan invert``) keeps both cores busy
    instead of writing on one while the other waits. At most one batch is in flight: a
    write error surfaces on the next :meth:`write` or on leaving the ``with`` block.
    """

    def __init__(self, sample_rate: int, subtype: Subtype = "PCM_24") -> None:
        self.sample_rate, self.subtype = sample_rate, subtype
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ssgan-write")
        self._pending: Future[None] | None = None

    def write(self, paths: Sequence[Path], clips: np.ndarray) -> None:
        """Queue ``clips`` ``(N, 2, samples)`` for ``paths`` (the array must not change afterwards)."""
        self.wait()
        self._pending = self._pool.submit(self._write_all, list(paths), clips)

    def wait(self) -> None:
        """Block until the queued batch is written; raises its error, if any."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _write_all(self, paths: list[Path], clips: np.ndarray) -> None:
        for path, clip in zip(paths, clips, strict=True):
            write_audio(path, clip, self.sample_rate, self.subtype)

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            if exc_type is None:
                self.wait()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def find_audio_files(paths: Iterable[str | Path], recursive: bool = True) -> list[Path]:
    """Expand files and folders into audio files, in argument order, each folder sorted.

    Folders contribute files whose suffix is in :data:`AUDIO_EXTENSIONS` (any case),
    skipping hidden names (``.DS_Store``, ``._kick.wav`` resource forks). A file named
    explicitly is kept whatever its suffix, so reading it reports the real problem.
    Duplicates are dropped. A path that does not exist raises :class:`AudioError`.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            walk = path.rglob("*") if recursive else path.glob("*")
            visible = [
                p
                for p in walk
                if not any(part.startswith(".") for part in p.relative_to(path).parts) and p.is_file()
            ]
            candidates = sorted(p for p in visible if p.suffix.lower() in AUDIO_EXTENSIONS)
            _warn_unsupported(path, visible)
        elif path.exists():
            candidates = [path]
        else:
            raise AudioError(path, "no such file or folder")
        for p in candidates:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                found.append(p)
    return found


def _warn_unsupported(folder: Path, files: list[Path]) -> None:
    """One warning per folder for audio files of a format that cannot be read (e.g. MP3)."""
    counts: dict[str, int] = {}
    for p in files:
        suffix = p.suffix.lower()
        if suffix in UNSUPPORTED_AUDIO_EXTENSIONS:
            counts[suffix] = counts.get(suffix, 0) + 1
    if counts:
        listed = ", ".join(f"{n} {suffix}" for suffix, n in sorted(counts.items()))
        warnings.warn(
            AudioWarning(
                folder,
                f"skipped {listed} file(s): format not readable here (convert to WAV or FLAC)",
            ),
            stacklevel=3,
        )
