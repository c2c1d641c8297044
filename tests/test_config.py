"""The config's declared checks: every bad value is one ConfigError line naming its flag, wherever it comes
from (Python, a flag, a config.json, a sweep file), and a valid config passes unchanged."""

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from tamer.cli import main, make_parser
from tamer.config import Config, Settings, knob
from tamer.errors import ConfigError
from tamer.sweep import load_experiment

NAN, INF = math.nan, math.inf

BAD = [
    # floats: finite, within their bounds
    ({"h_lr": INF}, "h-lr must be > 0 and finite, got inf"),
    ({"h_lr": NAN}, "h-lr must be > 0 and finite, got nan"),
    ({"h_lr": 0.0}, "h-lr must be > 0"),
    ({"rl_lr": -1.0}, "rl-lr must be > 0"),
    ({"q_init": NAN}, "q-init must be a finite number, got nan"),
    ({"q_init": -INF}, "q-init must be a finite number, got -inf"),
    ({"fatigue": NAN}, "fatigue must be >= 0 and finite, got nan"),
    ({"step_rate": INF}, "step-rate must be >= 0 and finite, got inf"),
    ({"step_rate": -1.0}, "step-rate must be >= 0"),
    ({"feedback_prob": 1.5}, "feedback-prob must be in [0, 1], got 1.5"),
    ({"error_rate": NAN}, "error-rate must be in [0, 1], got nan"),
    ({"gamma": -0.1}, "gamma must be in [0, 1]"),
    ({"rl_epsilon_decay": 0.0}, "rl-epsilon-decay must be in (0, 1], got 0.0"),
    ({"beta": -0.5}, "beta must be >= 0"),
    ({"beta_decay": NAN}, "beta-decay must be >= 0 and finite, got nan"),
    ({"delay_min": -0.1}, "delay-min must be >= 0"),
    ({"gamma_shape": 0.0}, "gamma-shape must be > 0"),
    ({"gamma_scale": INF}, "gamma-scale must be > 0 and finite, got inf"),
    ({"rbf_width": 0.0}, "rbf-width must be > 0"),
    ({"dqn_lr": NAN}, "dqn-lr must be > 0 and finite"),
    ({"dqn_epsilon_end": 2.0}, "dqn-epsilon-end must be in [0, 1]"),
    # ints: seeds and counts not negative, sizes at least 1 and not absurd
    ({"seed": -1}, "seed must be >= 0, got -1"),
    ({"episodes": 0}, "episodes must be >= 1, got 0"),
    ({"max_steps": -5}, "max-steps must be >= 0"),
    ({"leave_after": -1}, "leave-after must be >= 0"),
    ({"h_episodes": -1}, "h-episodes must be >= 0"),
    ({"tilings": 0}, "tilings must be in [1, 1024], got 0"),
    ({"tilings": 10**8}, "tilings must be in [1, 1024], got 100000000"),
    ({"bins": -3}, "bins must be in [1, 1024]"),
    ({"rbf_centers": 1}, "rbf-centers must be in [2, 100]"),
    ({"rbf_centers": 10**6}, "rbf-centers must be in [2, 100]"),
    ({"h_buffer": 0}, "h-buffer must be in [1, 10000000]"),
    ({"dqn_buffer": 10**12}, "dqn-buffer must be in [1, 10000000], got 1000000000000"),
    ({"h_batch": 0}, "h-batch must be in [1, 65536]"),
    ({"dqn_batch": 10**9}, "dqn-batch must be in [1, 65536]"),
    ({"h_updates": 0}, "h-updates must be in [1, 1000]"),
    ({"frame_stack": 0}, "frame-stack must be in [1, 64]"),
    ({"downsample": 10**6}, "downsample must be in [1, 64]"),
    ({"torch_threads": 0}, "torch-threads must be in [1, 1024]"),
    ({"dqn_train_freq": 0}, "dqn-train-freq must be >= 1"),
    ({"dqn_epsilon_steps": -1}, "dqn-epsilon-steps must be >= 0"),
    ({"h_hidden": "64,0"}, "h-hidden must be 1 to 32 comma-separated layer sizes"),
    ({"dqn_hidden": "big"}, "dqn-hidden must be 1 to 32 comma-separated layer sizes"),
    ({"dqn_hidden": "100000000"}, "dqn-hidden must be 1 to 32 comma-separated layer sizes in [1, 65536]"),
    # types
    ({"tilings": 8.5}, "tilings must be an integer, got 8.5"),
    ({"seed": True}, "seed must be an integer, got True"),
    ({"h_lr": "fast"}, "h-lr must be a number, got 'fast'"),
    # choices (Literal) and built-in names or plug-ins
    ({"agent": "robot"}, "unknown agent 'robot'; known: tamer, rl, tamer+rl"),
    ({"features": "tiles"}, "unknown features 'tiles'; known: auto, tile,"),
    ({"feedback_mode": "mixed"}, "unknown feedback-mode 'mixed'; known: both, positive, negative"),
    ({"rl": "td(0)"}, "unknown rl 'td(0)'; known: sarsa, qlearning, dqn"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
    ({"delay": "weibull"}, "unknown delay 'weibull'"),
    ({"blend": "magic"}, "unknown blend 'magic'; known: tamer, rl, reward_shaping"),
    ({"blend": ":Nameless"}, "unknown blend ':Nameless'"),
    ({"beta_schedule": "cosine"}, "unknown beta-schedule 'cosine'; known: constant,"),
    (
        {"teacher": "ghost"},
        "unknown teacher 'ghost'; known: oracle, replay, none, or package.module:ClassName",
    ),
    # cross-field rules
    ({"delay_min": 0.8, "delay_max": 0.2}, "delay-max must be > delay-min for --delay uniform"),
    (
        {"mode": "sequential", "agent": "tamer+rl", "episodes": 5, "h_episodes": 5},
        "needs h-episodes < episodes",
    ),
    ({"teacher": "replay"}, "--teacher replay needs --feedback-log"),
    ({"agent": "tamer+rl", "blend": "q_init", "model": "mlp"}, "--blend q_init needs Ĥ and Q linear"),
    ({"agent": "tamer+rl", "blend": "q_init", "rl": "dqn"}, "--blend q_init needs Ĥ and Q linear"),
    (
        {"agent": "tamer+rl", "beta_schedule": "region", "model": "mlp"},
        "--beta-schedule region needs a linear Ĥ",
    ),
    ({"agent": "tamer+rl", "beta_decay": 1.5}, "beta-decay must be in (0, 1] for --beta-schedule feedback"),
]


@pytest.mark.parametrize("fields, message", BAD, ids=[str(f) for f, _ in BAD])
def test_bad_value_is_one_line_naming_the_flag(fields, message):
    with pytest.raises(ConfigError) as e:
        Config(**fields).validate()
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"blend": "mypkg.blends:Mixed", "agent": "tamer+rl"},
        {"beta_schedule": "mypkg.schedules:Slow(rate=0.5)", "agent": "tamer+rl"},
        {"teacher": "mypkg.teachers:Noisy"},
        {"agent": "tamer+rl", "beta_schedule": "episode_linear", "beta_decay": 2.0},
        {"agent": "tamer", "beta_schedule": "region", "model": "mlp"},  # no β without tamer+rl
        {"delay": "gamma", "delay_min": 0.9, "delay_max": 0.1},  # the uniform window is unused
        {"seed": 2**40, "h_lr": 1e-9, "q_init": -1e6, "tilings": 1024, "dqn_buffer": 10_000_000},
    ],
)
def test_valid_configs_pass_unchanged(fields):
    cfg = Config(**fields)
    assert cfg.validate() is cfg and cfg == Config(**fields)


def test_defaults_are_valid_and_every_number_declares_its_bounds():
    Config().validate()
    for f in dataclasses.fields(Config):
        if type(f.default) is int:
            assert f.metadata["bounds"].low is not None, f.name


def test_choices_are_written_once_as_literal_and_listed_in_help():
    help_text = " ".join(make_parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    assert "One of: tamer, rl, tamer+rl, bc" in help_text and "One of: both, positive, negative." in help_text


def test_positional_choices_of_knob_still_work():
    @dataclass
    class Small(Settings):
        KIND = "small config"
        colour: str = knob("red", "A colour.", ("red", "green"))
        size: float = knob(1.0, "A size.")

    assert Small.from_dict({"colour": "green"}).colour == "green"
    with pytest.raises(ConfigError, match="unknown colour 'blue'; known: red, green"):
        Small(colour="blue").validate()
    with pytest.raises(ConfigError, match="size must be a finite number, got inf"):
        Small(size=INF).validate()


@pytest.mark.parametrize(
    "text, kind", [("[1, 2]", "list"), ("null", "null"), ('"tamer"', "str"), ("3", "int")]
)
def test_config_json_that_is_not_a_table_is_one_line_naming_the_file(tmp_path: Path, text, kind):
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"config.json: a config must be a table of fields .*got {kind}$"):
        Config.load(path)


def test_config_json_with_nan_is_refused(tmp_path: Path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"h_lr": NAN, "episodes": 2}))
    with pytest.raises(ConfigError, match="h-lr must be > 0 and finite, got nan"):
        Config.load(path)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--h-lr", "inf"], "h-lr must be > 0 and finite, got inf"),
        (["--q-init", "nan"], "q-init must be a finite number, got nan"),
        (["--fatigue", "nan"], "fatigue must be >= 0 and finite, got nan"),
        (["--step-rate", "inf"], "step-rate must be >= 0 and finite, got inf"),
        (["--seed", "-3"], "seed must be >= 0, got -3"),
        (["--tilings", "100000000"], "tilings must be in [1, 1024]"),
        (["--dqn-buffer", "1000000000000"], "dqn-buffer must be in [1, 10000000]"),
        (["--teacher", "ghost"], "unknown teacher 'ghost'"),
    ],
)
def test_cli_refuses_with_one_line_and_exit_code_2(capsys, args, message):
    assert main(["train", "--quiet", *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and message in captured.err, captured.err
    assert captured.out == ""


def test_cli_refuses_a_config_json_holding_a_list(tmp_path: Path, capsys):
    path = tmp_path / "config.json"
    path.write_text("[]")
    assert main(["train", "--config", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: a config must be a table of fields" in err


@pytest.mark.parametrize(
    "text, message",
    [
        ("[grid]\nbeta = [1.0, nan]\n", "cell beta=nan: beta must be >= 0 and finite, got nan"),
        ("[grid]\nh_lr = [0.2, inf]\n", "cell h_lr=inf: h-lr must be > 0 and finite, got inf"),
        ("[base]\nq_init = -inf\n", "cell base: q-init must be a finite number, got -inf"),
        ("[base]\ntilings = 100000000\n", "tilings must be in [1, 1024]"),
        ("[grid]\nagent = ['tamer', 'robot']\n", "cell agent=robot: unknown agent 'robot'"),
        ("seeds = [-1, 0]\n", "seeds: seed must be >= 0, got -1"),
        ("[grid]\nseed = [0, -2]\n", "seeds: seed must be >= 0, got -2"),
        ("[base]\nseed = -1\n", "seed must be >= 0, got -1"),
        ("[base]\nenv = 'MountainCar-v9'\n", "cannot make env 'MountainCar-v9'"),
        ("[base]\nenv = 'tamer/GridWrld-v0'\n", "(did you mean 'tamer/GridWorld-v0'?)"),
        ("[base]\nagent = 'tamer+rl'\nblend = 'no.such:Blend'\n", "cannot load blend 'no.such:Blend'"),
        (
            "[base]\nagent = 'tamer+rl'\nbeta_schedule = 'tamer.schedules:Nope'\n",
            "tamer.schedules has no 'Nope'",
        ),
    ],
)
def test_bad_sweep_is_one_line_naming_file_and_field(tmp_path: Path, capsys, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text if "[base]" in text else text + "\n[base]\nepisodes = 2\n")
    assert main(["sweep", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and message in err, err


def test_sweep_check_builds_no_env(monkeypatch):
    import gymnasium

    def refuse(*args, **kwargs):
        raise AssertionError("check must not make an env")

    monkeypatch.setattr(gymnasium, "make", refuse)
    for path in sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml")):
        load_experiment(path).check()
