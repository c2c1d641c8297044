"""Fingerprint the numbers a config and seed produce, to show that a refactor keeps them bit for bit.

Trains a fixed matrix of short runs (every agent kind, blend, mode, schedule, model and teacher on the
built-in environments) and prints one SHA-256 per run over metrics.csv (without the timing column),
feedback.csv and every array in model.npz. Run it on two commits and diff the output::

    python experiments/fingerprint.py > after.txt
    git stash; python experiments/fingerprint.py > before.txt; git stash pop; diff before.txt after.txt
"""

from __future__ import annotations

import csv
import hashlib
import sys
import tempfile
import zipfile
from pathlib import Path

from tamer.config import Config
from tamer.train import train

BASE_COLUMNS = ("episode", "return", "length", "feedback", "ignored")  # the numbers before new columns
MC = {"env": "MountainCar-v0", "episodes": 4}
BLENDS = (
    "reward_shaping",
    "q_augmentation",
    "action_biasing",
    "control_sharing",
    "potential_shaping",
    "h_feature",
    "extra_action",
    "q_init",
    "h_as_reward",
)
MATRIX: list[dict] = [
    {**MC, "agent": "tamer"},
    {**MC, "agent": "rl"},
    {**MC, "agent": "rl", "rl": "qlearning", "rl_epsilon": 0.1},
    *({**MC, "agent": "tamer+rl", "blend": b, "leave_after": 2} for b in BLENDS),
    {**MC, "agent": "tamer+rl", "blend": "action_biasing", "normalize": "q_range", "beta_schedule": "region"},
    {**MC, "agent": "tamer+rl", "blend": "control_sharing", "mode": "sequential", "h_episodes": 2},
    {
        **MC,
        "agent": "tamer",
        "delay": "gamma",
        "error_rate": 0.2,
        "fatigue": 5.0,
        "feedback_mode": "positive",
    },
    {**MC, "agent": "tamer", "features": "rbf", "epsilon": 0.1},
    {"env": "CartPole-v1", "episodes": 4, "agent": "tamer"},
    {"env": "Acrobot-v1", "episodes": 2, "agent": "tamer"},
    {"env": "tamer/GridWorld-v0", "episodes": 4, "agent": "tamer+rl", "blend": "control_sharing"},
    {"env": "CartPole-v1", "episodes": 4, "agent": "tamer", "model": "mlp"},
    {
        "env": "CartPole-v1",
        "episodes": 8,
        "agent": "rl",
        "rl": "dqn",
        "gamma": 0.99,
        "dqn_learning_starts": 50,
    },
    {"env": "tamer/GridWorldPixels-v0", "episodes": 2, "agent": "tamer", "model": "cnn"},
]


def digest(run: Path) -> str:
    h = hashlib.sha256()
    with open(run / "metrics.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            h.update(repr(sorted((k, row[k]) for k in BASE_COLUMNS)).encode())
    h.update((run / "feedback.csv").read_bytes())
    with zipfile.ZipFile(run / "model.npz") as z:
        for name in sorted(z.namelist()):
            h.update(name.encode() + z.read(name))
    return h.hexdigest()[:16]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for i, fields in enumerate(MATRIX):
            out = Path(tmp) / str(i)
            train(Config(**fields), out, progress=False)
            label = " ".join(f"{k}={v}" for k, v in fields.items())
            print(f"{digest(out)}  {label}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
