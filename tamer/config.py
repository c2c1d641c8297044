"""The run configuration: one flat dataclass, every field typed, defaulted and documented.

Flat on purpose: a sweep can grid over any field by name, the CLI has one ``--flag`` per field whose help
text is the field's doc, and a run folder's ``config.json`` is the whole story of the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import json
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from tamer.errors import ConfigError


@dataclass(frozen=True)
class Bounds:
    """Where a number may lie: ``low``/``high`` ends (None = unbounded), each closed unless marked open."""

    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = False

    def holds(self, value) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self, kind: type) -> str:
        """'in [0, 1]', '> 0 and finite', '>= 0', 'a finite number', ... (floats are always finite)."""
        low = f"{'>' if self.low_open else '>='} {self.low}" if self.low is not None else ""
        high = f"{'<' if self.high_open else '<='} {self.high}" if self.high is not None else ""
        if low and high:
            return f"in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"
        if low or high:
            return (low or high) + (" and finite" if kind is float else "")
        return "a finite number" if kind is float else "an integer"


def knob(
    default,
    doc: str,
    choices: tuple | None = None,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    builtins: tuple[str, ...] | str | None = None,
):
    """A config field: its default, its ``--help`` text and what values it takes.

    Choices are best given as the field's type, ``Literal["a", "b"]`` (``choices`` is the older spelling).
    Numbers take bounds ``ge``/``gt`` (>=, >) and ``le``/``lt`` (<=, <); a float must be finite besides.
    ``builtins``: a str field that takes a built-in name or a plug-in ``package.module:Name``; the names as a
    tuple, or as ``"module:ATTR"``, a registry (dict or tuple) imported when first checked.
    """
    if ge is not None and gt is not None or le is not None and lt is not None:
        raise TypeError("give one low bound (ge or gt) and one high bound (le or lt)")
    bounds = Bounds(gt if gt is not None else ge, gt is not None, lt if lt is not None else le, lt is not None)
    return field(
        default=default, metadata={"doc": doc, "choices": choices, "bounds": bounds, "builtins": builtins}
    )


def rule(method: Callable) -> Callable:
    """Marks a ``Settings`` method as a cross-field rule: ``validate`` calls it after checking every field
    on its own; it raises ConfigError (one line naming the flags) when the rule is broken."""
    method.is_rule = True  # type: ignore[attr-defined]
    return method


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def field_choices(cls: type, f: dataclasses.Field) -> tuple | None:
    """A field's choices: the values of its ``Literal[...]`` type, else its knob's ``choices``."""
    hint = type_hints(cls).get(f.name)
    return get_args(hint) if get_origin(hint) is Literal else f.metadata.get("choices")


@functools.cache
def builtin_names(spec: tuple[str, ...] | str) -> tuple[str, ...]:
    if isinstance(spec, str):  # "module:ATTR", imported only when a value is checked
        module, _, attr = spec.partition(":")
        return tuple(getattr(importlib.import_module(module), attr))
    return tuple(spec)


def is_plugin_spec(value: str) -> bool:
    """``package.module:Name`` (maybe with ``(k=v, ...)`` after it): the form a plug-in is named in."""
    module, sep, name = value.partition(":")
    return bool(sep and module.strip() and name.strip())


def flag_name(name: str) -> str:
    return name.replace("_", "-")


def check_field(cls: type, f: dataclasses.Field, value) -> None:
    """One field's value against what its declaration allows: type, choices, built-in names, bounds."""
    flag, kind = flag_name(f.name), type(f.default)
    if kind in (int, float):
        real = numbers.Integral if kind is int else numbers.Real
        if isinstance(value, bool) or not isinstance(value, real):
            raise ConfigError(f"{flag} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
        bounds = f.metadata.get("bounds") or Bounds()
        if (kind is float and not math.isfinite(value)) or not bounds.holds(value):
            raise ConfigError(f"{flag} must be {bounds.describe(kind)}, got {value}")
        return
    choices = field_choices(cls, f)
    if choices is not None and value not in choices:
        raise ConfigError(f"unknown {flag} {value!r}; known: {', '.join(map(str, choices))}")
    builtins = f.metadata.get("builtins")
    if builtins is not None:
        names = builtin_names(builtins)
        if not isinstance(value, str) or (value not in names and not is_plugin_spec(value)):
            raise ConfigError(f"unknown {flag} {value!r}; known: {', '.join(names)}, or package.module:ClassName")


class Settings:
    """A dataclass of knobs that round-trips through JSON, checking names and types on the way in."""

    KIND = "config"  # how errors name it

    def validate(self):
        """Every field against its declaration (type, choices, bounds, finiteness), then the class's
        cross-field rules (methods marked ``@rule``); the first problem is one ConfigError line."""
        cls = type(self)
        for f in dataclasses.fields(self):
            check_field(cls, f, getattr(self, f.name))
        for klass in reversed(cls.__mro__):
            for method in vars(klass).values():
                if getattr(method, "is_rule", False):
                    method(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None):
        """Build from a dict (a saved config.json, a TOML table), checking names and types."""
        source = source or cls.KIND
        if not isinstance(data, dict):
            kind = "null" if data is None else type(data).__name__
            raise ConfigError(f"{source}: a {cls.KIND} must be a table of fields ({{...}}), got {kind}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for name, value in data.items():
            if name not in fields:
                raise ConfigError(f"{source}: unknown {cls.KIND} field {name!r}")
            values[name] = coerce(name, value, type(fields[name].default), source)
        return cls(**values).validate()

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read {cls.KIND} {path}: {e}") from None
        return cls.from_dict(data, str(path))


# Upper bounds of sizes: far beyond any useful value, low enough that a typo (1e8 tilings) is refused in one
# line instead of allocating gigabytes.
MAX_TILINGS, MAX_BINS, MAX_RBF_CENTERS = 1024, 1024, 100
MAX_BUFFER, MAX_BATCH, MAX_LAYER, MAX_LAYERS = 10_000_000, 65_536, 65_536, 32


@dataclass
class Config(Settings):
    # --- what runs
    env: str = knob("MountainCar-v0", "Gymnasium environment id (discrete actions), e.g. tamer/GridWorld-v0.")
    agent: Literal["tamer", "rl", "tamer+rl"] = knob(
        "tamer", "tamer: act on Ĥ only; rl: MDP reward only; tamer+rl: both, combined by --blend."
    )
    episodes: int = knob(20, "Episodes to train.", ge=1)
    seed: int = knob(0, "Seeds the env, the agent and the teacher; same config + seed = same numbers.", ge=0)
    callback: str = knob(
        "",
        "Your own callbacks, comma-separated package.module:ClassName; each is built with no arguments and "
        "called at run start, each step, each episode end and run end (see tamer.callbacks).",
    )
    max_steps: int = knob(0, "Cap on steps per episode; 0 keeps the environment's own limit.", ge=0)
    # --- the teacher
    teacher: str = knob(
        "oracle",
        "oracle: simulated teacher from --oracle; replay: a recorded log; none; or your own feedback "
        "source as package.module:ClassName.",
        builtins=("oracle", "replay", "none"),
    )
    oracle: str = knob(
        "",
        "What the simulated teacher approves of: empty = the built-in oracle of the env (found by its "
        "registered id); package.module:function for your own; run:PATH for a saved run's model.",
    )
    oracle_margin: float = knob(
        0.0,
        "--oracle run:PATH approves the actions whose value is within margin·(max − min) of the best, "
        "over the state's actions (0 = only the best, ties included; 1 = every action).",
        ge=0,
        le=1,
    )
    feedback_log: str = knob(
        "", "Feedback log (CSV time,step,episode,value) to replay with --teacher replay."
    )
    step_rate: float = knob(
        0.0,
        "Env steps per second: the virtual clock's rate headless, the agent's pace live. 0 = the env's "
        "metadata['teaching_step_rate'], else 10 (Mountain Car's pace; a grid world wants about 1).",
        ge=0,
    )
    feedback_prob: float = knob(0.5, "Probability that the simulated teacher judges a step.", ge=0, le=1)
    error_rate: float = knob(0.05, "Probability that a judgement has the wrong sign.", ge=0, le=1)
    feedback_mode: Literal["both", "positive", "negative"] = knob(
        "both", "both; positive (only praise); negative (only punish)."
    )
    fatigue: float = knob(
        0.0, "Teacher's feedback probability halves every this many seconds; 0 = tireless.", ge=0
    )
    leave_after: int = knob(0, "Teacher gives no feedback from this episode on; 0 = stays to the end.", ge=0)
    # --- credit assignment (Knox & Stone 2009)
    delay: Literal["uniform", "gamma"] = knob("uniform", "Delay density of feedback after the event it judges.")
    delay_min: float = knob(0.2, "Uniform delay: lower end, seconds (Knox & Stone 2009: 0.2).", ge=0)
    delay_max: float = knob(0.8, "Uniform delay: upper end, seconds (Knox & Stone 2009: 0.8).", gt=0)
    gamma_shape: float = knob(2.0, "Gamma delay: shape k.", gt=0)
    gamma_scale: float = knob(0.28, "Gamma delay: scale θ, seconds (mode (k-1)θ = 0.28 s).", gt=0)
    # --- features and the model Ĥ
    features: Literal["auto", "tile", "tile_pairs", "tile_dims", "rbf", "onehot"] = knob(
        "auto", "auto: one-hot for Discrete, tile coding for Box."
    )
    tilings: int = knob(8, "Tile coding: number of tilings.", ge=1, le=MAX_TILINGS)
    bins: int = knob(8, "Tile coding: tiles per dimension per tiling.", ge=1, le=MAX_BINS)
    tile_offsets: Literal["asymmetric", "uniform"] = knob("asymmetric", "Tile coding: offsets between tilings.")
    rbf_centers: int = knob(5, "RBF: centres per dimension.", ge=2, le=MAX_RBF_CENTERS)
    rbf_width: float = knob(1.0, "RBF: width, in units of the spacing between centres.", gt=0)
    obs_low: str = knob("", "Comma-separated lower bounds of the observation, for unbounded dimensions.")
    obs_high: str = knob("", "Comma-separated upper bounds of the observation.")
    h_lr: float = knob(0.2, "Step size of Ĥ's gradient descent, normalised by the feature norm.", gt=0)
    epsilon: float = knob(0.0, "TAMER: probability of a random action.", ge=0, le=1)
    # --- TAMER+RL (Knox & Stone 2010, 2012)
    blend: str = knob(
        "control_sharing",
        "How Ĥ and Q combine for --agent tamer+rl: reward_shaping, q_augmentation, "
        "action_biasing, control_sharing, potential_shaping, h_feature, extra_action, q_init, h_as_reward, "
        "or your own as package.module:ClassName.",
        builtins="tamer.blends:BLENDS",
    )
    beta: float = knob(1.0, "Weight β of Ĥ in the blend (>= 0).", ge=0)
    beta_schedule: str = knob(
        "feedback",
        "episode_exp: β·decay^episode; episode_linear: β - decay·episode; step_exp: "
        "β·decay^step; feedback: β·decay^(steps since feedback); region: β kept local to recently "
        "taught states by traces decaying per step; constant; or your own as package.module:ClassName.",
        builtins="tamer.schedules:SCHEDULES",
    )
    beta_decay: float = knob(
        0.995,
        "Decay of β per the schedule's unit (1 = none). The default with the feedback schedule keeps β "
        "while feedback flows and halves it after ~140 silent steps.",
        ge=0,
    )
    normalize: Literal["none", "q_range"] = knob(
        "none", "q_range: rescale Ĥ so its running spread across actions matches Q's; β is then scale-free."
    )
    mode: Literal["simultaneous", "sequential"] = knob(
        "simultaneous",
        "simultaneous: Ĥ and Q learn at once; sequential: --h-episodes of TAMER with the "
        "teacher first, then Ĥ is frozen and the remaining episodes run RL with the blend.",
    )
    h_episodes: int = knob(10, "Sequential mode: episodes of TAMER training before the RL phase.", ge=0)
    rl: Literal["sarsa", "qlearning", "dqn"] = knob(
        "sarsa",
        "MDP-reward learner: sarsa (Sarsa(λ)), qlearning (Watkins Q(λ)) or dqn (deep Q-network; give it "
        "--gamma 0.99).",
    )
    rl_lr: float = knob(0.5, "RL step size, normalised by the feature norm (0.5 = α 0.5/tilings).", gt=0)
    gamma: float = knob(1.0, "RL discount factor γ.", ge=0, le=1)
    lam: float = knob(0.9, "RL trace decay λ.", ge=0, le=1)
    rl_epsilon: float = knob(0.0, "RL ε at the start (optimistic q_init explores without it).", ge=0, le=1)
    rl_epsilon_decay: float = knob(1.0, "RL ε multiplied by this each episode.", gt=0, le=1)
    rl_epsilon_min: float = knob(0.0, "RL ε floor.", ge=0, le=1)
    q_init: float = knob(0.0, "Initial Q value of every state-action (0 is optimistic for -1 rewards).")
    # --- neural models (Deep TAMER) and DQN
    model: Literal["linear", "mlp", "cnn"] = knob(
        "linear",
        "Ĥ model: linear (over --features); mlp (vector observations) or cnn (image observations), the "
        "networks of Deep TAMER (Warnell et al. 2018).",
    )
    device: Literal["cpu", "cuda", "auto"] = knob("cpu", "Torch device of neural models; auto = CUDA when present.")
    torch_threads: int = knob(1, "Torch CPU threads; small nets gain nothing from more.", ge=1, le=1024)
    h_hidden: str = knob("64,64", "Neural Ĥ: hidden layer sizes (after the convolutions, for cnn).")
    h_net_lr: float = knob(
        0.0, "Neural Ĥ: Adam step size; 0 picks 3e-3 for mlp, 1e-3 for cnn (unreliable at 3e-3).", ge=0
    )
    h_buffer: int = knob(
        10000, "Neural Ĥ: feedback replay buffer capacity, in (s, a, credit, h) samples.", ge=1, le=MAX_BUFFER
    )
    h_batch: int = knob(32, "Neural Ĥ: minibatch drawn from the feedback buffer per update.", ge=1, le=MAX_BATCH)
    h_updates: int = knob(
        4,
        "Neural Ĥ: gradient steps per feedback (the first with the new samples): scarce labels get reused.",
        ge=1,
        le=1000,
    )
    frame_stack: int = knob(
        1, "Image observations: frames stacked on the channel axis (>1 shows motion).", ge=1, le=64
    )
    downsample: int = knob(1, "Image observations: mean-pool frames by this factor.", ge=1, le=64)
    dqn_hidden: str = knob("256,256", "DQN: hidden layer sizes.")
    dqn_lr: float = knob(2.3e-3, "DQN: Adam step size (RL Zoo's CartPole value).", gt=0)
    dqn_buffer: int = knob(50000, "DQN: replay buffer capacity, in transitions.", ge=1, le=MAX_BUFFER)
    dqn_batch: int = knob(64, "DQN: minibatch size.", ge=1, le=MAX_BATCH)
    dqn_learning_starts: int = knob(1000, "DQN: env steps before the first gradient step.", ge=0)
    dqn_train_freq: int = knob(256, "DQN: env steps between training rounds.", ge=1)
    dqn_gradient_steps: int = knob(128, "DQN: gradient steps per training round.", ge=1, le=100_000)
    dqn_target_period: int = knob(
        10, "DQN: env steps between copies of the online net into the target net.", ge=1
    )
    dqn_epsilon_start: float = knob(1.0, "DQN: ε at the first step.", ge=0, le=1)
    dqn_epsilon_end: float = knob(0.04, "DQN: ε after --dqn-epsilon-steps (linear in between).", ge=0, le=1)
    dqn_epsilon_steps: int = knob(8000, "DQN: env steps over which ε falls from start to end.", ge=0)

    # --- cross-field rules (``Settings.validate`` runs them, in this order, after the per-field checks)

    @rule
    def sequential_teaches_first(self) -> None:
        if self.mode == "sequential" and self.agent == "tamer+rl" and self.h_episodes >= self.episodes:
            raise ConfigError(
                f"sequential mode needs h-episodes < episodes, got {self.h_episodes} >= {self.episodes}"
            )

    @rule
    def replay_needs_log(self) -> None:
        if self.teacher == "replay" and not self.feedback_log:
            raise ConfigError("--teacher replay needs --feedback-log FILE")

    @rule
    def uniform_delay_is_a_window(self) -> None:
        if self.delay == "uniform" and not self.delay_min < self.delay_max:
            raise ConfigError(
                f"delay-max must be > delay-min for --delay uniform, got delay-min {self.delay_min} and "
                f"delay-max {self.delay_max}"
            )

    @rule
    def hidden_sizes(self) -> None:
        for name in ("h_hidden", "dqn_hidden"):
            text = getattr(self, name)
            try:
                sizes = [int(v) for v in text.split(",") if v.strip()]
            except ValueError:
                sizes = []
            if not 1 <= len(sizes) <= MAX_LAYERS or not all(1 <= n <= MAX_LAYER for n in sizes):
                raise ConfigError(
                    f"{flag_name(name)} must be 1 to {MAX_LAYERS} comma-separated layer sizes in "
                    f"[1, {MAX_LAYER}], got {text!r}"
                )

    def blend_parts(self) -> tuple[bool, bool, bool]:
        """(needs Ĥ, needs Q, needs both linear) of the tamer+rl blend: a built-in's class attributes; a
        plug-in's are unknown until it is built, so the defaults of ``tamer.blends.Blend``."""
        from tamer.blends import BLENDS

        blend = BLENDS.get(self.blend)
        if blend is None:
            return True, True, False
        return blend.needs_h, blend.needs_rl, getattr(blend, "needs_linear", False)

    @rule
    def linear_blend_needs_linear_models(self) -> None:
        if self.agent != "tamer+rl":
            return
        needs_h, needs_rl, needs_linear = self.blend_parts()
        if needs_linear and not (needs_h and self.model == "linear" and needs_rl and self.rl != "dqn"):
            raise ConfigError(
                f"--blend {self.blend} needs Ĥ and Q linear over the same features (--model linear, "
                f"not --rl dqn), got --model {self.model} --rl {self.rl}"
            )

    @rule
    def beta_schedule_fits(self) -> None:
        """β's schedule exists when a tamer+rl blend uses both Ĥ and Q."""
        if self.agent != "tamer+rl" or is_plugin_spec(self.beta_schedule) or not all(self.blend_parts()[:2]):
            return
        if self.beta_schedule != "episode_linear" and not 0 < self.beta_decay <= 1:
            raise ConfigError(
                f"beta-decay must be in (0, 1] for --beta-schedule {self.beta_schedule}, got {self.beta_decay}"
            )
        if self.beta_schedule == "region" and self.model != "linear":
            raise ConfigError(
                f"--beta-schedule region needs a linear Ĥ (--model linear; its traces live on Ĥ's "
                f"features), got --model {self.model}"
            )


def coerce(name: str, value, kind: type, source: str):
    """Check a value's type against the field's (ints are accepted where floats are expected)."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{source}: field {name!r} must be {kind.__name__}, got {value!r}")


def add_config_arguments(parser: argparse.ArgumentParser, cls=Config) -> None:
    """One ``--flag`` per config field; its help is the field's doc and default."""
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kind, choices = type(f.default), field_choices(cls, f)
        if kind is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=f.metadata["doc"]
            )
            continue
        listed = f" One of: {', '.join(choices)}." if choices else ""
        help_text = f"{f.metadata['doc']}{listed} (default: {f.default!r})"
        parser.add_argument(
            flag, type=kind, default=None, choices=choices, metavar=f.name.upper(), help=help_text
        )


def config_from_args(args: argparse.Namespace, base: Config | None = None, cls=Config) -> Config:
    """The base config (defaults, or a saved one) with every flag the user gave applied on top."""
    values = (base or cls()).to_dict()
    for f in dataclasses.fields(cls):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    return cls(**values).validate()
