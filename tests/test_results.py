import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tamer.cli import main
from tamer.config import Config
from tamer.errors import ConfigError
from tamer.results import (
    bootstrap_ci,
    censored,
    columns,
    episodes_to_threshold,
    format_summary,
    gather,
    mean_ci,
    moving_mean,
    report,
    summarize,
    swept_fields,
)
from tamer.train import METRICS


def write_run(
    root: Path, condition: str, seed: int, returns: list[float], feedback: int = 2, **fields
) -> Path:
    """A run folder as tamer.train writes it, with made-up metrics: the tests need no training."""
    run = root / condition / f"seed={seed}"
    run.mkdir(parents=True)
    Config(seed=seed, episodes=len(returns), **fields).save(run / "config.json")
    with open(run / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRICS)
        writer.writeheader()
        for episode, ret in enumerate(returns):
            writer.writerow(
                {
                    "episode": episode,
                    "return": ret,
                    "length": 100,
                    "feedback": feedback,
                    "ignored": 0,
                    "steps_per_s": 1000.0,
                    "demo_steps": 0,
                    "human_seconds": 10.0 if feedback else 0.0,
                }
            )
    return run


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    for seed in range(3):
        write_run(tmp_path, "agent=tamer", seed, [-200, -150, -120 + seed], agent="tamer")
        write_run(tmp_path, "agent=rl", seed, [-200, -200, -190], feedback=0, agent="rl", teacher="none")
    return tmp_path


def test_gather_is_tidy_one_row_per_run_and_episode(sweep_dir: Path):
    (sweep_dir / "agent=rl" / "seed=9.partial-123-abc").mkdir()  # a run being written is never read
    Config(seed=9).save(sweep_dir / "agent=rl" / "seed=9.partial-123-abc" / "config.json")
    rows = gather(sweep_dir)
    assert len(rows) == 2 * 3 * 3
    first = rows[0]
    assert first["condition"] == "agent=rl" and first["run"] == "agent=rl/seed=0"
    assert first["episode"] == 0 and isinstance(first["return"], float) and isinstance(first["length"], int)
    assert set(Config().to_dict()) <= set(first)  # every config field is a column
    assert [r["feedback_total"] for r in rows if r["run"] == "agent=tamer/seed=0"] == [2, 4, 6]
    assert swept_fields(rows) == ["agent", "teacher"]
    assert columns(rows)[:5] == ["condition", "run", "seed", "agent", "teacher"]


def test_gather_refuses_a_folder_without_runs(tmp_path: Path):
    with pytest.raises(ConfigError, match="no finished runs"):
        gather(tmp_path)
    with pytest.raises(ConfigError, match="not a folder"):
        gather(tmp_path / "missing")


def test_bootstrap_ci_brackets_the_mean_and_is_deterministic():
    rng = np.random.default_rng(0)
    samples = rng.normal(5.0, 1.0, size=(40, 3))
    lo, hi = bootstrap_ci(samples)
    assert np.all(lo < samples.mean(axis=0)) and np.all(samples.mean(axis=0) < hi)
    assert np.all(hi - lo < 1.0)  # ≈ 2 × 1.96 / sqrt(40) = 0.62
    assert np.array_equal(lo, bootstrap_ci(samples)[0])
    assert mean_ci([3.0]) == (3.0, 3.0, 3.0)
    assert all(math.isnan(v) for v in mean_ci([]))


def test_moving_mean_averages_what_exists_so_far():
    assert moving_mean(np.array([1.0, 3.0, 5.0, 7.0]), 2).tolist() == [1.0, 2.0, 4.0, 6.0]
    assert moving_mean(np.array([[1.0, 3.0, 5.0]]), 5).tolist() == [[1.0, 2.0, 3.0]]
    assert moving_mean(np.array([1.0, 2.0]), 1).tolist() == [1.0, 2.0]


def test_episodes_to_threshold_counts_from_one_and_marks_failures():
    returns = np.array([[-200, -140, -100, -90], [-200, -200, -200, -200], [-100, -300, -100, -100]], float)
    assert episodes_to_threshold(returns, -150).tolist()[::2] == [2.0, 1.0]
    assert math.isnan(episodes_to_threshold(returns, -150)[1])
    # with a 2-episode moving mean, run 3's lucky first episode no longer counts
    assert episodes_to_threshold(returns, -150, window=2)[2] == 4.0
    assert censored(episodes_to_threshold(returns, -150), 4).tolist() == [2.0, 4.0, 1.0]


def test_summary_per_condition(sweep_dir: Path):
    summary = {s["condition"]: s for s in summarize(gather(sweep_dir), threshold=-160, last=1)}
    tamer, rl = summary["agent=tamer"], summary["agent=rl"]
    assert tamer["runs"] == 3 and tamer["final_return"] == pytest.approx(-119.0)
    assert tamer["final_return_lo"] <= -119.0 <= tamer["final_return_hi"]
    assert tamer["episodes_to_threshold"] == 2.0 and tamer["reached"] == 3
    assert rl["reached"] == 0 and rl["episodes_to_threshold"] == 3.0  # never: counted as the whole budget
    assert tamer["feedback"] == 6.0 and rl["feedback"] == 0.0
    assert tamer["steps_per_s"] == pytest.approx(1000.0)
    text = format_summary(list(summary.values()))
    assert "episodes to -160" in text and "3/3" in text and "0/3" in text and "steps/s" in text
    assert "steps/s" not in format_summary(list(summary.values()), timing=False)


def test_summary_by_any_column(sweep_dir: Path):
    summary = summarize(gather(sweep_dir), by="teacher")
    assert [s["condition"] for s in summary] == ["none", "oracle"]


def test_threshold_defaults_to_the_experiment_then_the_env(sweep_dir: Path):
    _, summary = report(sweep_dir)
    assert summary[0]["threshold"] == -110.0  # MountainCar-v0's reward_threshold in its Gymnasium spec
    (sweep_dir / "experiment.toml").write_text("threshold = -180\n")
    _, summary = report(sweep_dir)
    assert summary[0]["threshold"] == -180.0
    assert (sweep_dir / "results.csv").exists() and (sweep_dir / "summary.csv").exists()


def test_results_command_writes_the_table_and_prints_a_summary(sweep_dir: Path, capsys):
    assert main(["results", str(sweep_dir), "--csv", str(sweep_dir / "table.csv")]) == 0
    out = capsys.readouterr().out
    assert "agent=tamer" in out and "final return (last 3)" in out and "18 rows from 6 runs" in out
    with open(sweep_dir / "table.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 18 and rows[0]["agent"] == "rl" and rows[0]["seed"] == "0"
    summary = list(csv.DictReader(open(sweep_dir / "summary.csv")))
    assert {s["condition"] for s in summary} == {"agent=tamer", "agent=rl"}


def test_results_command_bad_input_is_one_line(tmp_path: Path, capsys):
    assert main(["results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no finished runs" in err
    write_run(tmp_path, "base", 0, [-1.0])
    assert main(["results", str(tmp_path), "--by", "nonsense"]) == 2
    assert "no column 'nonsense'" in capsys.readouterr().err
    assert main(["results", str(tmp_path), "--last", "0"]) == 2


def test_a_broken_run_folder_is_named(tmp_path: Path):
    run = write_run(tmp_path, "base", 0, [-1.0])
    (run / "config.json").write_text(json.dumps({"seed": 0})[:-2])
    with pytest.raises(ConfigError, match="cannot read run"):
        gather(tmp_path)


def test_span_means_cover_the_episodes_asked_for(sweep_dir: Path, capsys):
    summary = {s["condition"]: s for s in summarize(gather(sweep_dir), spans=[(1, 2), (3, 3)])}
    assert summary["agent=tamer"]["return_1_2"] == pytest.approx(-175.0)
    assert summary["agent=tamer"]["return_3_3"] == pytest.approx(-119.0)
    assert summary["agent=rl"]["return_3_3"] == pytest.approx(-190.0)
    assert main(["results", str(sweep_dir), "--span", "1:2", "--span", "3:3"]) == 0
    out = capsys.readouterr().out
    assert "return 1-2" in out and "-175.0 ± " in out and "return 3-3" in out
    assert main(["results", str(sweep_dir), "--span", "2:9"]) == 2
    assert "have 3 episodes" in capsys.readouterr().err
    assert main(["results", str(sweep_dir), "--span", "0:2"]) == 2
    assert "FIRST:LAST" in capsys.readouterr().err
