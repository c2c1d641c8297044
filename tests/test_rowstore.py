"""Replay buffers in side files (tamer.rowstore): each save appends what changed, loads give back the very
state an inline save holds, and a crash at any point leaves a model.npz that loads."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

import tamer.io
from tamer.config import Config
from tamer.errors import ConfigError
from tamer.io import save_agent
from tamer.rowstore import rows_problem
from tamer.session import build, transplant

CFG = Config(env="tamer/GridWorldPixels-v0", agent="rl", rl="dqn", dqn_buffer=600)  # rows of 3.5 kB


def fill(buffer, rows: int, rng: np.random.Generator) -> None:
    for _ in range(rows):
        buffer.add(
            **{
                name: rng.integers(0, 256, (1, *a.shape[1:])).astype(a.dtype)
                for name, a in buffer.data.items()
            }
        )


def same_buffer(a, b) -> bool:
    return (a.size, a.pos) == (b.size, b.pos) and all(
        np.array_equal(a.data[k][: a.size], b.data[k][: b.size]) for k in a.data
    )


def side_files(folder):
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".rows")


def test_big_buffer_goes_to_a_side_file_that_each_save_extends(tmp_path):
    s, rng = build(CFG), np.random.default_rng(0)
    buffer, path = s.agent.rl.buffer, tmp_path / "model.npz"
    fill(buffer, 100, rng)  # 350 kB: stays inside model.npz, as before
    save_agent(s.agent, path)
    assert side_files(tmp_path) == []
    fill(buffer, 300, rng)
    save_agent(s.agent, path)
    (first,) = side_files(tmp_path)
    size = (tmp_path / first).stat().st_size
    assert size == 400 * sum(a[:1].nbytes for a in buffer.data.values())
    fill(buffer, 20, rng)
    save_agent(s.agent, path)
    assert side_files(tmp_path) == [first]  # appended to, not rewritten
    assert (tmp_path / first).stat().st_size - size == 20 * sum(a[:1].nbytes for a in buffer.data.values())
    for rows in (500, 1, 0, 1300, 7):  # wraps the ring, starts afresh after more than its capacity
        fill(buffer, rows, rng)
        save_agent(s.agent, path)
        loaded = build(CFG)
        loaded.agent.load(path)
        assert same_buffer(loaded.agent.rl.buffer, buffer)
        inline = build(CFG)
        transplant(s.agent, inline)  # the one-file save of the same agent
        assert same_buffer(inline.agent.rl.buffer, buffer)
        assert len(side_files(tmp_path)) == 1  # older generations are removed once unreferenced
    more = build(CFG)
    more.agent.load(path)
    fill(more.agent.rl.buffer, 5, rng)  # a loaded buffer goes on from where it was
    fill(buffer, 5, np.random.default_rng(1))
    assert more.agent.rl.buffer.total % 600 == buffer.total % 600


def test_a_save_that_dies_before_its_rename_leaves_the_previous_model(tmp_path, monkeypatch):
    s, rng = build(CFG), np.random.default_rng(0)
    buffer, path = s.agent.rl.buffer, tmp_path / "model.npz"
    fill(buffer, 400, rng)
    save_agent(s.agent, path)
    before = {k: a[: buffer.size].copy() for k, a in buffer.data.items()}
    fill(buffer, 50, rng)

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tamer.io.os, "replace", full_disk)
    with pytest.raises(OSError):
        save_agent(s.agent, path)  # the side file got its chunk, model.npz did not change
    monkeypatch.undo()
    loaded = build(CFG)
    loaded.agent.load(path)
    got = loaded.agent.rl.buffer
    assert got.size == 400 and all(np.array_equal(got.data[k][:400], before[k]) for k in before)
    (side,) = (p for p in tmp_path.iterdir() if p.suffix == ".rows")
    with open(side, "ab") as f:
        f.write(b"torn")  # as if killed half way through an append
    fill(buffer, 10, rng)
    save_agent(s.agent, path)
    loaded = build(CFG)
    loaded.agent.load(path)
    assert same_buffer(loaded.agent.rl.buffer, buffer)


def test_a_missing_or_altered_side_file_is_one_line(tmp_path):
    s = build(CFG)
    fill(s.agent.rl.buffer, 400, np.random.default_rng(0))
    path = tmp_path / "model.npz"
    save_agent(s.agent, path)
    assert rows_problem(path) is None
    (side,) = (p for p in tmp_path.iterdir() if p.suffix == ".rows")
    data = bytearray(side.read_bytes())
    data[100] ^= 1
    side.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="is damaged"):
        build(CFG).agent.load(path)
    assert "is damaged" in (rows_problem(path) or "")
    side.unlink()
    with pytest.raises(ConfigError, match="cannot read side file"):
        build(CFG).agent.load(path)


def test_small_buffers_stay_inside_model_npz_byte_for_byte(tmp_path):
    s = build(Config(env="CartPole-v1", agent="rl", rl="dqn"))
    fill(s.agent.rl.buffer, 200, np.random.default_rng(0))
    save_agent(s.agent, tmp_path / "model.npz")
    s.agent.save(tmp_path / "plain.npz")  # no store: everything inline, as before side files existed
    with zipfile.ZipFile(tmp_path / "model.npz") as a, zipfile.ZipFile(tmp_path / "plain.npz") as b:
        assert a.namelist() == b.namelist() and all(a.read(n) == b.read(n) for n in a.namelist())
    assert side_files(tmp_path) == []
