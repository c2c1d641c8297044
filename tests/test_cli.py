"""The command line: runs write what they promise, and bad input is one line with exit code 2."""

import csv
import json
import subprocess
import sys

import pytest

from tamer.callbacks import METRICS
from tamer.cli import main


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "tamer.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_train_writes_metrics_config_and_model_then_eval_loads_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--env",
                "MountainCar-v0",
                "--episodes",
                "3",
                "--seed",
                "1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["episode"] for r in rows] == ["0", "1", "2"]
    assert set(rows[0]) == set(METRICS)
    assert json.loads((out / "config.json").read_text())["seed"] == 1
    assert (out / "model.npz").exists() and (out / "feedback.csv").exists()
    assert main(["eval", str(out), "--episodes", "2"]) == 0
    assert "greedy return over 2 episodes" in capsys.readouterr().out


def test_train_refuses_an_existing_run_unless_overwrite(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--episodes", "1", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert main(args) == 2
    assert main([*args, "--overwrite"]) == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--env", "NoSuchEnv-v0"], "cannot make env 'NoSuchEnv-v0'"),
        (["train", "--env", "MountainCarContinuous-v0"], "TAMER needs discrete actions"),
        (["train", "--agent", "robot"], "invalid choice: 'robot'"),
        (["train", "--teacher", "ghost"], "unknown teacher 'ghost'; known: oracle, replay, none"),
        (["train", "--step-rate", "-1"], "step-rate must be >= 0"),
        (["train", "--episodes", "0"], "episodes must be >= 1"),
        (["train", "--feedback-prob", "1.5"], "feedback-prob must be in [0, 1]"),
        (["train", "--agent", "tamer+rl", "--blend", "magic"], "unknown blend 'magic'; known: tamer, rl,"),
        (["train", "--agent", "tamer+rl", "--blend", "no.such:Blend"], "cannot load blend"),
        (["train", "--agent", "tamer+rl", "--beta", "-0.5"], "beta must be >= 0"),
        (
            ["train", "--agent", "tamer+rl", "--blend", "q_init", "--model", "mlp"],
            "q_init needs Ĥ and Q linear",
        ),
        (
            ["train", "--agent", "tamer+rl", "--beta-schedule", "region", "--rl", "dqn", "--model", "mlp"],
            "region",
        ),
        (["train", "--teacher", "replay"], "--teacher replay needs --feedback-log"),
        (["train", "--teacher", "replay", "--feedback-log", "missing.csv"], "cannot read feedback log"),
        (["eval", "nowhere"], "not a run folder"),
        (["oracle", "--env", "Pendulum-v1"], "TAMER needs discrete actions"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, args, message):
    result = run_cli(args[0], "--episodes", "1", *args[1:]) if args[0] == "train" else run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_truncated_log_reports_its_line(tmp_path):
    log = tmp_path / "fb.csv"
    log.write_text("time,step,episode,value\n0.5,3,0,1.0\n0.9,7,0,-1")
    result = run_cli("train", "--teacher", "replay", "--feedback-log", str(log), "--episodes", "1")
    assert result.returncode == 2 and f"{log}:3: truncated line" in result.stderr


def test_help_documents_every_option():
    result = run_cli("train", "--help")
    assert result.returncode == 0
    for flag in ("--feedback-prob", "--delay", "--blend", "--beta-schedule", "--overwrite", "--step-rate"):
        assert flag in result.stdout


def test_library_warnings_reach_stderr_as_one_tamer_line(capsys):
    import logging

    from tamer.cli import setup_logging

    setup_logging()
    setup_logging()  # main runs it every time: still one handler
    logging.getLogger("tamer.sweep").warning("something to know")
    logging.getLogger("tamer.sweep").info("progress detail")
    assert capsys.readouterr().err == "tamer: something to know\n"
