"""DQN env steps/s while learning on CartPole, as a ratio to Stable-Baselines3's DQN in the same run, and
steps-to-475 of both on the same seeds.

    pip install -c constraints.txt -e ".[bench]"      # stable-baselines3, test-only
    python benchmarks/dqn_speed.py [--steps 20000] [--repeats 3] [--seeds 0 ...] [--solve-steps 0]

Why SB3 as the reference: it is the well-known, maintained DQN that installs with our torch pin without
pulling another torch, and its hyperparameters map one to one onto ours (RL Zoo's CartPole-v1 set below,
used for both). Both run with one torch thread on the same env. Ours runs through the full TAMER loop
(``tamer.train.run_episode``: blend, credit history, teacher hook), so the ratio includes our framework's
overhead, not just the learner. Measurements alternate ours/reference and the median ratio is printed,
since the machines are shared and noisy. Target: ratio >= 1.0.

``--solve-steps N`` also trains both for up to N steps per seed and prints the env step at which the mean
return of the last 10 episodes first reached 475 (SB3's counted from its Monitor's episode returns).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from tamer.config import Config
from tamer.session import build
from tamer.train import run_episode

# RL Zoo (rl-baselines3-zoo, hyperparams/dqn.yml) CartPole-v1, shared by both implementations.
HYPER = {
    "lr": 2.3e-3,
    "batch": 64,
    "buffer": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_period": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "eps_fraction_steps": 8000,  # exploration_fraction 0.16 of 5e4 steps
    "eps_end": 0.04,
    "hidden": (256, 256),
}


def ours_config(seed: int) -> Config:
    h = HYPER
    return Config(
        env="CartPole-v1",
        agent="rl",
        rl="dqn",
        seed=seed,
        episodes=1_000_000,
        gamma=h["gamma"],
        dqn_lr=h["lr"],
        dqn_batch=h["batch"],
        dqn_buffer=h["buffer"],
        dqn_learning_starts=h["learning_starts"],
        dqn_target_period=h["target_period"],
        dqn_train_freq=h["train_freq"],
        dqn_gradient_steps=h["gradient_steps"],
        dqn_epsilon_steps=h["eps_fraction_steps"],
        dqn_epsilon_end=h["eps_end"],
        dqn_hidden=",".join(str(n) for n in h["hidden"]),
    ).validate()


def ours(seed: int, steps: int, threshold: float = 475.0, window: int = 10) -> tuple[float, int | None]:
    """(steps/s over the whole run, env step when the last-``window`` mean return reached ``threshold``)."""
    s = build(ours_config(seed))
    returns, reached, episode = [], None, 0
    started = time.perf_counter()
    while s.steps < steps:
        returns.append(run_episode(s, episode)["return"])
        episode += 1
        if reached is None and len(returns) >= window and np.mean(returns[-window:]) >= threshold:
            reached = s.steps
    elapsed = time.perf_counter() - started
    s.env.close()
    return s.steps / elapsed, reached


def reference(seed: int, steps: int, threshold: float = 475.0, window: int = 10) -> tuple[float, int | None]:
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor

    h = HYPER

    class Watch(BaseCallback):
        def __init__(self):
            super().__init__()
            self.returns, self.reached = [], None

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.returns.append(info["episode"]["r"])
                    recent = self.returns[-window:]
                    if self.reached is None and len(recent) == window and np.mean(recent) >= threshold:
                        self.reached = self.num_timesteps
            return True

    env = Monitor(gym.make("CartPole-v1"))
    model = DQN(
        "MlpPolicy",
        env,
        learning_rate=h["lr"],
        buffer_size=h["buffer"],
        learning_starts=h["learning_starts"],
        batch_size=h["batch"],
        gamma=h["gamma"],
        target_update_interval=h["target_period"],
        train_freq=h["train_freq"],
        gradient_steps=h["gradient_steps"],
        exploration_fraction=h["eps_fraction_steps"] / steps,
        exploration_final_eps=h["eps_end"],
        policy_kwargs={"net_arch": list(h["hidden"])},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    watch = Watch()
    started = time.perf_counter()
    model.learn(total_timesteps=steps, callback=watch)
    elapsed = time.perf_counter() - started
    env.close()
    return steps / elapsed, watch.reached


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20_000, help="Env steps per speed measurement.")
    parser.add_argument("--repeats", type=int, default=3, help="Speed measurements (0 = skip).")
    parser.add_argument("--solve-steps", type=int, default=0, help="Also measure steps-to-475 (0 = skip).")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    torch.set_num_threads(1)
    ratios = []
    for i in range(args.repeats):
        ref, _ = reference(i, args.steps)
        our, _ = ours(i, args.steps)
        ratios.append(our / ref)
        print(f"repeat {i}: ours {our:.0f} steps/s, SB3 {ref:.0f} steps/s, ratio {our / ref:.2f}", flush=True)
    if ratios:
        print(
            f"DQN on CartPole-v1 while learning: ratio to SB3 {statistics.median(ratios):.2f} (median of "
            f"{len(ratios)}; target >= 1.0)"
        )
    if args.solve_steps:
        for seed in args.seeds:
            _, our_reached = ours(seed, args.solve_steps)
            _, ref_reached = reference(seed, args.solve_steps)
            print(
                f"seed {seed}: steps to a last-10 mean of 475: ours {our_reached}, SB3 {ref_reached} "
                f"(budget {args.solve_steps})",
                flush=True,
            )


if __name__ == "__main__":
    main()
