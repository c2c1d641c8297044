"""Callbacks and plug-ins: the hooks a run calls, in order; stops; files; user code from the command line."""

import csv
import textwrap

import pytest

from tamer.callbacks import Callback, Checkpoint, StopAtReturn
from tamer.cli import main
from tamer.config import Config
from tamer.errors import ConfigError
from tamer.plugins import construct, parse_spec, split_specs
from tamer.train import train

TINY = {"env": "MountainCar-v0", "episodes": 3, "max_steps": 50}


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_run_start(self, s):
        self.calls.append(("run_start",))

    def on_episode_start(self, s, episode):
        self.calls.append(("episode_start", episode))

    def on_step(self, s, step, feedback):
        self.calls.append(("step", step.step, step.episode, len(feedback)))

    def on_episode_end(self, s, row):
        self.calls.append(("episode_end", row["episode"], row["length"], row["feedback"]))

    def on_run_end(self, s):
        self.calls.append(("run_end",))


def test_hooks_come_in_order_with_consecutive_steps_and_the_rows_train_returns():
    rec = Recorder()
    rows = train(Config(**TINY), progress=False, callbacks=[rec])
    kinds = [c[0] for c in rec.calls]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert kinds[1:-1] == (["episode_start"] + ["step"] * 50 + ["episode_end"]) * 3
    steps = [c for c in rec.calls if c[0] == "step"]
    assert [c[1] for c in steps] == list(range(1, 151))
    assert [c[2] for c in steps] == [0] * 50 + [1] * 50 + [2] * 50
    ends = [c for c in rec.calls if c[0] == "episode_end"]
    assert [(e[1], e[2], e[3]) for e in ends] == [(r["episode"], r["length"], r["feedback"]) for r in rows]
    # feedback counted per step adds up to the episode's
    for _, episode, _, given in ends:
        assert sum(c[3] for c in steps if c[2] == episode) == given
    assert sum(r["feedback"] for r in rows) > 0


def test_a_callback_returning_false_at_episode_end_stops_the_run():
    stop = StopAtReturn(threshold=-1e9, window=2)
    rows = train(Config(**{**TINY, "episodes": 10}), progress=False, callbacks=[stop])
    assert len(rows) == 2 and stop.reached_at == 1


def test_a_callback_returning_false_at_a_step_cuts_the_episode_there(tmp_path):
    class StopAt(Callback):
        def on_step(self, s, step, feedback):
            return step.step < 70

    rows = train(Config(**TINY), tmp_path / "run", progress=False, callbacks=[StopAt()])
    assert [(r["length"], r["ended"]) for r in rows] == [(50, "truncated"), (20, "stopped")]
    saved = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert [int(r["length"]) for r in saved] == [50, 20]
    assert (tmp_path / "run" / "model.npz").is_file()


def test_run_end_runs_and_files_close_when_a_callback_raises(tmp_path):
    class Boom(Callback):
        def on_step(self, s, step, feedback):
            if step.step == 60:
                raise RuntimeError("boom")

    rec = Recorder()
    with pytest.raises(RuntimeError, match="boom"):
        train(Config(**TINY), tmp_path / "run", progress=False, callbacks=[rec, Boom()])
    assert rec.calls[-1] == ("run_end",)
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert len(rows) == 1  # the first episode's row was flushed; nothing half-written after it


def test_checkpoint_every_n_episodes_and_every_s_seconds(tmp_path, monkeypatch):
    saves = []
    monkeypatch.setattr("tamer.callbacks.save_agent", lambda agent, path: saves.append(path))
    cp = Checkpoint(tmp_path / "m.npz", every_episodes=2, at_end=True)
    train(Config(**{**TINY, "episodes": 5}), progress=False, callbacks=[cp])
    assert len(saves) == 2 + 1  # after episodes 2 and 4, and at the end

    saves.clear()
    clock = iter(range(0, 10_000, 1))  # one "second" per call of time.monotonic
    monkeypatch.setattr("tamer.callbacks.time.monotonic", lambda: next(clock))
    cp = Checkpoint(tmp_path / "m.npz", every_episodes=0, every_seconds=25.0, at_end=False)
    train(Config(**{**TINY, "episodes": 1}), progress=False, callbacks=[cp])
    assert len(saves) == 50 // 25  # the clock moves one second per step: a save every 25 steps


def test_plugin_specs_carry_keyword_arguments_and_context():
    assert split_specs("a.b:C(x=1, y=(2, 3)), d:E ,") == ["a.b:C(x=1, y=(2, 3))", "d:E"]
    assert parse_spec("a.b:C(x=1, name='n')", "callback") == ("a.b:C", {"x": 1, "name": "n"})
    stop = construct("tamer.callbacks:StopAtReturn(threshold=-100)", "callback", cfg=None, out=None)
    assert stop.threshold == -100.0 and stop.window == 10  # context the constructor does not name: not passed
    with pytest.raises(ConfigError, match="name=literal"):
        parse_spec("a.b:C(1 + x)", "callback")
    with pytest.raises(ConfigError, match="failed when built: ConfigError|window must be >= 1"):
        construct("tamer.callbacks:StopAtReturn(threshold=0, window=0)", "callback")


USER_MODULE = '''
import json
from tamer.callbacks import Callback
from tamer.feedback import Feedback


class CountSteps(Callback):
    """Writes how many steps each episode had into the run folder."""

    def __init__(self, out=None, name="lengths.json"):
        self.path, self.lengths = out / name, []

    def on_episode_end(self, s, row):
        self.lengths.append(row["length"])

    def on_run_end(self, s):
        self.path.write_text(json.dumps(self.lengths))


class Praise:
    """A teacher who praises every step, 0.3 s after it ends."""

    def __init__(self, value=1.0):
        self.value, self.pending = value, []

    def observe(self, obs, action, t_start, t_end, episode):
        self.pending.append(Feedback(t_end + 0.3, self.value))

    def poll(self, now):
        ready = [f for f in self.pending if f.time <= now]
        self.pending = [f for f in self.pending if f.time > now]
        return ready


class Broken:
    def __init__(self):
        raise RuntimeError("not today")
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_plugins.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_users_callback_and_teacher_run_from_the_command_line(user_module, capsys):
    out = user_module / "run"
    args = ["train", *("--episodes", "2", "--max-steps", "30", "--quiet", "--out", str(out))]
    args += ["--teacher", "my_plugins:Praise(value=-1.0)"]
    args += [
        "--callback",
        "my_plugins:CountSteps(name='n.json'),tamer.callbacks:StopAtReturn(threshold=-1e9, window=1)",
    ]
    assert main(args) == 0
    assert (out / "n.json").read_text() == "[30]"  # StopAtReturn(window=1) stopped after one episode
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert rows[0]["feedback"] == "27"  # every step judged 0.3 s (3 steps) later: 30 - 3 handed over
    fed = list(csv.DictReader(open(out / "feedback.csv")))
    assert {r["value"] for r in fed} == {"-1.0"}


@pytest.mark.parametrize(
    "flag, spec, message",
    [
        ("--callback", "my_plugins:Nope", "my_plugins has no 'Nope'"),
        ("--callback", "no_such_module_xyz:C", "cannot load callback"),
        ("--teacher", "my_plugins:Broken", "failed when built: RuntimeError: not today"),
        ("--teacher", "my_plugins:Callback", "lacks observe(), poll()"),
        ("--blend", "my_plugins:Broken", "failed when built: RuntimeError: not today"),
    ],
)
def test_bad_plugins_are_one_line_and_exit_code_2(user_module, capsys, flag, spec, message):
    args = ["train", "--episodes", "1", "--max-steps", "5", "--quiet", flag, spec]
    if flag == "--blend":
        args += ["--agent", "tamer+rl"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
