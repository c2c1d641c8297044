"""Replay: retrain a play session offline from its logs and compare the result with the saved model.

Replay makes the learner's calls again with the logged steps and keypresses, through the same learning body
(``tamer.stepper.Stepper`` with the teacher's phases), in the same order, so it reproduces the agent exactly;
at each run boundary (a ``--resume``) it starts from a freshly built agent loading the state so far, as the
resumed session did.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tamer.callbacks import TeacherPhase
from tamer.config import Config
from tamer.errors import ConfigError
from tamer.feedback import Feedback
from tamer.io import file_sha256, save_agent, write_json_atomic
from tamer.live.session import (
    MAX_LOGGED_OBS,
    SessionFolder,
    learn_late,
    read_feedback_steps,
    read_steps,
)
from tamer.session import Session, build, transplant
from tamer.stepper import Stepper

ALL = -1  # replay_session(late=ALL): hand over every keypress of the last run's open step


@dataclass
class ReplayReport:
    steps: int
    episodes: int
    runs: int
    feedback: int  # handed to the agent (``late`` included)
    orphans: int  # logged during a step that never ended (a crash), not handed over (no run came after)
    same_actions: int  # steps where the replayed agent chose the logged action
    last_step: int
    checkpoint_step: int | None  # the last step model.npz includes
    diffs: dict[str, float] | None  # max |replayed - saved| per part (h, rl, ...); None without model.npz
    session: Session  # the replayed agent
    late: int = 0  # of ``feedback``: pressed during a step that never ended, handed over when the run resumed
    late_at_end: int = 0  # of ``late``: handed over after the last logged step (what model.npz says it holds)
    model_note: str | None = None  # why model.npz could not be compared (unreadable, not this config's)
    last_run: int = 0  # the run of the last logged step

    @property
    def h_diff(self) -> float | None:
        return (self.diffs or {}).get("h")

    @property
    def exact(self) -> bool:
        """Ĥ (or, without Ĥ, everything saved) matches the saved model exactly."""
        if self.diffs is None:
            return False
        h = self.h_diff
        return h == 0.0 if h is not None else all(d == 0.0 for d in self.diffs.values())


def replay_session(session_dir: Path, cfg: Config | None = None, late: int | None = None) -> ReplayReport:
    """Retrain offline from a session's logs: the same ``Stepper`` calls as live, with the logged steps and
    keypresses, in the same order; then compare with the saved model.

    Keypresses logged during a step that never ended are handed over where the resumed session handed them
    (``tamer.live.session.learn_late``): at a run boundary, after the fresh agent loaded the state so far.
    After the last logged step, ``late`` of them are (None: as many as checkpoint.json says model.npz holds;
    ``ALL``: every one, as ``--resume`` does when it rebuilds the agent)."""
    folder = SessionFolder.existing(Path(session_dir))
    if folder.demonstration():
        raise ConfigError(
            f"{session_dir} is a demonstration session: nothing was learned live, so there is no agent to "
            "replay; tamer.live.replay_demonstrations trains its behaviour-cloning policy"
        )
    cfg = cfg or Config.load(folder.config)
    s = build(cfg)
    try:
        rows = read_steps(folder.steps, s.env.observation_space)
        keys = read_feedback_steps(folder.feedback)
    except BaseException:
        s.env.close()
        raise
    if any(r.obs is None or r.next_obs is None for r in rows):
        s.env.close()
        raise ConfigError(
            f"{session_dir}: observations larger than {MAX_LOGGED_OBS} values were not logged, so "
            "this session cannot be replayed"
        )
    pending: dict[int, list[Feedback]] = defaultdict(list)
    for fb, step in keys:
        pending[step].append(fb)
    stepper, previous, chosen = Stepper(s, [TeacherPhase()]), None, None
    same = handed = episodes = runs = late_total = unused = 0
    for i, r in enumerate(rows):
        if previous is None or r.run != previous.run:
            runs += 1
            opened = [fb for step in sorted(k for k in pending if k < r.step) for fb in pending.pop(step)]
            if previous is None:  # keys of runs that logged no step before the first one: nothing to credit
                unused = len(opened)
            else:  # a resumed run starts from a fresh agent that loaded the saved state
                s, stepper = resume(s, cfg)
                late_total += learn_late(s, rows[:i], opened)  # the keys of the step that never ended
        if previous is None or r.run != previous.run or r.episode != previous.episode:
            episodes += 1
            chosen = stepper.begin_episode(r.episode, r.obs)
        same += chosen == r.action
        feedback = pending.pop(r.step, [])
        handed += len(feedback)
        chosen = stepper.end_step(r, feedback)
        previous = r
    trailing = [fb for step in sorted(pending) for fb in pending[step]]
    record = folder.checkpoint_record()
    if late is None:  # as many as the saved model holds (a resumed run that ended before its first step)
        covers = record is not None and record["step"] == (rows[-1].step if rows else 0)
        late = record["late"] if covers and record is not None else 0
    late_at_end = len(trailing) if late == ALL else min(late, len(trailing))
    if late_at_end:
        s, stepper = resume(s, cfg)
        learn_late(s, rows, trailing[:late_at_end])
    s.env.close()
    diffs, note = None, None
    if folder.model.is_file():
        try:
            diffs = state_diffs(s.agent, cfg, folder.model)
        except ConfigError as e:  # unreadable, or not this config's agent: nothing to compare with
            note = str(e)
        if diffs is not None and record is not None and record.get("sha256") not in (None, sha(folder)):
            note = "model.npz is not the file checkpoint.json describes (its sha256 differs)"
    return ReplayReport(
        len(rows),
        episodes,
        runs,
        handed + late_total + late_at_end,
        len(trailing) - late_at_end + unused,
        same,
        rows[-1].step if rows else 0,
        record["step"] if record is not None else None,
        diffs,
        s,
        late_total + late_at_end,
        late_at_end,
        note,
        rows[-1].run if rows else 0,
    )


def sha(folder: SessionFolder) -> str:
    return file_sha256(folder.model)


def resume(s: Session, cfg: Config) -> tuple[Session, Stepper]:
    """What ``--resume`` starts from: a freshly built session whose agent loaded ``s``'s saved state."""
    fresh = build(cfg)
    transplant(s.agent, fresh)
    s.env.close()
    return fresh, Stepper(fresh, [TeacherPhase()])


def save_replayed(report: ReplayReport, session_dir: Path, out: Path) -> None:
    """Write the replayed agent to ``out``; into the session's own model.npz (a repair: ``--resume`` uses it)
    with its checkpoint.json. The caller holds the session (``SessionFolder.claim``) while it replays and
    writes, so no process plays it meanwhile."""
    folder = SessionFolder.existing(Path(session_dir))
    out = Path(out)
    save_agent(report.session.agent, out)
    if out.resolve() == folder.model.resolve():
        record = {"step": report.last_step, "run": report.last_run, "late": report.late_at_end}
        write_json_atomic(folder.checkpoint, {**record, "sha256": file_sha256(out)})


def max_difference(a, b) -> float:
    """Largest absolute difference between two saved states (nested dicts and lists of arrays, tensors,
    numbers); inf where their structure differs, 0 for equal non-numeric leaves."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return float("inf")
        return max((max_difference(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return float("inf")
        return max((max_difference(x, y) for x, y in zip(a, b, strict=True)), default=0.0)
    if isinstance(a, int) and isinstance(b, int):  # exactly, RNG states too (beyond a float's precision)
        return 0.0 if a == b else float(abs(a - b)) if abs(a - b) < 2**53 else float("inf")
    if hasattr(a, "detach") and hasattr(b, "detach"):  # torch tensors, without importing torch here
        a, b = a.detach().cpu().numpy(), b.detach().cpu().numpy()
    try:
        x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError):
        return 0.0 if type(a) is type(b) and a == b else float("inf")
    if x.shape != y.shape:
        return float("inf")
    return float(np.abs(x - y).max()) if x.size else 0.0


def agent_state(agent) -> dict:
    """Everything an agent saves, by part ("h", "rl", ...), as the parts' own state dicts."""
    parts = agent.parts()
    state = {name: part.state_dict() for name, part in parts.items() if hasattr(part, "state_dict")}
    state["agent"] = {"episode": agent.episode, "h_frozen": agent.h_frozen}
    return state


def state_diffs(agent, cfg: Config, model: Path) -> dict[str, float]:
    """Max |replayed - saved| per part of the agent, the saved one loaded into a freshly built agent."""
    saved = build(cfg)
    saved.env.close()
    saved.agent.load(model)
    return compare_agents(agent, saved.agent)


def compare_agents(mine, theirs) -> dict[str, float]:
    """Max |mine - theirs| per part of two agents (0.0 everywhere: identical)."""
    a, b = agent_state(mine), agent_state(theirs)
    return {k: max_difference(a.get(k), b.get(k)) for k in sorted(set(a) | set(b))}
