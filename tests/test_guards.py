"""Nothing lost, nothing silent: a sweep survives a worker killed from outside, a run stops with one line
when the env or the model turns non-finite, and settings that cannot work are refused or warned about."""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from tamer.cli import main
from tamer.config import Config
from tamer.errors import ConfigError, RunError
from tamer.results import format_summary, report, without
from tamer.sweep import finished, load_experiment, run_all
from tamer.train import train

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# --- a sweep whose worker is killed -----------------------------------------------------------------------


class KillOnce:
    """A ``--callback`` plug-in that SIGKILLs its own worker process, as the OOM killer would: once over the
    whole sweep (the file ``flag`` remembers it), in the run with seed 1 and feedback_prob 0.8, after its
    first episode. ``always``: every time. Never in the main process (a sweep with one worker runs there)."""

    def __init__(self, flag: str, always: bool = False, cfg=None):
        self.flag, self.always, self.cfg = Path(flag), always, cfg

    def on_episode_end(self, s, row) -> None:
        if multiprocessing.parent_process() is None or row["episode"] != 0:
            return
        if (self.cfg.seed, self.cfg.feedback_prob) != (1, 0.8):
            return
        if not self.always:
            try:
                os.close(os.open(self.flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
        os.kill(os.getpid(), signal.SIGKILL)


def kill_experiment(tmp: Path, always: bool = False) -> Path:
    flag = (tmp / "killed").as_posix()
    path = tmp / "x.toml"
    path.write_text(
        f"""seeds = 2
[base]
env = "tamer/GridWorld-v0"
episodes = 3
callback = "test_guards:KillOnce(flag={flag!r}, always={always})"
[grid]
feedback_prob = [0.2, 0.8]
""",
        encoding="utf-8",
    )
    return path


def sweep(path: Path, out: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)])}
    command = [sys.executable, "-m", "tamer.cli", "sweep", str(path), "--out", str(out), "--workers", "2"]
    return subprocess.run(
        [*command, "--quiet"], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def comparable(root: Path):
    rows, summary = report(root)
    return without(rows), format_summary(summary, timing=False)


def test_a_worker_killed_once_is_reported_and_its_run_retried(tmp_path: Path):
    path, out = kill_experiment(tmp_path), tmp_path / "out"
    result = sweep(path, out)  # a hang would fail here, by the timeout
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "killed").exists(), "the worker was never killed: the test tests nothing"
    victim = out / "feedback_prob=0.8" / "seed=1"
    warnings = [line for line in result.stderr.splitlines() if "worker died" in line]
    assert warnings == [
        f"tamer: {victim}: its worker died (killed by SIGKILL, out of memory?); running it again "
        "(attempt 2 of 3)"
    ], result.stderr
    runs = load_experiment(path).runs(out)
    assert all(finished(r) for r in runs)
    assert sorted(p.name for p in victim.parent.iterdir()) == ["seed=0", "seed=1"]  # no partial left
    clean = tmp_path / "clean"  # the flag exists now: the same runs, none killed, in this process
    assert run_all(load_experiment(path).runs(clean), clean, workers=1, progress=False) == len(runs)
    assert comparable(out) == comparable(clean)


def test_a_run_whose_worker_always_dies_stops_the_sweep_with_one_line(tmp_path: Path):
    path, out = kill_experiment(tmp_path, always=True), tmp_path / "out"
    result = sweep(path, out)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    victim = out / "feedback_prob=0.8" / "seed=1"
    assert lines[-1] == (
        f"tamer: error: {victim}: its worker died 3 times (killed by SIGKILL, out of memory?); sweep "
        "stopped, the finished runs are kept: run the same command again to resume"
    ), result.stderr
    assert sum("running it again" in line for line in lines) == 2 and "Traceback" not in result.stderr
    assert not victim.exists() and not list(victim.parent.glob("seed=1.partial*"))


# --- non-finite values from the env or the model ----------------------------------------------------------


class Spoiled(gym.Env):
    """Ten steps of reward -1 and observation (0.1·t, 0): at step ``at`` (0: at reset) ``what`` (reward or
    observation) is ``value`` instead."""

    def __init__(self, what: str = "reward", at: int = 3, value: float = math.nan, render_mode=None):
        self.what, self.at, self.value, self.render_mode = what, at, value, render_mode
        self.observation_space = gym.spaces.Box(-1.0, 2.0, (2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0

    def obs(self) -> np.ndarray:
        obs = np.array([0.1 * self.t, 0.0], dtype=np.float32)
        if self.what == "observation" and self.t == self.at:
            obs[1] = self.value
        return obs

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.obs(), {}

    def step(self, action):
        self.t += 1
        reward = self.value if self.what == "reward" and self.t == self.at else -1.0
        return self.obs(), reward, self.t >= 10, False, {}


for name, kwargs in {
    "NaNReward": {"what": "reward", "at": 3},
    "InfReward": {"what": "reward", "at": 5, "value": -math.inf},
    "NaNObservation": {"what": "observation", "at": 4},
    "NaNReset": {"what": "observation", "at": 0},
}.items():
    gym.register(f"tamer-test/{name}-v0", entry_point=Spoiled, kwargs=kwargs, disable_env_checker=True)


@pytest.mark.parametrize(
    "env, message",
    [
        ("NaNReward", "episode 1, step 3: the env's reward is not finite (nan)"),
        ("InfReward", "episode 1, step 5: the env's reward is not finite (-inf)"),
        ("NaNObservation", "episode 1, step 4: the env's observation is not finite ([0.4, nan])"),
        ("NaNReset", "episode 0, at reset: the env's observation is not finite ([0, nan])"),
    ],
)
def test_a_non_finite_env_stops_the_run_with_one_line(tmp_path: Path, capsys, env: str, message: str):
    # episode 0 runs clean (the env spoils its first episode only from the second on: see spoil_from_1)
    out = tmp_path / "run"
    argv = ["train", "--env", f"tamer-test/{env}-v0", "--agent", "rl", "--episodes", "3", "--quiet"]
    assert main([*argv, "--out", str(out), "--callback", "test_guards:SpoilFrom1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and message in err, err
    if env != "NaNReset":  # what the run did before is kept, and is clean
        model = np.load(out / "model.npz")
        assert all(np.isfinite(model[k]).all() for k in model.files if model[k].dtype.kind == "f")
        assert len((out / "metrics.csv").read_text().splitlines()) == 2  # the header and episode 0


class SpoilFrom1:
    """Keeps the env clean in episode 0 (so a checkpoint exists), spoiled from episode 1 on; at reset
    spoilage shows in episode 0 itself."""

    def on_run_start(self, s) -> None:
        env = s.env.unwrapped
        self.at, env.at = env.at, (env.at if env.at == 0 else -1)

    def on_episode_end(self, s, row) -> None:
        s.env.unwrapped.at = self.at


def test_a_diverging_model_stops_the_run_naming_episode_and_step(capsys):
    argv = ["train", "--agent", "rl", "--rl-lr", "1e300", "--episodes", "2", "--quiet", "--max-steps", "50"]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("tamer: no --out given")
    assert len(err) == 2 and err[1].startswith("tamer: error: episode 0, step "), err
    assert "the model's action values are not finite" in err[1] and "Ĥ or Q diverged" in err[1]


def test_the_guards_are_one_error_type_the_cli_reports():
    assert issubclass(RunError, ConfigError)
    from tamer.agents import greedy

    rng = np.random.default_rng(0)
    assert greedy(np.array([1.0, 3.0, 2.0]), rng) == 1
    for values in ([1.0, np.nan, 0.0], [np.inf, 0.0], [0.0, -np.inf]):
        with pytest.raises(RunError, match="not finite"):
            greedy(np.array(values), rng)
    assert greedy(np.array([1e308, 1e308, 0.0]), rng) in (0, 1)  # a sum that overflows is not a NaN


# --- settings that cannot work: refused, or said ----------------------------------------------------------


def test_blend_with_tamer_or_rl_is_refused_only_when_given(capsys):
    for agent in ("tamer", "rl"):
        assert main(["train", "--agent", agent, "--blend", "action_biasing", "--episodes", "1"]) == 2
        err = capsys.readouterr().err
        assert err == (
            f"tamer: error: --blend applies only to --agent tamer+rl; --agent {agent} would ignore --blend "
            "action_biasing (drop it, or use --agent tamer+rl)\n"
        )
    # the default blend every config carries is no reason to refuse (make demo, the sweeps: agent rl)
    assert main(["train", "--agent", "rl", "--episodes", "1", "--quiet", "--max-steps", "20"]) == 0


def test_q_init_needs_the_teacher_to_leave(tmp_path: Path):
    base = {"agent": "tamer+rl", "blend": "q_init", "episodes": 4}
    with pytest.raises(ConfigError, match="--blend q_init adds Ĥ to Q when the teacher leaves"):
        Config(**base).validate()
    with pytest.raises(ConfigError, match="got --leave-after 4, --episodes 4"):
        Config(**base, leave_after=4).validate()
    Config(**base, leave_after=2).validate()
    Config(**base, mode="sequential", h_episodes=2).validate()


def test_tamer_without_a_teacher_warns_it_cannot_learn(capsys, tmp_path: Path):
    argv = ["train", "--agent", "tamer", "--teacher", "none", "--episodes", "1", "--max-steps", "20"]
    assert main([*argv, "--quiet", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert err == (
        "tamer: --agent tamer with --teacher none cannot learn: Ĥ gets no feedback and stays untrained\n"
    )


def test_train_without_out_says_nothing_is_saved(capsys, tmp_path: Path):
    argv = ["train", "--episodes", "1", "--max-steps", "20", "--quiet"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == "tamer: no --out given: nothing of this run is saved (see --out)\n"
    assert "run saved" not in captured.out
    assert main([*argv, "--out", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().err == ""


def test_guards_leave_a_clean_run_bit_for_bit(tmp_path: Path):
    """The checks only look: a run's numbers are what they were (same config, same seed, twice)."""
    cfg = Config(env="MountainCar-v0", agent="tamer+rl", episodes=2, max_steps=100)
    a, b = train(cfg, tmp_path / "a", progress=False), train(cfg, tmp_path / "b", progress=False)
    assert [r["return"] for r in a] == [r["return"] for r in b]
