"""The user's files, within bounds: inputs read only when they are regular files and only up to a
stated size, and outputs checked before anything runs.

A path on the command line or in a config may name anything: a FIFO that never ends, a device
(``/dev/zero``), a directory, a file the user may not read, a file far larger than it should be,
or the very file the run reads from. Each of these ends in one ``InputError`` line that says which,
instead of a hang, a traceback or a destroyed input.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from avagent.core.errors import InputError

_SPECIAL_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def special_kind(mode: int) -> str | None:
    """What a non-regular file is ("a directory", "a FIFO (named pipe)", ...); None for a regular
    file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _SPECIAL_KINDS if test(mode)), "not a regular file")


def create_for_writing(path: Path) -> BinaryIO:
    """``path`` created (or emptied) for writing, refused with ``InputError`` if it is a directory or
    a special file; non-blocking while opening, so a FIFO with no reader fails instead of hanging."""
    try:
        kind = special_kind(os.stat(path).st_mode) if os.path.exists(path) else None
        if kind is not None:
            raise InputError(f"{path}: is {kind}, not a regular file")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {(exc.strerror or type(exc).__name__).lower()}") from None
    try:
        kind = special_kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise InputError(f"{path}: is {kind}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def size_text(n: int) -> str:
    """A byte count for people: ``1 MiB``, ``64 KiB``, ``300 bytes``."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


def _os_reason(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


def _refuse_special(p: Path, mode: int) -> None:
    kind = special_kind(mode)
    if kind is not None:
        raise InputError(f"{p}: is {kind}, not a regular file")


def open_regular(path: str | Path, what: str = "file") -> BinaryIO:
    """``path`` opened for reading, if it is a regular file the user may read; ``InputError`` saying
    why not otherwise (``what`` names the file in the message: "config file", "WAV file")."""
    p = Path(path)
    try:
        # Looked at before opening: opening some devices has effects of its own.
        _refuse_special(p, os.stat(p).st_mode)
        # Non-blocking: a FIFO swapped in since the look above must not hang the open.
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputError(f"{p}: no such {what}") from None
    except PermissionError:
        raise InputError(f"{p}: permission denied (cannot read this {what})") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot open: {_os_reason(exc)}") from None
    except ValueError:  # a NUL inside the path
        raise InputError(f"{str(p)!r}: not a valid path") from None
    try:
        _refuse_special(p, os.fstat(fd).st_mode)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_readable(path: str | Path, what: str = "file") -> Path:
    """``path`` if it is a regular file the user may read (see ``open_regular``)."""
    with open_regular(path, what):
        return Path(path)


def read_bounded(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The whole of the regular file ``path``, refused if it holds more than ``limit`` bytes; at
    most ``limit + 1`` bytes are ever read, whatever the file claims to be."""
    p = Path(path)
    with open_regular(p, what) as f:
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise InputError(f"{p}: cannot read: {_os_reason(exc)}") from None
    if len(data) > limit:
        raise InputError(f"{p}: the {what} is larger than the limit of {size_text(limit)}")
    return data


def check_output(
    path: str | Path, inputs: Iterable[str | Path | None] = (), what: str = "output file"
) -> Path:
    """``path`` if a file can be written there without destroying anything the run reads: its
    folder exists, it may be written, it is not a directory or special file, and it is not one of
    ``inputs`` by any name (symbolic or hard links, relative paths). Nothing is changed: a file
    that does not exist yet is created to try and removed again."""
    p = Path(path)
    if "\0" in str(p):
        raise InputError(f"{str(p)!r}: not a valid path")
    if os.path.lexists(p) and not os.path.exists(p):
        raise InputError(f"{p}: is a broken symbolic link; give the {what} a real path")
    if os.path.exists(p):
        _check_existing_output(p, inputs, what)
        return p
    folder = p.parent
    if not folder.exists():
        raise InputError(f"{p}: no such folder {folder} for the {what}")
    if not folder.is_dir():
        raise InputError(f"{p}: {folder} is not a folder")
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except PermissionError:
        raise InputError(f"{p}: permission denied (cannot write the {what} in {folder})") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot write the {what}: {_os_reason(exc)}") from None
    os.close(fd)
    p.unlink(missing_ok=True)
    return p


def _check_existing_output(p: Path, inputs: Iterable[str | Path | None], what: str) -> None:
    _refuse_special(p, os.stat(p).st_mode)
    for source in inputs:
        if source is None or not os.path.exists(source):
            continue
        if os.path.samefile(p, source):
            raise InputError(f"{p}: is the same file as the input {source}; it would be overwritten")
    try:
        # Opened to write without truncating or creating: tells whether writing is allowed.
        fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except PermissionError:
        raise InputError(f"{p}: permission denied (cannot write the {what})") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot write the {what}: {_os_reason(exc)}") from None
    os.close(fd)


def check_output_folder(
    folder: str | Path, names: Iterable[str], inputs: Iterable[str | Path | None] = ()
) -> Path:
    """``folder`` (created if missing, with its parents) if every file ``names`` can be written in
    it (see ``check_output``)."""
    d = Path(folder)
    if os.path.exists(d) and not d.is_dir():
        raise InputError(f"{d}: is not a folder")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise InputError(f"{d}: permission denied (cannot make this folder)") from None
    except OSError as exc:
        raise InputError(f"{d}: cannot make this folder: {_os_reason(exc)}") from None
    kept = list(inputs)
    for name in names:
        check_output(d / name, kept)
    return d
