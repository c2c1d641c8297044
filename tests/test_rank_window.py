"""``tamer rank``: a person ranks K attempts in a window, every answer is logged with its attempts, and replay
retrains the reward model. Driven headless like tests/test_live.py: real pygame key events posted into the
loop, on a virtual clock advanced one frame (DT seconds) at a time.

Convention: attempts are labelled 1..K on screen and pressed best first; the log holds 0-based attempt
indices, so pressing 2, 1, 3 logs "1>0>2"."""

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import sys  # noqa: E402

import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402

from tamer.cli import main  # noqa: E402
from tamer.config import Config  # noqa: E402
from tamer.errors import ConfigError  # noqa: E402
from tamer.live import RankConfig, RankInput, rank, replay_rankings  # noqa: E402
from tamer.live.rank_session import Attempts, load_policy  # noqa: E402
from tamer.live.replay import max_difference  # noqa: E402
from tamer.rankings import read_log, read_rankings  # noqa: E402

DT = 0.01  # virtual seconds per frame
NUM = {i: getattr(pygame, f"K_{i}") for i in range(1, 10)}
EQ, BACK, ENTER, SPACE, LEFT, RIGHT, P = "EQUALS", "BACKSPACE", "RETURN", "SPACE", "LEFT", "RIGHT", "p"


class FrameClock:
    def __init__(self, start=0.0):
        self.t = start

    def now(self):
        return self.t


def keys(*codes):
    """Each key tapped (down, up), in order: numbers are the on-screen labels, strings pygame's K_ names."""
    out = []
    for c in codes:
        code = NUM[c] if isinstance(c, int) else getattr(pygame, "K_" + c)
        out += [pygame.event.Event(pygame.KEYDOWN, key=code), pygame.event.Event(pygame.KEYUP, key=code)]
    return out


def settings(**kw):
    base = dict(k=3, length=6, queries=10, fps=0, view_width=240, view_height=100)
    return RankConfig(**{**base, **kw})


def session(path, script=None, rank_cfg=None, cfg=None, frames=200, hook=None, resume=False):
    """rank() for at most ``frames`` frames, posting ``script[frame]`` at the start of those frames; frame i
    happens at start + i * DT (a resumed session's clock starts after what was logged)."""
    start = max([r.time for r in read_log(path / "rankings.csv")], default=0.0) + 1.0 if resume else 0.0
    clock, script = FrameClock(start), script or {}

    def on_frame(loop, frame):
        clock.t = start + frame * DT
        for event in script.get(frame, []):
            pygame.event.post(event)
        if hook is not None:
            hook(loop, frame)

    if cfg is None and not resume:
        cfg = Config(env="MountainCar-v0", seed=1)
    if rank_cfg is None and not resume:
        rank_cfg = settings()
    return rank(path, cfg, rank_cfg, resume=resume, max_frames=frames, on_frame=on_frame, clock=clock)


def logged(path):
    return [(r.ranking.query, r.ranking.text(), r.ranking.skipped) for r in read_rankings(path)]


def test_typed_keys_to_rankings():
    r = RankInput(3)
    assert r.number(1) is None and r.number(0) is None and r.typed() == "2 > 1"
    assert r.badge(1) == "1st" and r.badge(0) == "2nd" and r.badge(2) == ""
    assert r.number(0) is None and "ranked already" in r.note
    assert r.number(5) is None and "1..3" in r.note
    assert r.number(2).order == ((1,), (0,), (2,))
    t = RankInput(4)
    assert t.tie() is None and "between two numbers" in t.note  # nothing to tie yet
    t.number(0), t.tie()
    assert t.typed() == "1 =" and t.enter() is None and "needs a number" in t.note
    t.number(3)
    assert t.badge(3) == "1st=" and t.enter().order == ((0, 3), (1, 2))  # the rest tie last
    u = RankInput(3)
    u.undo()
    assert u.note == "nothing to undo" and u.enter() is None and "Space skips" in u.note
    assert u.better(0) is None and "pairs only" in u.note
    pair = RankInput(2)
    assert pair.better(1).order == ((1,), (0,)) and pair.tie().order == ((0, 1),)
    assert pair.skip().skipped


def test_keys_are_logged_as_rankings_with_their_attempts_and_seconds(tmp_path):
    script = {
        10: keys(2, 1, 3),  # the third number submits: "1>0>2"
        20: keys(1, EQ),
        24: keys(3, 2),  # 1 = 3 > 2
        30: keys(3, 1, BACK, 2, 1),  # undo the 1: 3 > 2 > 1
        40: keys(2, ENTER),  # the rest tie last: 2 > 1 = 3
        50: keys(2, 2, SPACE),  # a skip (the repeated 2 is refused)
    }
    seen = {}

    def hook(loop, frame):
        if frame == 5:
            seen["start"] = (
                loop.title,
                loop.shown.query.id,
                [len(c) for c in loop.shown.clips],
                loop.answered,
            )
        if frame == 22:
            seen["typed"] = (loop.shown.input.typed(), loop.shown.input.badge(0), loop.shown.input.badge(2))
        if frame == 12:
            seen["note"] = loop.note

    summary = session(tmp_path, script, settings(queries=5), hook=hook)
    assert summary.frames == 51 and summary.answered == summary.logged == 5 and summary.skipped == 1
    assert logged(tmp_path) == [
        (0, "1>0>2", False),
        (1, "0=2>1", False),
        (2, "2>1>0", False),
        (3, "1>0=2", False),
        (4, "", True),
    ]
    assert seen["start"] == ("ranking · MountainCar-v0", 0, [7, 7, 7], 0)  # 6 steps: 7 frames each
    assert seen["typed"] == ("1 =", "1st=", "")
    assert seen["note"] == "saved: query 1 ranked 2 > 1 > 3"
    rankings = read_log(tmp_path / "rankings.csv")
    # each query's seconds: from its first frame (the previous answer's frame) to its answering key
    assert [r.seconds for r in rankings] == pytest.approx([0.1, 0.14, 0.06, 0.1, 0.1])
    assert [r.time for r in rankings] == pytest.approx([0.1, 0.24, 0.3, 0.4, 0.5])
    for d in read_rankings(tmp_path):  # K attempts of one shared start
        q = d.query
        assert q.lengths == [6, 6, 6] and q.seed >= 0
        assert all(np.array_equal(a.obs[0], q.attempts[0].obs[0]) for a in q.attempts)
    for name in ("config.json", "live.json", "rankings.csv", "queries/q000004.npz"):
        assert (tmp_path / name).is_file()
    assert RankConfig.load(tmp_path / "live.json").queries == 5
    assert Config.load(tmp_path / "config.json").teacher == "none"


def test_pairs_mode_left_right_tie_skip_and_pause(tmp_path):
    seen = {}

    def hook(loop, frame):
        seen[frame] = (int(loop.position), loop.paused)

    script = {10: keys(LEFT), 20: keys(RIGHT), 30: keys(EQ), 40: keys(SPACE), 50: keys(2, 1)}
    script.update({60: keys(P), 70: keys(P), 90: keys(1, ENTER)})
    session(tmp_path, script, settings(k=2, queries=6), cfg=Config(step_rate=100.0), hook=hook)
    assert [(t, s) for _, t, s in logged(tmp_path)] == [
        ("0>1", False),
        ("1>0", False),
        ("0=1", False),
        ("", True),
        ("1>0", False),
        ("0>1", False),
    ]
    assert seen[65][1] and seen[61][0] == seen[69][0]  # paused: the playback stands still
    assert seen[80][0] > seen[70][0]


def test_a_crash_loses_no_logged_ranking_and_resume_continues_the_ids(tmp_path, capsys):
    seen = {}

    def hook(loop, frame):
        if frame == 25:
            seen["shown"] = loop.shown.query  # the query on screen when it crashed: id 2
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        session(tmp_path, {10: keys(1, 2, 3), 20: keys(3, 2, 1)}, hook=hook, frames=10_000)
    assert "the 2 answers given are saved" in capsys.readouterr().err
    assert logged(tmp_path) == [(0, "0>1>2", False), (1, "2>1>0", False)]
    times = [r.time for r in read_log(tmp_path / "rankings.csv")]
    # resumed: ids go on, the query it stopped at comes back as it was, the clock goes on
    with pytest.raises(ConfigError, match="drop --k"):
        session(tmp_path, resume=True, rank_cfg=settings(k=4))
    summary = session(tmp_path, {5: keys(2, 3, 1)}, resume=True, rank_cfg=settings(queries=3))
    assert summary.answered == 1 and summary.logged == 3 and summary.frames == 6  # 3 in all: done
    data = read_rankings(tmp_path)
    assert [(d.ranking.query, d.ranking.text()) for d in data] == [(0, "0>1>2"), (1, "2>1>0"), (2, "1>2>0")]
    again, before = data[2].query, seen["shown"]
    assert again.id == before.id == 2 and again.seed == before.seed
    assert all(
        np.array_equal(a.actions, b.actions) for a, b in zip(again.attempts, before.attempts, strict=True)
    )
    assert data[2].ranking.time > max(times)


def test_replay_retrains_the_identical_reward_model_twice(tmp_path, capsys):
    orders = [(1, 2, 3), (3, 1, 2), (2, EQ, 3, 1), (1, 3, 2), (2, 1, 3), (3, 2, 1)]
    script = {10 * (i + 1): keys(*o) for i, o in enumerate(orders)}
    session(tmp_path, script, settings(queries=6, length=10))
    first, second = replay_rankings(tmp_path), replay_rankings(tmp_path)
    assert first.rankings == 6 and first.kind == "linear" and first.report["pairs"] > 0
    assert max_difference(first.model.state_dict(), second.model.state_dict()) == 0.0
    assert first.model.members[0].table.weight.abs().sum().item() > 0
    assert main(["replay", str(tmp_path)]) == 0
    assert "ranking session" in capsys.readouterr().out
    out = tmp_path / "rm.npz"
    assert main(["rank", "--replay", str(tmp_path), "--out", str(out)]) == 0
    assert "reward model written" in capsys.readouterr().out and out.is_file()


def test_attempts_of_a_saved_run_differ_by_epsilon(tmp_path):
    from tamer.train import train

    run = tmp_path / "run"
    train(Config(env="tamer/GridWorld-v0", episodes=2, seed=0), run, progress=False)
    cfg, policy = load_policy(str(run))
    with pytest.raises(ConfigError, match="not --env"):
        load_policy(str(run), "MountainCar-v0")
    from tamer.envs import make_env

    env = make_env(cfg.env, None, 0)
    attempts = Attempts(env, settings(k=3, length=8, policy=str(run), epsilon=0.5), 0, policy)
    queries = [attempts(i) for i in range(3)]
    assert [q.id for q in queries] == [0, 1, 2]
    assert all(len({a.actions.tobytes() for a in q.attempts}) > 1 for q in queries)
    session(tmp_path / "s", {5: keys(SPACE)}, settings(queries=1, policy=str(run)), cfg=cfg)
    assert logged(tmp_path / "s") == [(0, "", True)]


def test_without_a_display_rank_says_so_in_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert main(["rank", "--env", "CartPole-v1", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no display" in err
    assert not (tmp_path / "s").exists()
    assert main(["rank", "--resume", str(tmp_path / "nope")]) == 2
    assert main(["replay", str(tmp_path / "nope")]) == 2
