import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_results import write_run

from tamer.cli import main
from tamer.plots import learning_curves, plot_all, return_vs_feedback, threshold_bars
from tamer.results import gather

SIGNATURES = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF", "svg": b"<?xml"}


def check_files(paths: list[Path], formats=("png",)) -> None:
    assert sorted(p.suffix.lstrip(".") for p in paths) == sorted(formats * (len(paths) // len(formats)))
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(SIGNATURES[path.suffix.lstrip(".")]), path
        assert len(data) > 5_000, path  # something was drawn


@pytest.fixture
def rows(tmp_path: Path) -> list[dict]:
    root = tmp_path / "results"
    for seed in range(4):
        for blend, shift in (("action_biasing", 40), ("control_sharing", 20)):
            returns = [-200 + shift + 10 * e + 3 * seed for e in range(8)]
            write_run(root, f"agent=tamer+rl,blend={blend}", seed, returns, agent="tamer+rl", blend=blend)
        write_run(root, "agent=rl", seed, [-200.0] * 7 + [-180.0], feedback=0, agent="rl", teacher="none")
    return gather(root)


def test_each_plot_type_renders_to_png(rows, tmp_path: Path):
    check_files(learning_curves(rows, tmp_path / "curves.png", window=3, reference=("oracle", -110.0)))
    check_files(threshold_bars(rows, tmp_path / "threshold.png", threshold=-150.0, window=2))
    check_files(return_vs_feedback(rows, tmp_path / "feedback.png", hue="blend"))


def test_every_format(rows, tmp_path: Path):
    paths = plot_all(rows, tmp_path / "plots", threshold=-150.0, formats=("png", "pdf", "svg"))
    assert {p.name for p in paths} >= {
        "return_by_episode.svg",
        "episodes_to_threshold.pdf",
        "return_by_feedback.png",
    }
    check_files(paths, ("png", "pdf", "svg"))


def test_more_conditions_than_colours(tmp_path: Path):
    root = tmp_path / "many"
    for i in range(11):
        write_run(root, f"beta={i}", 0, [-200.0 + i, -150.0 + i], beta=float(i))
    paths = plot_all(gather(root), tmp_path / "plots", threshold=-145.0)
    assert len(paths) == 6


def test_plot_command_headless(rows, tmp_path: Path, capsys):
    root = tmp_path / "results"
    assert (
        main(
            [
                "plot",
                str(root),
                "--hue",
                "agent,blend",
                "--window",
                "2",
                "--format",
                "png,svg",
                "--threshold",
                "-150",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out.split()
    assert len(printed) == 6 and all(Path(p).exists() for p in printed)
    assert Path(printed[0]).parent == root / "plots"
    # no display is needed: plotting never touches pyplot or a GUI backend
    code = (
        "import sys; from tamer.cli import main; "
        f"main(['plot', {str(root)!r}, '--kind', 'curves', '--out', {str(tmp_path / 'p2')!r}]); "
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
    assert (tmp_path / "p2" / "return_by_episode.png").exists()


def test_plot_command_bad_input_is_one_line(rows, tmp_path: Path, capsys):
    root = str(tmp_path / "results")
    for args, message in (
        (["--hue", "colour"], "no column 'colour'"),
        (["--y", "reward"], "no column 'reward'"),
        (["--format", "gif"], "unknown plot format 'gif'"),
        (["--window", "0"], "--window"),
    ):
        assert main(["plot", root, *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err


def test_condition_names_read_well_in_legends():
    from tamer.plots import display_label

    assert (
        display_label("agent=tamer+rl,blend=action_biasing,beta=0.5")
        == "tamer+rl · action_biasing · beta=0.5"
    )
    assert display_label("agent=rl,teacher=none") == "rl · no teacher"
    assert display_label("oracle") == "oracle"
