"""The run configuration: one flat dataclass, every field typed, defaulted and documented.

Flat on purpose: a sweep can grid over any field by name, the CLI has one ``--flag`` per field whose help
text is the field's doc, and a run folder's ``config.json`` is the whole story of the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tamer.errors import ConfigError


def knob(default, doc: str, choices: tuple | None = None):
    return field(default=default, metadata={"doc": doc, "choices": choices})


class Settings:
    """A dataclass of knobs that round-trips through JSON, checking names and types on the way in."""

    KIND = "config"  # how errors name it

    def validate(self):
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None):
        """Build from a dict (a saved config.json, a TOML table), checking names and types."""
        source = source or cls.KIND
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


@dataclass
class Config(Settings):
    # --- what runs
    env: str = knob("MountainCar-v0", "Gymnasium environment id (discrete actions), e.g. tamer/GridWorld-v0.")
    agent: str = knob(
        "tamer",
        "tamer: act on Ĥ only; rl: MDP reward only; tamer+rl: both, combined by --blend.",
        ("tamer", "rl", "tamer+rl"),
    )
    episodes: int = knob(20, "Episodes to train.")
    seed: int = knob(0, "Seeds the env, the agent and the teacher; same config + seed = same numbers.")
    max_steps: int = knob(0, "Cap on steps per episode; 0 keeps the environment's own limit.")
    # --- the teacher
    teacher: str = knob(
        "oracle",
        "oracle: simulated teacher from the env's oracle; replay: a recorded log; none.",
        ("oracle", "replay", "none"),
    )
    feedback_log: str = knob(
        "", "Feedback log (CSV time,step,episode,value) to replay with --teacher replay."
    )
    step_rate: float = knob(
        0.0,
        "Env steps per second: the virtual clock's rate headless, the agent's pace live. 0 = the env's "
        "metadata['teaching_step_rate'], else 10 (Mountain Car's pace; a grid world wants about 1).",
    )
    feedback_prob: float = knob(0.5, "Probability that the simulated teacher judges a step.")
    error_rate: float = knob(0.05, "Probability that a judgement has the wrong sign.")
    feedback_mode: str = knob(
        "both", "both; positive (only praise); negative (only punish).", ("both", "positive", "negative")
    )
    fatigue: float = knob(0.0, "Teacher's feedback probability halves every this many seconds; 0 = tireless.")
    leave_after: int = knob(0, "Teacher gives no feedback from this episode on; 0 = stays to the end.")
    # --- credit assignment (Knox & Stone 2009)
    delay: str = knob("uniform", "Delay density of feedback after the event it judges.", ("uniform", "gamma"))
    delay_min: float = knob(0.2, "Uniform delay: lower end, seconds (Knox & Stone 2009: 0.2).")
    delay_max: float = knob(0.8, "Uniform delay: upper end, seconds (Knox & Stone 2009: 0.8).")
    gamma_shape: float = knob(2.0, "Gamma delay: shape k.")
    gamma_scale: float = knob(0.28, "Gamma delay: scale θ, seconds (mode (k-1)θ = 0.28 s).")
    # --- features and the model Ĥ
    features: str = knob(
        "auto", "auto: one-hot for Discrete, tile coding for Box.", ("auto", "tile", "rbf", "onehot")
    )
    tilings: int = knob(8, "Tile coding: number of tilings.")
    bins: int = knob(8, "Tile coding: tiles per dimension per tiling.")
    tile_offsets: str = knob("asymmetric", "Tile coding: offsets between tilings.", ("asymmetric", "uniform"))
    rbf_centers: int = knob(5, "RBF: centres per dimension.")
    rbf_width: float = knob(1.0, "RBF: width, in units of the spacing between centres.")
    obs_low: str = knob("", "Comma-separated lower bounds of the observation, for unbounded dimensions.")
    obs_high: str = knob("", "Comma-separated upper bounds of the observation.")
    h_lr: float = knob(0.2, "Step size of Ĥ's gradient descent, normalised by the feature norm.")
    epsilon: float = knob(0.0, "TAMER: probability of a random action.")
    # --- TAMER+RL (Knox & Stone 2010, 2012)
    blend: str = knob(
        "control_sharing",
        "How Ĥ and Q combine for --agent tamer+rl: reward_shaping, q_augmentation, "
        "action_biasing, control_sharing, potential_shaping, h_feature, extra_action, q_init, h_as_reward, "
        "or your own as package.module:ClassName.",
    )
    beta: float = knob(1.0, "Weight β of Ĥ in the blend (>= 0).")
    beta_schedule: str = knob(
        "feedback",
        "episode_exp: β·decay^episode; episode_linear: β - decay·episode; step_exp: "
        "β·decay^step; feedback: β·decay^(steps since feedback); region: β kept local to recently "
        "taught states by traces decaying per step; constant.",
        ("constant", "episode_exp", "episode_linear", "step_exp", "feedback", "region"),
    )
    beta_decay: float = knob(
        0.995,
        "Decay of β per the schedule's unit (1 = none). The default with the feedback schedule keeps β "
        "while feedback flows and halves it after ~140 silent steps.",
    )
    normalize: str = knob(
        "none",
        "q_range: rescale Ĥ so its running spread across actions matches Q's; β is then scale-free.",
        ("none", "q_range"),
    )
    mode: str = knob(
        "simultaneous",
        "simultaneous: Ĥ and Q learn at once; sequential: --h-episodes of TAMER with the "
        "teacher first, then Ĥ is frozen and the remaining episodes run RL with the blend.",
        ("simultaneous", "sequential"),
    )
    h_episodes: int = knob(10, "Sequential mode: episodes of TAMER training before the RL phase.")
    rl: str = knob(
        "sarsa",
        "MDP-reward learner: sarsa (Sarsa(λ)), qlearning (Watkins Q(λ)) or dqn (deep Q-network; give it "
        "--gamma 0.99).",
        ("sarsa", "qlearning", "dqn"),
    )
    rl_lr: float = knob(0.5, "RL step size, normalised by the feature norm (0.5 = α 0.5/tilings).")
    gamma: float = knob(1.0, "RL discount factor γ.")
    lam: float = knob(0.9, "RL trace decay λ.")
    rl_epsilon: float = knob(0.0, "RL ε at the start (optimistic q_init explores without it).")
    rl_epsilon_decay: float = knob(1.0, "RL ε multiplied by this each episode.")
    rl_epsilon_min: float = knob(0.0, "RL ε floor.")
    q_init: float = knob(0.0, "Initial Q value of every state-action (0 is optimistic for -1 rewards).")
    # --- neural models (Deep TAMER) and DQN
    model: str = knob(
        "linear",
        "Ĥ model: linear (over --features); mlp (vector observations) or cnn (image observations), the "
        "networks of Deep TAMER (Warnell et al. 2018).",
        ("linear", "mlp", "cnn"),
    )
    device: str = knob(
        "cpu", "Torch device of neural models; auto = CUDA when present.", ("cpu", "cuda", "auto")
    )
    torch_threads: int = knob(1, "Torch CPU threads; small nets gain nothing from more.")
    h_hidden: str = knob("64,64", "Neural Ĥ: hidden layer sizes (after the convolutions, for cnn).")
    h_net_lr: float = knob(
        0.0, "Neural Ĥ: Adam step size; 0 picks 3e-3 for mlp, 1e-3 for cnn (unreliable at 3e-3)."
    )
    h_buffer: int = knob(10000, "Neural Ĥ: feedback replay buffer capacity, in (s, a, credit, h) samples.")
    h_batch: int = knob(32, "Neural Ĥ: minibatch drawn from the feedback buffer per update.")
    h_updates: int = knob(
        4, "Neural Ĥ: gradient steps per feedback (the first with the new samples): scarce labels get reused."
    )
    frame_stack: int = knob(1, "Image observations: frames stacked on the channel axis (>1 shows motion).")
    downsample: int = knob(1, "Image observations: mean-pool frames by this factor.")
    dqn_hidden: str = knob("256,256", "DQN: hidden layer sizes.")
    dqn_lr: float = knob(2.3e-3, "DQN: Adam step size (RL Zoo's CartPole value).")
    dqn_buffer: int = knob(50000, "DQN: replay buffer capacity, in transitions.")
    dqn_batch: int = knob(64, "DQN: minibatch size.")
    dqn_learning_starts: int = knob(1000, "DQN: env steps before the first gradient step.")
    dqn_train_freq: int = knob(256, "DQN: env steps between training rounds.")
    dqn_gradient_steps: int = knob(128, "DQN: gradient steps per training round.")
    dqn_target_period: int = knob(10, "DQN: env steps between copies of the online net into the target net.")
    dqn_epsilon_start: float = knob(1.0, "DQN: ε at the first step.")
    dqn_epsilon_end: float = knob(0.04, "DQN: ε after --dqn-epsilon-steps (linear in between).")
    dqn_epsilon_steps: int = knob(8000, "DQN: env steps over which ε falls from start to end.")

    def validate(self) -> Config:
        for f in dataclasses.fields(self):
            value, choices = getattr(self, f.name), f.metadata.get("choices")
            if choices and value not in choices:
                raise ConfigError(f"unknown {f.name} {value!r}; known: {', '.join(choices)}")
        for name in ("episodes",):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("h_lr", "rl_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        for name in ("max_steps", "fatigue", "leave_after", "beta", "h_episodes", "step_rate", "h_net_lr"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        for name in (
            "feedback_prob",
            "error_rate",
            "epsilon",
            "gamma",
            "lam",
            "rl_epsilon",
            "rl_epsilon_min",
        ):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name.replace('_', '-')} must be in [0, 1], got {getattr(self, name)}")
        if self.mode == "sequential" and self.agent == "tamer+rl" and self.h_episodes >= self.episodes:
            raise ConfigError(
                f"sequential mode needs h-episodes < episodes, got {self.h_episodes} >= {self.episodes}"
            )
        if self.teacher == "replay" and not self.feedback_log:
            raise ConfigError("--teacher replay needs --feedback-log FILE")
        return self


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
        kind, choices = type(f.default), f.metadata.get("choices")
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
