"""A table of bad inputs: each is refused through ``tamer.cli.main`` with exit code 2, exactly one line on
stderr, no traceback, and nothing half-written (the output folder absent, or as it was before).

``experiments/bad_inputs.py`` prints the same table: input, message, exit code.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tamer.cli import main

TRAIN = ["train", "--episodes", "1", "--quiet", "--env", "tamer/GridWorld-v0", "--out", "{tmp}/out"]
SWEEP_BASE = "[base]\nenv = 'tamer/GridWorld-v0'\nepisodes = 1\n"


@dataclass
class Case:
    name: str  # the input as the table shows it
    argv: list[str]  # "{tmp}" stands for the case's own temporary folder
    expect: str  # part of the one-line message
    setup: Callable[[Path], None] | None = None  # makes the files the command reads
    watch: list[str] = field(default_factory=lambda: ["{tmp}/out"])  # absent, or unchanged


def write(relative: str, data: str | bytes) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        path = tmp / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")

    return setup


def sweep_file(text: str) -> Callable[[Path], None]:
    return write("x.toml", text)


def trained_run(tmp: Path) -> Path:
    """A finished one-episode run in ``tmp/run`` (copied from one trained per test session)."""
    source = Path(os.environ["TAMER_TEST_RUN"])
    shutil.copytree(source, tmp / "run")
    return tmp / "run"


def with_model(make: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        run = trained_run(tmp)
        make(run / "model.npz")

    return setup


def with_config(text: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (trained_run(tmp) / "config.json").write_text(text, encoding="utf-8")

    return setup


def npz(path: Path, **arrays) -> None:
    with open(path, "wb") as f:  # through a file object: savez would append .npz to the name
        np.savez(f, **arrays)


def wrong_shapes(path: Path) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["h.w"] = np.zeros((2, 3))
    npz(path, **arrays)


def read_only_folder(tmp: Path) -> None:
    (tmp / "ro").mkdir()
    (tmp / "ro").chmod(0o500)


def read_only_out(tmp: Path) -> str:
    """A folder that cannot be written: a read-only one, or for root (who may write anywhere) one below
    /sys, where no one may create folders."""
    return "/sys/tamer-bad-input/out" if os.geteuid() == 0 else "{tmp}/ro/out"


BLEND_MODULES = {
    "broken_blend_module.py": "raise RuntimeError('this module is broken')\n",
    "raising_blend_module.py": (
        "from tamer.blends import Blend\n\n\nclass Picky(Blend):\n    def __init__(self):\n"
        "        raise ValueError('no, thank you')\n"
    ),
}


def blend_modules(tmp: Path) -> None:
    for name, text in BLEND_MODULES.items():
        (tmp / name).write_text(text, encoding="utf-8")


CASES = [
    # NaN and inf, in every kind of number
    Case("train --h-lr inf", [*TRAIN, "--h-lr", "inf"], "h-lr must be > 0 and finite, got inf"),
    Case("train --q-init nan", [*TRAIN, "--q-init", "nan"], "q-init must be a finite number, got nan"),
    Case("train --fatigue nan", [*TRAIN, "--fatigue", "nan"], "fatigue must be >= 0 and finite, got nan"),
    Case("train --step-rate inf", [*TRAIN, "--step-rate", "inf"], "step-rate must be >= 0 and finite"),
    Case("train --beta -inf", [*TRAIN, "--beta=-inf"], "beta must be >= 0 and finite, got -inf"),
    Case(
        "play --fps nan",
        ["play", "--env", "tamer/GridWorld-v0", "--out", "{tmp}/out", "--fps", "nan"],
        "fps must be",
    ),
    Case(
        "sweep: [grid] beta = [1.0, nan]",
        ["sweep", "{tmp}/x.toml", "--out", "{tmp}/out", "--quiet"],
        "cell beta=nan: beta must be >= 0 and finite, got nan",
        sweep_file(SWEEP_BASE + "[grid]\nbeta = [1.0, nan]\n"),
    ),
    Case(
        "sweep --set h_lr=inf",
        ["sweep", "{tmp}/x.toml", "--out", "{tmp}/out", "--set", "h_lr=inf", "--quiet"],
        "h-lr must be > 0 and finite, got inf",
        sweep_file(SWEEP_BASE),
    ),
    Case(
        "results --threshold nan",
        ["results", "{tmp}/run", "--threshold", "nan"],
        "--threshold must be a finite number, got nan",
        trained_run,
        ["{tmp}/run"],
    ),
    Case(
        "plot --threshold inf",
        ["plot", "{tmp}/run", "--threshold", "inf"],
        "--threshold must be a finite number, got inf",
        trained_run,
        ["{tmp}/run"],
    ),
    Case(
        "oracle --oracle-margin nan",
        ["oracle", "--env", "tamer/GridWorld-v0", "--oracle-margin", "nan"],
        "oracle-margin must be in [0, 1], got nan",
    ),
    # negative seeds, everywhere a seed is taken
    Case("train --seed -1", [*TRAIN, "--seed", "-1"], "seed must be >= 0, got -1"),
    Case("eval --seed -1", ["eval", "{tmp}/run", "--seed", "-1"], "seed must be >= 0, got -1", trained_run),
    Case(
        "oracle --seed -1",
        ["oracle", "--env", "tamer/GridWorld-v0", "--seed", "-1"],
        "--seed must be >= 0, got -1",
    ),
    Case(
        "sweep: seeds = [-1, 0]",
        ["sweep", "{tmp}/x.toml", "--out", "{tmp}/out"],
        "seeds: seed must be >= 0, got -1",
        sweep_file("seeds = [-1, 0]\n" + SWEEP_BASE),
    ),
    Case(
        "sweep: [grid] seed = [0, -2]",
        ["sweep", "{tmp}/x.toml", "--out", "{tmp}/out"],
        "seeds: seed must be >= 0, got -2",
        sweep_file(SWEEP_BASE + "[grid]\nseed = [0, -2]\n"),
    ),
    Case(
        "sweep --seeds -1",
        ["sweep", "{tmp}/x.toml", "--out", "{tmp}/out", "--seeds", "-1"],
        "--seeds must be >= 1, got -1",
        sweep_file(SWEEP_BASE),
    ),
    # config.json that is not a config
    Case(
        "train --config (a list)",
        [*TRAIN, "--config", "{tmp}/c.json"],
        "a config must be a table of fields ({...}), got list",
        write("c.json", "[1, 2]"),
    ),
    Case(
        "train --config (null)",
        [*TRAIN, "--config", "{tmp}/c.json"],
        "a config must be a table of fields ({...}), got null",
        write("c.json", "null"),
    ),
    Case(
        "train --config (a folder)",
        [*TRAIN, "--config", "{tmp}"],
        "cannot read config",
    ),
    Case(
        "train --config (binary garbage)",
        [*TRAIN, "--config", "{tmp}/c.json"],
        "cannot read config",
        write("c.json", b"\xff\xfe\x00garbage\x80"),
    ),
    Case(
        "eval (config.json a list)",
        ["eval", "{tmp}/run"],
        "a config must be a table of fields ({...}), got list",
        with_config("[]"),
        ["{tmp}/run"],
    ),
    # model.npz that is not a model of this run
    Case(
        "eval (model.npz empty)",
        ["eval", "{tmp}/run"],
        "cannot read model",
        with_model(lambda p: p.write_bytes(b"")),
        ["{tmp}/run"],
    ),
    Case(
        "eval (model.npz random bytes)",
        ["eval", "{tmp}/run"],
        "cannot read model",
        with_model(lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096))),
        ["{tmp}/run"],
    ),
    Case(
        "eval (model.npz wrong keys)",
        ["eval", "{tmp}/run"],
        "holds no saved h",
        with_model(lambda p: npz(p, weights=np.zeros(3))),
        ["{tmp}/run"],
    ),
    Case(
        "eval (model.npz wrong shapes)",
        ["eval", "{tmp}/run"],
        "saved model has shape (2, 3)",
        with_model(wrong_shapes),
        ["{tmp}/run"],
    ),
    # output paths that cannot be written
    Case(
        "train --out (a file)",
        [*TRAIN[:-1], "{tmp}/out"],
        "is a file, not a folder",
        write("out", "mine"),
    ),
    Case(
        "train --out (read-only folder)",
        [*TRAIN[:-1], "READ_ONLY"],
        "cannot write",
        read_only_folder,
        ["READ_ONLY"],
    ),
    Case(
        "train --out (name > 255 bytes)",
        [*TRAIN[:-1], "{tmp}/" + "n" * 300],
        "cannot write",
        watch=["{tmp}/" + "n" * 300],
    ),
    Case(
        "sweep --out (a file)",
        ["sweep", "{tmp}/x.toml", "--out", "{tmp}/out", "--quiet"],
        "is a file, not a folder",
        lambda tmp: (sweep_file(SWEEP_BASE)(tmp), write("out", "mine")(tmp)),
    ),
    Case(
        "compare --overwrite --out (a file)",
        ["compare", "--env", "MountainCar-v0", "--out", "{tmp}/out", "--overwrite", "--seeds", "1"],
        "is a file, not a folder",
        write("out", "mine"),
    ),
    Case(
        "train --env with arguments the env refuses",
        ["train", "--env", "FrozenLake-v1(bogus=1)", "--episodes", "1", "--quiet"],
        "unexpected keyword argument 'bogus'",
    ),
    # extreme values
    Case("train --step-rate 1e-300", [*TRAIN, "--step-rate", "1e-300"], "step-rate must be 0"),
    Case("train --step-rate 1e300", [*TRAIN, "--step-rate", "1e300"], "step-rate must be 0"),
    Case("train --delay-max inf", [*TRAIN, "--delay-max", "inf"], "delay-max must be > 0 and finite"),
    Case("train --delay-max 1e9", [*TRAIN, "--delay-max", "1e9"], "delay-max must be <= 60"),
    Case("train --gamma-shape 1e300", [*TRAIN, "--gamma-shape", "1e300"], "gamma-shape must be <= 100"),
    Case(
        "train --delay gamma --gamma-scale 1e9",
        [*TRAIN, "--delay", "gamma", "--gamma-scale", "1e9"],
        "mean gamma delay",
    ),
    Case("train --tilings 100000000", [*TRAIN, "--tilings", "100000000"], "tilings must be in [1, 1024]"),
    Case(
        "train --dqn-buffer 1000000000000",
        [*TRAIN, "--dqn-buffer", "1000000000000"],
        "dqn-buffer must be in [1, 10000000]",
    ),
    # plug-ins that fail, environments that cannot be used
    Case(
        "train --blend (module fails to import)",
        [*TRAIN, "--agent", "tamer+rl", "--blend", "broken_blend_module:Blend"],
        "cannot load blend 'broken_blend_module:Blend': RuntimeError: this module is broken",
        blend_modules,
    ),
    Case(
        "train --blend (constructor raises)",
        [*TRAIN, "--agent", "tamer+rl", "--blend", "raising_blend_module:Picky"],
        "failed when built: ValueError: no, thank you",
        blend_modules,
    ),
    Case("train --env NoSuchEnv-v0", [*TRAIN, "--env", "NoSuchEnv-v0"], "cannot make env 'NoSuchEnv-v0'"),
    Case(
        "train --env MountainCarContinuous-v0",
        [*TRAIN, "--env", "MountainCarContinuous-v0"],
        "TAMER needs discrete actions",
    ),
    # settings that cannot work
    Case(
        "train --agent rl --blend action_biasing",
        [*TRAIN, "--agent", "rl", "--blend", "action_biasing"],
        "--blend applies only to --agent tamer+rl",
    ),
    Case(
        "train --agent tamer+rl --blend q_init (simultaneous, no --leave-after)",
        [*TRAIN, "--agent", "tamer+rl", "--blend", "q_init"],
        "--blend q_init adds Ĥ to Q when the teacher leaves",
    ),
]


def fill(text: str, tmp: Path) -> str:
    return text.replace("{tmp}", str(tmp)).replace("READ_ONLY", read_only_out(tmp))


def snapshot(path: Path) -> dict[str, bytes] | None:
    """Every file below ``path`` with its bytes; None when ``path`` does not exist."""
    try:
        if not path.exists():
            return None
    except OSError:  # a name too long to look up does not exist either
        return None
    if path.is_file():
        return {"": path.read_bytes()}
    return {p.relative_to(path).as_posix(): p.read_bytes() if p.is_file() else b"/" for p in path.rglob("*")}


def run_case(case: Case, tmp: Path) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the case's command; checks nothing."""
    import contextlib
    import io
    import sys

    if case.setup is not None:
        case.setup(tmp)
    sys.path.insert(0, str(tmp))  # the blend modules the plug-in cases write
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([fill(a, tmp) for a in case.argv])
            except SystemExit as e:  # argparse's own errors
                code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.path.remove(str(tmp))
        for name in BLEND_MODULES:
            sys.modules.pop(name.removesuffix(".py"), None)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module", autouse=True)
def a_trained_run(tmp_path_factory):
    from tamer.config import Config
    from tamer.train import train

    run = tmp_path_factory.mktemp("trained") / "run"
    train(Config(env="tamer/GridWorld-v0", episodes=1), run, progress=False)
    os.environ["TAMER_TEST_RUN"] = str(run)
    yield run
    os.environ.pop("TAMER_TEST_RUN", None)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case: Case, tmp_path: Path):
    if case.setup is not None:
        case.setup(tmp_path)
    before = {w: snapshot(Path(fill(w, tmp_path))) for w in case.watch}
    setup, case.setup = case.setup, None
    try:
        code, out, err = run_case(case, tmp_path)
    finally:
        case.setup = setup
        if (tmp_path / "ro").exists():
            (tmp_path / "ro").chmod(0o700)
    assert code == 2, (code, err)
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and case.expect in err, err
    assert out == "", out
    for w, snap in before.items():
        assert snapshot(Path(fill(w, tmp_path))) == snap, f"{w} changed"


def test_the_table_script_prints_every_case():
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "experiments" / "bad_inputs.py"
    result = subprocess.run(
        [sys.executable, str(script), "--only", "train --seed -1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "| train --seed -1 | seed must be >= 0, got -1 | 2 |" in result.stdout


def test_overwrite_checks_everything_before_deleting_and_never_empties_the_working_folder(
    tmp_path, monkeypatch, capsys
):
    """``compare --overwrite`` with a bad ``--methods`` deletes nothing; ``--out .`` (or a parent of the
    working folder) is refused by every command that can overwrite, and the folder keeps its files."""
    from tamer.cli import main

    kept = tmp_path / "victim" / "notes.txt"
    kept.parent.mkdir()
    kept.write_text("important")
    args = ["compare", "--env", "MountainCar-v0", "--seeds", "1", "--episodes", "1", "--overwrite"]
    assert main([*args, "--out", str(kept.parent), "--methods", "nonsense"]) == 2
    assert "unknown method 'nonsense'" in capsys.readouterr().err and kept.exists()
    monkeypatch.chdir(kept.parent)
    for command in (
        [*args, "--out", "."],
        [*args, "--out", ".."],
        ["train", "--env", "MountainCar-v0", "--episodes", "1", "--quiet", "--out", ".", "--overwrite"],
    ):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert "which --overwrite would empty" in err and len(err.splitlines()) == 1, err
        assert kept.read_text() == "important"
    assert main([*args[:-1], "--out", str(kept.parent), "--methods", ","]) == 2
    assert "names no method" in capsys.readouterr().err


@pytest.mark.parametrize(
    "env_id", ['tamer/GridWorld-v0(obs_type="pixels")', 'tamer/GridWorldPixels-v0(obs_type="index")']
)
def test_the_grid_world_teacher_reads_the_observations_the_env_was_made_with(env_id, capsys):
    from tamer.cli import main

    assert main(["train", "--env", env_id, "--episodes", "1", "--quiet"]) == 0
    assert "tamer on" in capsys.readouterr().out
