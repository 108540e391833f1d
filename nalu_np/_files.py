"""Atomic file writes shared by checkpoints and sweep results.

:func:`write_atomic` writes a file so that readers see the old content or the whole new one, never a part:
the content goes to a temporary file next to the target, is flushed to disk and then renamed over the target
(``os.replace``).

* **Permissions.**  The new file is created with mode ``0o666`` less the process's umask, as ``open()`` and
  shell redirections create files, so a team's umask (``0o002``) makes results group-writable and ``0o077``
  keeps them private.  Replacing a file does not keep the old file's mode.
* **Symbolic links** are written through: the link stays, the file it points to gets the new content (the
  temporary file is made in that file's directory, so the rename stays on one file system).
* **Interrupted writers.**  The temporary file is named ``.<name>.<host>.<pid>.<token>.tmp`` (``<name>`` the
  target's file name, ``<host>`` and ``<pid>`` the writer's host name and process id, ``<token>`` random hex).
  A writer that fails removes its own; one that is killed cannot, so every write first removes the temporary
  files of the same target left by writers on this host whose process is gone.  Those of live processes and
  of other hosts (which may share the directory over a network file system) are left alone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import socket
from typing import BinaryIO, Callable

__all__ = ["write_atomic"]

#: this host's name as it appears in temporary file names (characters other than letters, digits, ``.`` and
#: ``-`` replaced by ``_``)
_HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())


def _temp_name(name: str, pid: int, token: str) -> str:
    """The temporary file name of a write of the file called ``name`` by process ``pid`` of this host."""
    return f".{name}.{_HOST}.{pid}.{token}.tmp"


def _temp_pattern(name: str) -> re.Pattern[str]:
    """What :func:`_temp_name` gives for ``name`` on this host, with the writer's process id as group 1."""
    return re.compile(rf"\.{re.escape(name)}\.{re.escape(_HOST)}\.(\d+)\.[0-9a-f]+\.tmp")


def _process_exists(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (assumed on Windows, where ``os.kill(pid, 0)`` would end it)."""
    if os.name == "nt" or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _remove_stale_temps(directory: str, name: str) -> None:
    """Remove the temporary files of writes of ``directory/name`` by processes of this host that are gone."""
    pattern = _temp_pattern(name)
    for entry in os.listdir(directory):
        match = pattern.fullmatch(entry)
        if match and not _process_exists(int(match[1])):
            with contextlib.suppress(FileNotFoundError):  # another writer removed it first
                os.unlink(os.path.join(directory, entry))


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Write a file through ``write`` so that readers see its old content or the whole new one.

    Parameters
    ----------
    path : str or path-like
        The file to write.  A symbolic link is written through: the link stays and the file it points to
        (created if missing) gets the content.
    write : callable
        Called once with the temporary file, opened for writing in binary mode; writes the whole content.

    Raises
    ------
    FileNotFoundError
        The file's directory does not exist (the error names the directory).
    Exception
        Whatever ``write`` or the file system raise.  The target is then unchanged and the temporary file
        removed.

    Notes
    -----
    The file gets mode ``0o666 & ~umask``.  Temporary files of the same target left by killed writers of
    this host are removed first (see the module documentation).
    """
    target = os.path.realpath(path)
    directory, name = os.path.split(target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, f"cannot write {os.fspath(path)}: no such directory", directory)
    _remove_stale_temps(directory, name)
    temp = os.path.join(directory, _temp_name(name, os.getpid(), secrets.token_hex(4)))
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
