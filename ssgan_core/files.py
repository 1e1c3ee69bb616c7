"""Writing output files safely: one atomic writer, output-path checks, leftover cleanup.

Every file ssgan writes (checkpoints, WAVs, PNGs, encoded arrays and their sidecars, the
dataset cache, run configs) goes through :func:`atomic_write`: the bytes go to a hidden
temporary file in the target folder, which is renamed over the target only when it is
complete. A crash, a kill or a full disk therefore leaves the previous file (or none),
never half a file. Temporary names carry the writer's process id, so
:func:`remove_leftovers` can delete those of a process that is gone (killed with -9)
without touching a file another live process is still writing.

Writes use ordinary file calls, never memory maps: on a full disk a memory-mapped
store dies with SIGBUS (no message, exit 135), where ``write`` raises ``OSError(ENOSPC)``
that becomes one readable :class:`~ssgan_core.errors.OutputError`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ssgan_core.errors import OutputError

TEMP_SUFFIX = ".ssgan-tmp"
_LEFTOVER = re.compile(
    r"^\..+?(?:"
    rf"\.(?P<pid>\d+)\.[0-9a-f]{{8}}(?:\.tmp|{re.escape(TEMP_SUFFIX)})"  # this writer; audio/png before it
    r"|\.tmp-(?P<pid2>\d+)"  # older checkpoint and cache writers
    r"|\.(?P<pid3>\d+)\.(?:partial|tmp)(?:\.npy)?"  # older encode writer
    r")$"
)


def temp_path(path: Path) -> Path:
    """A hidden temporary name beside ``path`` that names this process."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}")


def describe_os_error(exc: OSError) -> str:
    """Words for an OS error, with a hint for the common ones."""
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a folder"
    if exc.errno == errno.EISDIR:
        return "is a folder"
    return exc.strerror or str(exc)


def ensure_folder(folder: Path, what: str = "output folder") -> Path:
    """Create ``folder`` (and parents); any failure is an :class:`OutputError` naming it."""
    folder = Path(folder)
    if folder.is_dir():
        return folder
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise OutputError(folder, f"cannot create {what}: {blocker} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(folder, f"cannot create {what} ({describe_os_error(exc)})") from None
    return folder


def check_output_file(path: Path, what: str = "output file") -> Path:
    """Fail early, before any work, when ``path`` cannot be written as a file."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(path, f"{what} is an existing folder; give a file name inside it")
    ensure_folder(path.parent, f"folder of the {what}")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputError(path, f"cannot write {what} ({_why_not_writable(path.parent)})")
    return path


def _why_not_writable(folder: Path) -> str:
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"{folder} is on a read-only file system"
    except OSError:
        pass
    return f"permission denied on {folder}"


@contextlib.contextmanager
def atomic_write(path: str | Path, *, durable: bool = False) -> Iterator[IO[bytes]]:
    """Open a binary handle whose contents replace ``path`` only when the block completes.

    ``durable`` also fsyncs the file and its folder, so the rename survives a power cut
    (checkpoints). On any error the temporary file is removed; an ``OSError`` becomes an
    :class:`OutputError` naming ``path`` (e.g. "no space left on device").
    """
    path = Path(path)
    ensure_folder(path.parent)
    tmp = temp_path(path)
    try:
        with open(tmp, "xb") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise OutputError(path, f"cannot write ({describe_os_error(exc)})") from None
    except BaseException:
        _discard(tmp)
        raise
    if durable:
        _fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes | memoryview, *, durable: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, durable=durable) as handle:
        handle.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, *, durable: bool = False) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"), durable=durable)


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file name of an ssgan writer (this one or an older one)."""
    return _LEFTOVER.match(name) is not None


def remove_leftovers(folder: str | Path) -> list[Path]:
    """Delete temporary files in ``folder`` left by writers that no longer run.

    Only names this module (or an older ssgan writer) produces are touched, and only
    when the process id in the name is not alive, so concurrent writers are safe.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _LEFTOVER.match(entry.name)
        if match is None or not entry.is_file():
            continue
        pid = int(next(g for g in match.groups() if g is not None))
        if pid == os.getpid() or _alive(pid):
            continue
        with contextlib.suppress(OSError):
            entry.unlink()
            removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OverflowError:
        return False
    return True


def _discard(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink()


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (a no-op where folders cannot be opened)."""
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
