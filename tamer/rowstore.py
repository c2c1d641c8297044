"""Replay buffers saved beside ``model.npz`` in append-only side files, so a checkpoint costs what changed.

A DQN's replay buffer (50,000 transitions; with image observations hundreds of MB) dwarfs the networks, and
a checkpoint after every episode that rewrote it whole would cost more the longer a run goes. Instead, a
buffer whose rows exceed ``INLINE_BYTES`` is kept in a side file next to the model, ``model.<part>.<key>.
<token>.rows``, to which each save appends only the rows added since the save before, as one chunk; the
model's npz holds the buffer's counters and the list of chunks (rows, byte range and SHA-256 of each) in its
``agent.rows`` member. Smaller buffers stay inside the npz as before (one self-contained file).

**Crash safety.** A save appends (and fsyncs) the new chunk first, then replaces ``model.npz`` atomically
(``tamer.io.write_atomic``); the npz names only chunks written before it, so whatever moment a process dies,
the ``model.npz`` on disk and the chunks it names agree: bytes appended after them are never read. A file
is not rewritten in place: when most of its rows have left the buffer (it holds over twice the capacity),
or in a new process, the next save starts a new file with the rows still held; files no longer named by the
latest ``model.npz`` are deleted after it is in place. A missing, short or altered side file fails the load
with one line (its SHA-256 differs), never an agent silently half loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from tamer.errors import ConfigError

INLINE_BYTES = 1 << 20  # a buffer whose held rows take more goes to a side file
SUFFIX = ".rows"


class _SideFile:
    """One buffer's side file as this process wrote it: rows ``first``..``end`` - 1 in ``chunks``."""

    def __init__(self, folder: Path, stem: str, key: str, columns: list, buffer: Any, first: int):
        self.name = f"{stem}.{key}.{uuid.uuid4().hex[:12]}{SUFFIX}"
        self.path = folder / self.name
        self.columns, self.buffer, self.loads = columns, weakref.ref(buffer), buffer.loads
        self.first = self.end = first
        self.length = 0  # bytes written and synced
        self.chunks: list[list] = []  # [first row, end row, offset, bytes, sha256]

    def append(self, rows: dict[str, np.ndarray], first: int, end: int) -> None:
        digest, offset = hashlib.sha256(), self.length
        with open(self.path, "ab" if self.length else "wb") as f:
            f.truncate(self.length)  # a piece of an append that failed half way is cut first
            for name, _, _ in self.columns:
                data = np.ascontiguousarray(rows[name]).reshape(-1).view(np.uint8).data  # no copy
                f.write(data)
                digest.update(data)
            f.flush()
            os.fsync(f.fileno())
            self.length = f.tell()
        self.chunks.append([first, end, offset, self.length - offset, digest.hexdigest()])
        self.end = end


class RowStore:
    """The side files of one model path, kept by whoever saves that model repeatedly (``tamer.io.save_agent``
    keeps one per path), so that each save appends only the rows added since the last."""

    def __init__(self, model: Path, inline_bytes: int = INLINE_BYTES):
        self.model, self.inline_bytes = Path(model), inline_bytes
        self.files: dict[str, _SideFile] = {}
        self.named: set[str] = set()  # the side files the last save's npz names

    def begin(self) -> None:
        self.named = set()

    def save(self, key: str, buffer) -> dict | None:
        """Append the rows of ``buffer`` (a ``tamer.deep.ReplayBuffer``) that its side file lacks; returns
        the reference the npz stores, or None when the buffer is small enough to stay inside the npz."""
        columns = [[name, a.dtype.str, list(a.shape[1:])] for name, a in buffer.data.items()]
        row_bytes = sum(a[:1].nbytes for a in buffer.data.values())
        total, size, capacity = buffer.total, buffer.size, buffer.capacity
        first = total - size  # the oldest row held
        f = self.files.get(key)
        if f is None and size * row_bytes <= self.inline_bytes:
            return None
        if (
            f is None
            or f.buffer() is not buffer
            or f.loads != getattr(buffer, "loads", 0)  # the buffer's rows were replaced by a load since
            or f.columns != columns
            or not first <= f.end <= total  # rows were added (or lost) that the file cannot follow
            or first - f.first > capacity  # more than half the file has left the buffer: start afresh
        ):
            f = self.files[key] = _SideFile(self.model.parent, self.model.stem, key, columns, buffer, first)
        if f.end < total:
            f.append(buffer.rows(f.end, total), f.end, total)
        self.named.add(f.name)
        return {
            "file": f.name,
            "size": size,
            "pos": buffer.pos,
            "total": total,
            "capacity": capacity,
            "columns": columns,
            "chunks": [c for c in f.chunks if c[1] > first],
        }

    def clean(self) -> None:
        """Delete this model's side files that the npz just saved does not name (older generations, or
        those of a previous process); call once that npz is in place."""
        for path in self.model.parent.glob(f"{self.model.stem}.*{SUFFIX}"):
            if path.name not in self.named:
                with contextlib.suppress(OSError):
                    path.unlink()
        self.files = {k: f for k, f in self.files.items() if f.name in self.named}


_STORES: OrderedDict[Path, RowStore] = OrderedDict()


def store_for(model: Path) -> RowStore:
    """The process's store of ``model``'s side files (one per path, the most recent 64 kept)."""
    key = Path(model).absolute()
    store = _STORES.pop(key, None) or RowStore(key)
    _STORES[key] = store
    while len(_STORES) > 64:
        _STORES.popitem(last=False)
    return store


def encode_refs(refs: dict[str, dict]) -> np.ndarray:
    return np.frombuffer(json.dumps(refs).encode("utf-8"), dtype=np.uint8)


def decode_refs(data: np.ndarray) -> dict[str, dict]:
    return json.loads(bytes(np.asarray(data, dtype=np.uint8)).decode("utf-8"))


def load_rows(model: Path, ref: dict) -> dict:
    """The buffer state (``ReplayBuffer.state_dict``'s layout, numpy columns) a reference describes, read
    from its side file next to ``model``; a missing, short or altered file is a ConfigError."""
    path = Path(model).parent / ref["file"]
    size, total, capacity = int(ref["size"]), int(ref["total"]), int(ref["capacity"])
    first = total - size
    columns = [(name, np.dtype(dtype), tuple(shape)) for name, dtype, shape in ref["columns"]]
    state: dict[str, Any] = {"size": size, "pos": int(ref["pos"])}
    out = {name: np.empty((size, *shape), dtype=dtype) for name, dtype, shape in columns}
    covered = 0
    try:
        with open(path, "rb") as f:
            for start, end, offset, nbytes, sha in ref["chunks"]:
                f.seek(offset)
                data = f.read(nbytes)
                if len(data) != nbytes or hashlib.sha256(data).hexdigest() != sha:
                    raise ConfigError(
                        f"side file {path} is damaged (rows {start}..{end} differ from the saved)"
                    )
                pos, n = 0, end - start
                keep = max(start, first)  # rows that left the buffer since the chunk was written are skipped
                slots = np.arange(keep, end) % capacity
                for name, dtype, shape in columns:
                    width = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
                    rows = np.frombuffer(data, dtype=dtype, count=n * width // dtype.itemsize, offset=pos)
                    out[name][slots] = rows.reshape(n, *shape)[keep - start :]
                    pos += n * width
                covered += end - keep
    except OSError as e:
        raise ConfigError(f"cannot read side file {path} of {model}: {e.strerror or e}") from None
    if covered != size:
        raise ConfigError(f"side file {path} holds {covered} of the {size} rows {model} says it saved")
    state.update(out)
    return state


def rows_problem(model: Path) -> str | None:
    """Why ``model``'s side files cannot be read back (missing, short, altered), or None (also when it
    has none); reads them whole, to check every chunk's SHA-256."""
    try:
        with np.load(model) as data:
            if "agent.rows" not in data.files:
                return None
            refs = decode_refs(data["agent.rows"])
        for ref in refs.values():
            load_rows(model, ref)
    except ConfigError as e:
        return str(e)
    except Exception as e:  # an unreadable npz is the caller's to report
        return " ".join(f"{type(e).__name__}: {e}".split())
    return None
