"""PPO env steps/s while learning on CartPole-v1, as a ratio to Stable-Baselines3's PPO in the same run, and
steps-to-475 of both on the same seeds.

    pip install -c constraints.txt -e ".[bench]"      # stable-baselines3, test-only
    python benchmarks/ppo_speed.py [--steps 20000] [--repeats 3] [--seeds 0 ...] [--solve-steps 0]

Both use RL Zoo's CartPole-v1 PPO set (8 envs × 32 steps, minibatch 256, 20 epochs, γ 0.98, λ 0.8, lr 1e-3 and
clip 0.2 linear to 0, no entropy bonus, separate 64-64 tanh policy and value nets), one torch thread, CPU.
Ours runs through the whole framework (``tamer.train.train``: gymnasium's SyncVectorEnv, the callbacks with
their per-step Step records and per-episode metrics rows); SB3 through its ``make_vec_env`` (DummyVecEnv
with Monitor wrappers). Each repeat runs SB3 then ours with the same seed and anneals over the same
``--steps``; the printed ratio is the median over repeats of ours/SB3 by the wall clock, with the ratio of
process CPU time beside it (the machines are shared: CPU time is what other load disturbs least). Target:
ratio >= 1.0.

``--solve-steps N`` trains both for N steps per seed (annealed over N, as RL Zoo's 1e5) and prints the env
step at which the mean return of the last 10 finished episodes first reached 475 (SB3's from its Monitor's
episode returns, ours from the metrics rows).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from tamer.callbacks import Callback
from tamer.config import Config
from tamer.train import train

# RL Zoo (rl-baselines3-zoo, hyperparams/ppo.yml) CartPole-v1, shared by both implementations.
HYPER = {
    "n_envs": 8,
    "n_steps": 32,
    "batch": 256,
    "gae_lambda": 0.8,
    "gamma": 0.98,
    "epochs": 20,
    "ent_coef": 0.0,
    "lr": 1e-3,
    "clip": 0.2,
    "hidden": (64, 64),
}


def ours_config(seed: int, steps: int) -> Config:
    h = HYPER
    return Config(
        env="CartPole-v1",
        agent="rl",
        rl="ppo",
        seed=seed,
        gamma=h["gamma"],
        ppo_envs=h["n_envs"],
        ppo_n_steps=h["n_steps"],
        ppo_batch=h["batch"],
        ppo_epochs=h["epochs"],
        ppo_gae_lambda=h["gae_lambda"],
        ppo_ent_coef=h["ent_coef"],
        ppo_lr=h["lr"],
        ppo_clip=h["clip"],
        ppo_anneal="linear",
        ppo_steps=steps,
        ppo_hidden=",".join(str(n) for n in h["hidden"]),
    ).validate()


class Reached(Callback):
    """The env step at which the mean return of the last ``window`` episodes first reached ``threshold``."""

    def __init__(self, threshold: float = 475.0, window: int = 10):
        self.threshold, self.window, self.returns, self.reached = threshold, window, [], None

    def on_episode_end(self, s, row: dict) -> None:
        self.returns.append(row["return"])
        recent = self.returns[-self.window :]
        if self.reached is None and len(recent) == self.window and np.mean(recent) >= self.threshold:
            self.reached = s.steps


def ours(seed: int, steps: int) -> tuple[float, float, int | None]:
    """(steps/s by the wall clock, steps per CPU second, step when the last-10 mean reached 475)."""
    watch = Reached()
    wall, cpu = time.perf_counter(), time.process_time()
    rows = train(ours_config(seed, steps), progress=False, callbacks=[watch])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done = -(-steps // (HYPER["n_envs"] * HYPER["n_steps"])) * HYPER["n_envs"] * HYPER["n_steps"]
    assert rows
    return done / wall, done / cpu, watch.reached


def reference(seed: int, steps: int) -> tuple[float, float, int | None]:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    h = HYPER

    class Watch(BaseCallback):
        def __init__(self, threshold: float = 475.0, window: int = 10):
            super().__init__()
            self.threshold, self.window, self.returns, self.reached = threshold, window, [], None

        def _on_step(self) -> bool:
            for i, info in enumerate(self.locals["infos"]):
                if "episode" in info:
                    self.returns.append(info["episode"]["r"])
                    recent = self.returns[-self.window :]
                    if (
                        self.reached is None
                        and len(recent) == self.window
                        and np.mean(recent) >= self.threshold
                    ):
                        # num_timesteps counts the whole vector step; this env's step is the i-th of it
                        self.reached = self.num_timesteps - len(self.locals["infos"]) + i + 1
            return True

    env = make_vec_env("CartPole-v1", n_envs=h["n_envs"], seed=seed)
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=h["n_steps"],
        batch_size=h["batch"],
        gae_lambda=h["gae_lambda"],
        gamma=h["gamma"],
        n_epochs=h["epochs"],
        ent_coef=h["ent_coef"],
        learning_rate=lambda progress: h["lr"] * progress,
        clip_range=lambda progress: h["clip"] * progress,
        policy_kwargs={"net_arch": {"pi": list(h["hidden"]), "vf": list(h["hidden"])}},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    watch = Watch()
    wall, cpu = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=steps, callback=watch)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    env.close()
    return model.num_timesteps / wall, model.num_timesteps / cpu, watch.reached


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
    walls, cpus = [], []
    for i in range(args.repeats):
        ref_wall, ref_cpu, _ = reference(i, args.steps)
        our_wall, our_cpu, _ = ours(i, args.steps)
        walls.append(our_wall / ref_wall)
        cpus.append(our_cpu / ref_cpu)
        print(
            f"repeat {i}: ours {our_wall:.0f} steps/s ({our_cpu:.0f} per CPU s), SB3 {ref_wall:.0f} steps/s "
            f"({ref_cpu:.0f} per CPU s), ratio {walls[-1]:.2f} (CPU time {cpus[-1]:.2f})",
            flush=True,
        )
    if walls:
        print(
            f"PPO on CartPole-v1 while learning: ratio to SB3 {statistics.median(walls):.2f} by wall clock, "
            f"{statistics.median(cpus):.2f} by CPU time (median of {len(walls)}; target >= 1.0)"
        )
    for seed in args.seeds if args.solve_steps else []:
        *_, our_reached = ours(seed, args.solve_steps)
        *_, ref_reached = reference(seed, args.solve_steps)
        print(
            f"seed {seed}: steps to a last-10 mean of 475: ours {our_reached}, SB3 {ref_reached} "
            f"(budget {args.solve_steps})",
            flush=True,
        )


if __name__ == "__main__":
    main()
