"""Files that survive a crash: whole files replaced atomically, logs appended line by line with a
recoverable tail, and folders locked against a second writer.

Every file the framework rewrites goes through ``write_atomic`` (a temporary file in the same folder, flushed
to disk, then renamed over the old one: a reader sees the old file or the new one, never half of either).
Logs are ``AppendLog``s: one flushed line per record, so a kill loses at most the line being written, and a
torn last line is cut off before anything is appended after it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tamer.errors import ConfigError


def refuse_to_replace(path: Path, flag: str = "--out") -> None:
    """Before ``--overwrite`` deletes ``path``: one ConfigError line if it is the current folder, one of its
    parents, or the home folder, which no run's output could be (``--out .`` would empty the folder the user
    works in)."""
    here, target = Path.cwd().resolve(), Path(path).resolve()
    if target == here or target in here.parents or target == Path.home().resolve():
        raise ConfigError(
            f"{flag} {path} is {target}, which --overwrite would empty; choose a folder of its own"
        )


def write_atomic(path: Path, write: Callable[[Path], None] | bytes | str) -> None:
    """Replace ``path`` in one rename. ``write`` is the content, or a function writing the temporary path
    given (which keeps ``path``'s suffix: numpy's savez appends ``.npz`` to names without it)."""
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    try:
        if callable(write):
            write(tmp)
        else:
            tmp.write_bytes(write.encode("utf-8") if isinstance(write, str) else write)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def save_agent(agent, path: Path) -> None:
    """The agent's whole state (``Agent.save``) as one atomically replaced file; a replay buffer too big to
    copy at every save is kept in a side file beside it instead, which each save to the same path extends by
    the rows added since (``tamer.rowstore``: the side file is synced before the npz naming it replaces the
    old one, and side files no npz names any more are removed after)."""
    from tamer.agents import Agent
    from tamer.rowstore import store_for

    if not isinstance(agent, Agent):
        write_atomic(path, agent.save)
        return
    store = store_for(path)
    write_atomic(path, lambda tmp: agent.save(tmp, store=store))
    store.clean()


class AppendLog:
    """An append-only text file, one flushed line per record, so a crash loses nothing already written.
    Reopened to append, a torn last line (the process died while writing it) is cut off first, so the next
    record starts on a line of its own."""

    def __init__(self, path: Path, header: str, append: bool = False):
        if append and path.exists():
            cut_torn_tail(path)  # first: a torn header leaves an empty file, which gets its header again
        fresh = not (append and path.exists() and path.stat().st_size > 0)
        self.file = open(path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
        if fresh:
            self.write_line(header)

    def write_line(self, line: str) -> None:
        self.file.write(line + "\n")
        self.file.flush()

    def close(self) -> None:
        if not self.file.closed:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()


def complete_lines(text: str) -> list[str]:
    """A log's lines up to its last newline: a torn last line (its writer died while writing it) is left
    out, as ``AppendLog`` cuts it before appending. Readers use this, so a torn tail never blocks a read."""
    return text[: text.rfind("\n") + 1].split("\n")[:-1]


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cut_torn_tail(path: Path) -> int:
    """Truncate ``path`` after its last newline; returns the bytes removed (0 for a clean file)."""
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return 0
        f.seek(0)
        data = f.read()
        keep = data.rfind(b"\n") + 1
        f.truncate(keep)
        return size - keep


@contextlib.contextmanager
def locked(folder: Path, name: str, busy: str) -> Iterator[None]:
    """Hold an exclusive lock on ``folder/name`` for the block, or refuse with ``busy`` (a ConfigError) if
    another process holds it. The OS drops the lock when its holder dies, however it dies, so a killed
    process never blocks the next one."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the rest still holds
        yield
        return
    with open(folder / name, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(busy) from None
        yield
