import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tamer.cli import main
from tamer.config import Config
from tamer.errors import ConfigError
from tamer.results import format_summary, gather, report, without
from tamer.sweep import cell_name, finished, load_experiment, locked, run_all

REPO = Path(__file__).resolve().parents[1]
GRID = """
description = "tiny"
seeds = 2
threshold = -50.0

[base]
env = "tamer/GridWorld-v0"
episodes = 3

[grid]
feedback_prob = [0.2, 0.8]
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def run_folders(root: Path) -> list[str]:
    """Every folder at run depth (cell/seed...), finished or not, as relative paths."""
    return sorted(p.relative_to(root).as_posix() for p in root.glob("*/seed=*"))


def comparable(root: Path) -> tuple[list[dict], str]:
    """A sweep's table and summary without the timing columns, which differ between any two runs."""
    rows, summary = report(root)
    return without(rows), format_summary(summary, timing=False)


# --- experiment files -------------------------------------------------------------------------------------


def test_grid_variants_and_seeds_make_named_runs(tmp_path: Path):
    exp = load_experiment(
        write(
            tmp_path / "x.toml",
            """
seeds = [3, 7]
[base]
env = "MountainCar-v0"
episodes = 2
[grid]
beta = [0.5, 1]
[[variants]]
agent = "tamer"
[[variants]]
agent = "tamer+rl"
blend = ["action_biasing", "control_sharing"]
""",
        )
    )
    assert [c.name for c in exp.cells] == [
        "agent=tamer,beta=0.5",
        "agent=tamer,beta=1.0",
        "agent=tamer+rl,blend=action_biasing,beta=0.5",
        "agent=tamer+rl,blend=action_biasing,beta=1.0",
        "agent=tamer+rl,blend=control_sharing,beta=0.5",
        "agent=tamer+rl,blend=control_sharing,beta=1.0",
    ]
    runs = exp.runs(tmp_path / "out")
    assert len(runs) == 12 and {r.cfg.seed for r in runs[:6]} == {3}  # seed-major
    assert runs[2].out == tmp_path / "out" / "agent=tamer+rl,blend=action_biasing,beta=0.5" / "seed=3"
    assert runs[2].cfg.blend == "action_biasing" and runs[2].cfg.beta == 0.5 and runs[2].cfg.episodes == 2
    assert isinstance(runs[1].cfg.beta, float)


def test_seeds_default_and_seed_in_grid(tmp_path: Path):
    assert load_experiment(write(tmp_path / "a.toml", "[base]\nseed = 4\n")).seeds == [4]
    exp = load_experiment(write(tmp_path / "b.toml", "[grid]\nseed = [1, 2]\n"))
    assert exp.seeds == [1, 2] and [c.name for c in exp.cells] == ["base"]
    assert load_experiment(write(tmp_path / "c.toml", "seeds = 3\n"), seeds=5).seeds == [0, 1, 2, 3, 4]


def test_folder_names_are_safe_and_bounded():
    assert cell_name({"env": "tamer/GridWorld-v0", "fatigue": 0.0}) == "env=tamer_GridWorld-v0,fatigue=0.0"
    long = cell_name({f"field{i}": "x" * 20 for i in range(10)})
    assert len(long) < 130 and long != cell_name({f"field{i}": "x" * 20 + "y" for i in range(10)})


def test_shipped_experiments_load(tmp_path: Path):
    blends = load_experiment(REPO / "experiments" / "mountaincar_blends.toml")
    assert len(blends.seeds) == 20 and {"agent=tamer", "agent=rl,teacher=none"} <= {
        c.name for c in blends.cells
    }
    assert sum(c.cfg.agent == "tamer+rl" for c in blends.cells) >= 4
    quality = load_experiment(REPO / "experiments" / "teacher_quality.toml")
    assert {"error_rate", "feedback_prob"} == set(quality.cells[0].values)
    for path in sorted((REPO / "experiments").glob("*.toml")):
        load_experiment(path).check()


@pytest.mark.parametrize(
    "text, message",
    [
        ("[grid]\nbetta = [1.0]\n", "[grid]: unknown config field 'betta' (did you mean 'beta'?)"),
        ("[base]\nepisodes = 'ten'\n", "[base]: field 'episodes' must be int, got 'ten'"),
        ("[grid]\nbeta = [1.0, 'high']\n", "[grid]: field 'beta' must be float, got 'high'"),
        ("[base\nepisodes = 3\n", "TOML syntax error: "),
        ("[grid]\nbeta = 1.0\n", "field 'beta' must be a list of values to sweep"),
        ("[base]\nbeta = [1.0]\n", "field 'beta' is a list; sweep over it in [grid]"),
        ("episodes = 3\n", "unknown top-level key 'episodes' (config fields go in [base]"),
        ("seeds = 0\n", "seeds must be >= 1"),
        ("seeds = [1, 1]\n", "repeat a seed"),
        ("[grid]\nbeta = [1.0, 1.0]\n", "two cells are both 'beta=1.0'"),
        ("[grid]\nfeedback_prob = [0.5, 2.0]\n", "cell feedback_prob=2.0: feedback-prob must be in [0, 1]"),
        ("[grid]\nbeta = [1.0]\n[[variants]]\nbeta = 2.0\n", "field 'beta' is also swept in [grid]"),
        ("[[variants]]\nagnet = 'rl'\n", "[[variants]] #1: unknown config field 'agnet'"),
    ],
)
def test_bad_experiment_is_one_line_naming_file_and_field(tmp_path: Path, capsys, text: str, message: str):
    path = write(tmp_path / "bad.toml", text)
    assert main(["sweep", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and message in err, err


def test_syntax_error_names_the_line(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"bad.toml: TOML syntax error: .*line 3"):
        load_experiment(write(tmp_path / "bad.toml", "[base]\nepisodes = 3\nbeta = \n"))
    with pytest.raises(ConfigError, match="cannot read experiment"):
        load_experiment(tmp_path / "missing.toml")


def test_set_overrides_base_but_not_swept_fields(tmp_path: Path):
    path = write(tmp_path / "x.toml", GRID)
    assert main(["sweep", str(path), "--dry-run", "--set", "episodes=7", "--set", "delay=gamma"]) == 0
    exp = load_experiment(path, {"episodes": 7, "delay": "gamma"})
    assert exp.cells[0].cfg.episodes == 7 and exp.cells[0].cfg.delay == "gamma"
    with pytest.raises(ConfigError, match="sweeps over 'feedback_prob'"):
        load_experiment(path, {"feedback_prob": 0.1})
    assert main(["sweep", str(path), "--dry-run", "--set", "episodes"]) == 2


# --- running and resuming ---------------------------------------------------------------------------------


def test_dry_run_lists_runs_and_what_is_done(tmp_path: Path, capsys):
    path, out = write(tmp_path / "x.toml", GRID), tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "2 cells × 2 seeds = 4 runs" in text and "todo  feedback_prob=0.8/seed=1" in text
    assert not out.exists()
    run_all(load_experiment(path).runs(out)[:1], out, workers=1, progress=False)
    assert main(["sweep", str(path), "--out", str(out), "--dry-run"]) == 0
    assert "done  feedback_prob=0.2/seed=0" in capsys.readouterr().out


def test_sweep_resumes_only_what_is_missing(tmp_path: Path, capsys):
    path, out = write(tmp_path / "x.toml", GRID), tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert "4 runs in" in capsys.readouterr().out
    assert run_folders(out) == [f"feedback_prob={p}/seed={s}" for p in (0.2, 0.8) for s in (0, 1)]
    assert "threshold = -50.0" in (out / "experiment.toml").read_text()
    before = comparable(out)
    # a lost run and the leftovers of a killed attempt: only the lost run is redone, the leftovers go
    victim = out / "feedback_prob=0.8" / "seed=1"
    mtime = (out / "feedback_prob=0.2" / "seed=0" / "metrics.csv").stat().st_mtime_ns
    os.rename(victim, victim.with_name("seed=1.partial-1-dead"))
    (victim.parent / "seed=0.partial-2-dead").mkdir()
    runs = load_experiment(path).runs(out)
    assert run_all(runs, out, workers=1, progress=False) == 1
    assert run_folders(out) == [f"feedback_prob={p}/seed={s}" for p in (0.2, 0.8) for s in (0, 1)]
    assert (out / "feedback_prob=0.2" / "seed=0" / "metrics.csv").stat().st_mtime_ns == mtime
    assert comparable(out) == before
    assert run_all(runs, out, workers=1, progress=False) == 0


def test_a_changed_experiment_does_not_mix_with_old_runs(tmp_path: Path, capsys):
    path, out = write(tmp_path / "x.toml", GRID), tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert main(["sweep", str(path), "--out", str(out), "--set", "episodes=2"]) == 2
    err = capsys.readouterr().err
    assert "holds a finished run with episodes=3, but this sweep asks for 2" in err
    junk = out / "feedback_prob=0.2" / "seed=5"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine")
    runs = load_experiment(write(tmp_path / "y.toml", GRID.replace("seeds = 2", "seeds = [5]"))).runs(out)
    with pytest.raises(ConfigError, match="holds files but no finished run"):
        finished(runs[0])


def test_one_sweep_per_folder(tmp_path: Path):
    path, out = write(tmp_path / "x.toml", GRID), tmp_path / "out"
    with locked(out), pytest.raises(ConfigError, match="another sweep is writing"):
        run_all(load_experiment(path).runs(out), out, workers=1, progress=False)


def test_a_failing_run_stops_the_sweep_with_one_line(tmp_path: Path, capsys):
    path = write(tmp_path / "x.toml", "[base]\nenv = 'NoSuchEnv-v9'\n")
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cell base: cannot make env 'NoSuchEnv-v9'" in err


KILL_EXPERIMENT = """
seeds = 8
[base]
env = "MountainCar-v0"
episodes = 40
[grid]
feedback_prob = [0.3, 0.8]
"""


def children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_sigkill_halfway_then_rerun_gives_the_uninterrupted_table(tmp_path: Path):
    path = write(tmp_path / "x.toml", KILL_EXPERIMENT)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    runs = load_experiment(path).runs(killed)
    command = [sys.executable, "-m", "tamer.cli", "sweep", str(path), "--out", str(killed), "--workers", "2"]
    proc = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while sum(finished(r) for r in runs) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended before it was killed"
            time.sleep(0.01)
        workers = children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    done = [r for r in runs if finished(r)]
    assert 3 <= len(done) < len(runs), "not killed halfway"
    for run in done:  # whatever carries a run's final name is complete
        assert len((run.out / "metrics.csv").read_text().splitlines()) == 1 + run.cfg.episodes
    if sys.platform.startswith("linux"):  # the workers die with the sweep instead of finishing orphaned runs
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in workers)

    assert subprocess.run(command + ["--quiet"], cwd=REPO, capture_output=True).returncode == 0
    assert run_all(load_experiment(path).runs(clean), clean, workers=1, progress=False) == len(runs)
    expected = [r.out.relative_to(killed).as_posix() for r in runs]
    assert run_folders(killed) == sorted(expected)  # exactly one folder per run, nothing half-written
    for run in runs:
        assert sorted(p.name for p in run.out.iterdir()) == [
            "config.json",
            "feedback.csv",
            "metrics.csv",
            "model.npz",
        ]
    assert comparable(killed) == comparable(clean)


def test_ray_backend_gives_the_local_table(tmp_path: Path):
    ray = pytest.importorskip("ray")
    path = write(tmp_path / "x.toml", GRID)
    local, remote = tmp_path / "local", tmp_path / "ray"
    run_all(load_experiment(path).runs(local), local, workers=2, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        runs = load_experiment(path).runs(remote)
        assert run_all(runs, remote, workers=2, backend="ray", progress=False) == 4
        assert comparable(remote) == comparable(local)
        os.rename(runs[1].out, runs[1].out.with_name("seed=0.partial-9-dead"))  # resume works the same way
        assert run_all(runs, remote, workers=0, backend="ray", progress=False) == 1
        assert run_folders(remote) == run_folders(local) and comparable(remote) == comparable(local)
    finally:
        ray.shutdown()


def test_ray_missing_is_one_line(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    path = write(tmp_path / "x.toml", GRID)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--backend", "ray", "--quiet"]) == 2
    assert "pip install 'tamer[ray]'" in capsys.readouterr().err


# --- compare ----------------------------------------------------------------------------------------------


def test_compare_writes_plot_and_summary_and_resumes(tmp_path: Path, capsys):
    out = tmp_path / "cmp"
    args = [
        "compare",
        "--env",
        "tamer/GridWorld-v0",
        "--out",
        str(out),
        "--seeds",
        "2",
        "--episodes",
        "2",
        "--workers",
        "1",
        "--quiet",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "tamer" in text and "final return" in text and "oracle" in text
    assert (out / "compare.png").stat().st_size > 5_000 and (out / "results.csv").exists()
    rows = gather(out)
    assert {r["condition"] for r in rows} == {"tamer", "tamer+rl", "rl"} and len(rows) == 3 * 2 * 2
    assert {(r["condition"], r["teacher"], r["blend"]) for r in rows if r["condition"] != "tamer"} == {
        ("tamer+rl", "oracle", "control_sharing"),
        ("rl", "none", "control_sharing"),
    }
    assert main(args[:-4] + ["3", "--workers", "1", "--quiet"]) == 2  # different episodes: refuses to mix
    assert "--overwrite" in capsys.readouterr().err
    assert main(args[:-4] + ["3", "--workers", "1", "--quiet", "--overwrite"]) == 0
    assert Config.load(out / "tamer" / "seed=0" / "config.json").episodes == 3
