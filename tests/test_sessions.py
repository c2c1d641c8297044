"""Session folders under abuse: a second process on one session, torn log lines, a bad model.npz, a crash in
the middle of a step, and the pace the agent really keeps.

Sessions run as in tests/test_live.py: the real frame loop with real pygame key events posted into it, on a
virtual clock advanced one frame at a time (``FrameClock``), the learner on its thread.
"""

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import json  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent import futures  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402

from tamer import io as tamer_io  # noqa: E402
from tamer.cli import main  # noqa: E402
from tamer.config import Config  # noqa: E402
from tamer.errors import ConfigError  # noqa: E402
from tamer.feedback import read_feedback_log  # noqa: E402
from tamer.io import file_sha256  # noqa: E402
from tamer.live import (  # noqa: E402
    LiveConfig,
    SessionFolder,
    play,
    read_feedback_steps,
    read_steps,
    replay_session,
    resume_point,
)
from tamer.live.loop import Pace  # noqa: E402
from tamer.live.session import LOCK, claim_folder  # noqa: E402
from tamer.session import build  # noqa: E402

DT = 0.01  # virtual seconds per frame
ROOT = Path(__file__).resolve().parents[1]


class FrameClock:
    def __init__(self, start=0.0):
        self.t = start

    def now(self):
        return self.t

    def tick(self):
        pass


def key(k, up=False):
    return pygame.event.Event(pygame.KEYUP if up else pygame.KEYDOWN, key=k)


def tap(k):
    return [key(k), key(k, up=True)]


def space():
    s = build(Config())
    s.env.close()
    return s.env.observation_space


def session(path, script=None, cfg=None, frames=300, hook=None, resume=False, dt=DT, live=None):
    """play() for ``frames`` frames of ``dt`` virtual seconds, posting ``script[frame]`` at their start; a
    resumed session's clock starts where play's own would (after everything logged)."""
    start = resume_point(SessionFolder(path), space())[0].clock if resume else 0.0
    clock, script = FrameClock(start), script or {}

    def on_frame(loop, frame):
        futures.wait([f for f in (loop.think, *loop.chores) if f is not None])  # the learner keeps up
        clock.t = start + frame * dt
        for event in script.get(frame, []):
            pygame.event.post(event)
        if hook is not None:
            hook(loop, frame)

    if cfg is None and not resume:
        cfg = Config(step_rate=10.0)
    live = live or LiveConfig(fps=0)
    return play(path, cfg, live, resume=resume, max_frames=frames, on_frame=on_frame, clock=clock)


def taught(path, frames=10_000):
    """A first run with three keypresses, ended with Esc."""
    script = {30: tap(pygame.K_UP), 60: tap(pygame.K_DOWN), 90: tap(pygame.K_UP), 120: [key(pygame.K_ESCAPE)]}
    return session(path, script, frames=frames)


def resumed(path):
    """A resumed run with two keypresses, ended with Esc."""
    script = {20: tap(pygame.K_DOWN), 45: tap(pygame.K_UP), 70: [key(pygame.K_ESCAPE)]}
    return session(path, script, frames=10_000, resume=True)


def exact(path):
    report = replay_session(path)
    assert report.diffs is not None and report.model_note is None, report.model_note
    assert all(d == 0.0 for d in report.diffs.values()), report.diffs
    assert report.same_actions == report.steps
    return report


def cli(*args, timeout=120):
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tamer.cli", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def h_at(model, obs, cfg=None):
    s = build(cfg or Config(step_rate=10.0, teacher="none"))
    s.agent.load(model)
    s.env.close()
    return s.agent.h_values(s.agent.encode(obs))


# --- one process per session --------------------------------------------------------------------------------


def test_a_second_process_on_a_held_session_is_refused_in_one_line(tmp_path, capsys):
    taught(tmp_path)
    before = {name: (tmp_path / name).read_bytes() for name in ("steps.csv", "feedback.csv", "model.npz")}
    with claim_folder(tmp_path, resume=True):  # this process plays it
        with pytest.raises(ConfigError, match="in use"):
            session(tmp_path, frames=50, resume=True)
        result = cli("play", "--resume", str(tmp_path))  # another process: refused before its window opens
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "is in use" in result.stderr
        assert main(["replay", str(tmp_path), "--out", str(tmp_path / "model.npz")]) == 2
        assert "is in use" in capsys.readouterr().err
        assert main(["replay", str(tmp_path)]) == 0  # reading it is fine
        with pytest.raises(ConfigError, match="in use"):  # nor is --overwrite
            play(tmp_path, Config(step_rate=10.0), LiveConfig(fps=0), overwrite=True, max_frames=5)
    assert {name: (tmp_path / name).read_bytes() for name in before} == before  # nothing was written
    resumed(tmp_path)  # free again
    exact(tmp_path)


def test_the_lock_dies_with_its_holder(tmp_path):
    taught(tmp_path)
    code = (
        "import sys, time; from tamer.live.session import claim_folder\n"
        "with claim_folder(sys.argv[1], resume=True):\n"
        "    print('held', flush=True); time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match="in use"):
            session(tmp_path, frames=5, resume=True)
        os.kill(holder.pid, signal.SIGKILL)  # no cleanup of any kind
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.stdout.close()
    assert (tmp_path / LOCK).exists()  # the file stays; the lock on it went with its process
    summary = resumed(tmp_path)
    assert summary.run == 1
    exact(tmp_path)


def test_a_log_two_processes_wrote_at_once_is_refused_not_replayed(tmp_path):
    taught(tmp_path)
    lines = (tmp_path / "steps.csv").read_text().splitlines(keepends=True)
    interleaved = lines[:10] + lines[5:7] + lines[10:]  # a twin run writing the same step numbers
    (tmp_path / "steps.csv").write_text("".join(interleaved))
    with pytest.raises(ConfigError, match="two processes wrote this session"):
        replay_session(tmp_path)


def test_new_sessions_keep_prepare_outs_rules(tmp_path):
    taught(tmp_path / "s")
    with pytest.raises(ConfigError, match="already holds files"):
        session(tmp_path / "s", frames=5)
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match="is a file"):
        session(tmp_path / "f", frames=5)
    summary = play(tmp_path / "s", Config(step_rate=10.0), LiveConfig(fps=0), overwrite=True, max_frames=3)
    assert summary.run == 0 and LOCK in {p.name for p in (tmp_path / "s").iterdir()}
    assert len(read_steps(tmp_path / "s" / "steps.csv", space())) <= 1  # the old session is gone
    assert read_feedback_steps(tmp_path / "s" / "feedback.csv") == []


def test_a_ranking_session_is_held_too(tmp_path):
    from tamer.live.rank import rank
    from tamer.live.rank_session import RankConfig

    cfg, rank_cfg = Config(env="MountainCar-v0", seed=1), RankConfig(k=2, length=4, queries=2, fps=0)
    rank(tmp_path, cfg, rank_cfg, max_frames=3)
    with claim_folder(tmp_path, resume=True), pytest.raises(ConfigError, match="in use"):
        rank(tmp_path, resume=True, max_frames=3)
    rank(tmp_path, resume=True, max_frames=3)


# --- torn last lines ----------------------------------------------------------------------------------------


def tear(path):
    """A kill while the next line was being written: part of a line, no newline at the end."""
    last = path.read_text().splitlines()[-1]
    with open(path, "a") as f:
        f.write(last[: len(last) // 2])


def cut(path):
    """The last line cut in half: its newline gone too."""
    data = path.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[: start + (len(data) - 1 - start) // 2])


@pytest.mark.parametrize(
    "log, damage",
    [("steps.csv", tear), ("feedback.csv", tear), ("metrics.csv", tear), ("steps.csv", cut)],
    ids=["steps", "feedback", "metrics", "steps-last-line-cut"],
)
def test_a_torn_last_line_is_read_past_and_cut_before_resuming(tmp_path, capsys, log, damage):
    taught(tmp_path)
    damage(tmp_path / log)
    assert not (tmp_path / log).read_bytes().endswith(b"\n")
    report = replay_session(tmp_path)  # reading tolerates it
    assert report.steps > 0 and (report.exact or damage is cut)
    resumed(tmp_path)  # appending cuts it first
    if damage is cut:  # model.npz holds a step the log lost: the agent is rebuilt from the log
        assert "rebuilding the agent by replaying the log" in capsys.readouterr().err
    for name in ("steps.csv", "feedback.csv", "metrics.csv"):
        text = (tmp_path / name).read_text()
        assert text.endswith("\n")
        widths = {len(line.split(",")) for line in text.splitlines()}
        assert len(widths) == 1, (name, widths)  # no line glued to a torn one
    read_feedback_log(tmp_path / "feedback.csv")  # the strict reader finds nothing to refuse
    report = exact(tmp_path)
    assert report.runs == 2 and report.orphans == 0


def test_a_log_torn_in_its_header_counts_as_empty(tmp_path):
    taught(tmp_path)
    (tmp_path / "feedback.csv").write_text("time,ste")
    assert read_feedback_steps(tmp_path / "feedback.csv") == []
    (tmp_path / "steps.csv").write_text("step,epi")
    assert read_steps(tmp_path / "steps.csv", space()) == []
    resumed(tmp_path)  # the logs get their headers back
    assert (tmp_path / "steps.csv").read_text().startswith("step,episode,run,")
    assert (tmp_path / "feedback.csv").read_text().startswith("time,step,episode,value\n")


def test_a_torn_feedback_log_still_refuses_where_a_run_replays_it(tmp_path):
    log = tmp_path / "fb.csv"
    log.write_text("time,step,episode,value\n1.0,3,0,1.0\n2.0,4,0")
    with pytest.raises(ConfigError, match="truncated line"):
        read_feedback_log(log)  # --teacher replay: a log cut short is a mistake to name
    assert [fb.time for fb in read_feedback_log(log, drop_torn=True)] == [1.0]


# --- a bad model.npz ----------------------------------------------------------------------------------------

JUNK = {
    "empty": b"",
    "random bytes": np.random.default_rng(0).bytes(3000),
    "half a file": None,  # the first half of the real one
}


@pytest.mark.parametrize("kind", list(JUNK))
def test_an_unreadable_model_is_rebuilt_from_the_logs_with_a_note(tmp_path, capsys, kind):
    taught(tmp_path)
    model = tmp_path / "model.npz"
    junk = JUNK[kind]
    model.write_bytes(junk if junk is not None else model.read_bytes()[: model.stat().st_size // 2])
    capsys.readouterr()
    assert main(["replay", str(tmp_path)]) == 1  # no traceback: it says so and how to rebuild it
    out = capsys.readouterr().out
    assert "model.npz cannot be compared" in out and "--out" in out
    resumed(tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unreadable" in err[0] and "rebuilding the agent by replaying the log" in err[0]
    exact(tmp_path)


def test_a_model_that_is_not_the_checkpoint_is_rebuilt_from_the_logs(tmp_path, capsys):
    taught(tmp_path / "a")
    session(tmp_path / "b", {20: tap(pygame.K_DOWN), 60: [key(pygame.K_ESCAPE)]}, frames=10_000)
    shutil.copy(tmp_path / "b" / "model.npz", tmp_path / "a" / "model.npz")  # same config, another agent
    record = json.loads((tmp_path / "a" / "checkpoint.json").read_text())
    assert record["sha256"] != file_sha256(tmp_path / "a" / "model.npz")
    report = replay_session(tmp_path / "a")
    assert report.model_note and "sha256" in report.model_note and not report.exact
    capsys.readouterr()
    resumed(tmp_path / "a")
    err = capsys.readouterr().err
    assert "not the file checkpoint.json describes" in err and "rebuilding" in err
    exact(tmp_path / "a")


@pytest.mark.parametrize("kind", ["wrong keys", "another config"])
def test_a_model_that_does_not_fit_the_config_is_refused_in_one_line(tmp_path, kind):
    taught(tmp_path)
    model = tmp_path / "model.npz"
    if kind == "wrong keys":
        np.savez(model, weights=np.zeros((3, 10)))
        message = "holds no saved h"
    else:
        other = tmp_path.parent / (tmp_path.name + "-cartpole")
        session(other, {20: tap(pygame.K_UP)}, cfg=Config(env="CartPole-v1", step_rate=10.0), frames=40)
        shutil.copy(other / "model.npz", model)
        message = "saved model has shape"
    steps = (tmp_path / "steps.csv").read_bytes()
    with pytest.raises(ConfigError, match=message) as refused:
        session(tmp_path, frames=50, resume=True)
    assert "\n" not in str(refused.value) and "does not fit this session's config.json" in str(refused.value)
    assert (tmp_path / "steps.csv").read_bytes() == steps  # refused before anything was written
    report = replay_session(tmp_path)  # replay says so instead of crashing
    assert report.diffs is None and message in report.model_note


def test_checkpoint_json_records_the_models_sha256_and_every_rewrite_is_atomic(tmp_path, monkeypatch):
    replaced = []
    real = tamer_io.os.replace

    def spy(src, dst):
        replaced.append(Path(dst).name)
        return real(src, dst)

    monkeypatch.setattr(tamer_io.os, "replace", spy)
    taught(tmp_path)
    assert {"config.json", "live.json", "model.npz", "checkpoint.json"} <= set(replaced)
    replaced.clear()
    resumed(tmp_path)
    assert {"live.json", "model.npz", "checkpoint.json"} <= set(replaced)  # rewritten at every start
    record = json.loads((tmp_path / "checkpoint.json").read_text())
    assert record["sha256"] == file_sha256(tmp_path / "model.npz") and record["late"] == 0
    assert not list(tmp_path.glob("*.tmp*"))


# --- keypresses of the step open at a crash ---------------------------------------------------------------


def crashed(path):
    """Keys at 0.3 s and 0.8 s are handed over (after steps 3 and 8); the one at 1.23 s is pressed during
    step 13 (1.2-1.3 s), which never ends: the loop dies at 1.25 s. Returns the logged steps."""

    def crash(loop, frame):
        if frame == 125:
            raise RuntimeError("crash")

    script = {30: tap(pygame.K_UP), 80: tap(pygame.K_UP), 123: tap(pygame.K_DOWN)}
    with pytest.raises(RuntimeError, match="crash"):
        session(path, script, hook=crash, frames=10_000)
    rows = read_steps(path / "steps.csv", space())
    assert [step for _, step in read_feedback_steps(path / "feedback.csv")] == [3, 8, 13]
    assert rows[-1].step == 12 and replay_session(path).orphans == 1
    return rows


def test_keys_of_the_step_open_at_a_crash_are_taught_when_it_resumes(tmp_path, capsys):
    rows = crashed(tmp_path)
    before = tmp_path.parent / (tmp_path.name + "-before")
    shutil.copytree(tmp_path, before)
    # a resumed run that quits before its first step: its model is the crashed one plus the late key
    session(tmp_path, {0: [key(pygame.K_ESCAPE)]}, frames=10_000, resume=True)
    assert len(read_steps(tmp_path / "steps.csv", space())) == len(rows)
    assert json.loads((tmp_path / "checkpoint.json").read_text())["late"] == 1
    # credit by time: the -1 at 1.23 s with delays in [0.2, 0.8] s judges 0.43-1.03 s, steps 5 to 11
    judged = [r for r in rows if r.t_end > 1.23 - 0.8 and r.t_start < 1.23 - 0.2]
    assert [r.step for r in judged] == list(range(5, 12))
    for r in judged:
        old, new = h_at(before / "model.npz", r.obs), h_at(tmp_path / "model.npz", r.obs)
        assert new[r.action] < old[r.action]
    report = exact(tmp_path)  # the replay teaches it at the same point, and agrees with the model
    assert report.late == report.late_at_end == 1 and report.orphans == 0
    # the next resume does not teach it again; the replay across all three runs still agrees
    resumed(tmp_path)
    report = exact(tmp_path)
    assert report.late == 1 and report.feedback == 5 and report.orphans == 0
    assert "rebuilding" not in capsys.readouterr().err


def test_keys_of_the_open_step_are_taught_when_the_model_is_rebuilt_too(tmp_path, capsys):
    crashed(tmp_path)
    (tmp_path / "model.npz").unlink()  # killed: no save on the way out
    resumed(tmp_path)
    assert "there is no model.npz" in capsys.readouterr().err
    report = exact(tmp_path)
    assert report.late == 1 and report.orphans == 0


# --- the pace -----------------------------------------------------------------------------------------------


def test_the_measured_pace_skips_pauses_cuts_and_resets():
    pace = Pace(10.0)
    assert pace.measured == 10.0  # nothing measured yet: the rate asked for
    for t in (0.1, 0.2, 0.3, 0.4):
        pace.ended(t, False, False)
    assert pace.measured == 10.0
    pace.skip = True  # a pause
    pace.ended(5.0, False, False)
    pace.ended(5.2, False, False)  # 5 steps/s now
    assert pace.measured == pytest.approx(4 / (0.3 + 0.2), rel=1e-2)
    pace.ended(5.3, True, False)  # the episode ends: the reset is not a step
    pace.ended(9.0, False, False)
    assert len(pace.intervals) == 5
    pace.change(faster=True)
    assert pace.measured == 15.0 and not pace.intervals


def test_the_next_step_starts_in_the_frame_that_ended_the_last_one(tmp_path):
    # 32 steps/s at 64 frames/s: a step every 2 frames. The learner answers on its thread; were its answer
    # taken up a frame late, every other frame would show no step (the one ended, the next not begun), and on
    # a real clock the steps would fall behind. Virtual time, exact binary fractions.
    seen, shown = [], {}
    clock, dt = FrameClock(), 1 / 64

    def on_frame(loop, frame):
        time.sleep(0.001)  # a frame takes real time too; no waiting for the learner here: the loop must
        clock.t = frame * dt
        seen.append(loop.open_step is not None or loop.quit)  # a step on screen as the frame starts
        shown["rate"] = loop.st.rate

    play(tmp_path, Config(step_rate=32.0), LiveConfig(fps=0), max_frames=400, on_frame=on_frame, clock=clock)
    first = seen.index(True)
    assert np.mean(seen[first:]) > 0.97  # a loaded machine may miss the odd one
    ends = [r.t_end for r in read_steps(tmp_path / "steps.csv", space())]
    pace = (len(ends) - 1) / (ends[-1] - ends[0])
    assert pace == pytest.approx(32.0, rel=0.05)
    assert shown["rate"] == pytest.approx(pace, rel=0.05)  # the HUD shows the pace measured


def test_the_real_pace_at_60_fps_is_the_one_asked_for(tmp_path):
    # The wall clock, 60 frames/s, 30 steps/s for 1.5 s (benchmarks/live_pace.py measures it longer).
    started = []

    def on_frame(loop, frame):
        started.append(time.perf_counter()) if not started else None
        if time.perf_counter() - started[0] > 1.5:
            loop.quit = True

    play(tmp_path, Config(step_rate=30.0), LiveConfig(checkpoint_every=0.0), on_frame=on_frame)
    ends = [r.t_end for r in read_steps(tmp_path / "steps.csv", space())]
    assert (len(ends) - 1) / (ends[-1] - ends[0]) > 0.85 * 30  # a frame-late answer made it 20


# --- settings -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("fps", float("nan"), "fps must be >= 0"),
        ("fps", -1.0, "fps must be >= 0"),
        ("checkpoint_every", float("inf"), "checkpoint-every must be >= 0 and finite"),
        ("view_width", 10, "view-width must be >= 32"),
    ],
)
def test_live_settings_are_checked_by_their_declared_bounds(field, value, message):
    with pytest.raises(ConfigError, match=message):
        LiveConfig(**{field: value}).validate()
