"""The reference side of ``benchmarks/rankings_vs_imitation.py``: imitation 1.0.1's preference comparisons on
CartPole-v1, one seed per process. It runs inside ``.venv-imitation`` (imitation pins gymnasium ~=0.29 and
stable-baselines3 ~=2.2.1, which our own virtualenv cannot hold):

    .venv-imitation/bin/python benchmarks/imitation_side.py --seed 0 --result runs/imitation/seed0.json

and writes one JSON object to ``--result``: the final policy's mean return over the evaluation episodes,
the wall time of training, the pairs used, the env steps taken, and, if the run failed, what failed
(``status``: ok / crashed, with the exception and the stage it was in). It exits 0 whenever it could write
that file, so a crash of imitation is a result, not a dead benchmark.

Settings: imitation's tutorial (docs/tutorials/5_train_preference_comparisons.ipynb at v1.0.1, written for
Pendulum-v1) applied to CartPole-v1, as in ../shared/BACKGROUND.md's measurement: 8 envs (its
``make_vec_env`` default); PPO with FeedForward32Policy over RunningNorm features, n_steps 2048/8, batch
64, ent_coef 0.01, lr 2e-3, clip 0.1, GAE λ 0.95, γ 0.97, 10 epochs; BasicRewardNet with RunningNorm
input; reward trainer 3 epochs (×4 on the first round); 5 iterations, hyperbolic query schedule, 10% of the
pairs up front, exploration_frac 0.05, transition_oversampling 1; preferences from SyntheticGatherer on
the true return (``--temperature``: the tutorial's 1 samples a Boltzmann-rational teacher, so equal returns
are a coin flip; 0, which rankings_vs_imitation.py passes to match our person, prefers the higher return
and answers 0.5 for equal ones), of which ``--error`` (default 0.1) are replaced by a fair coin: random
answers;
the preference model assumes that share of random answers (``noise_prob``, as ours does with
``reward_random`` 0.1: Christiano et al.'s assumption).

Fragments (``--fragments``): ``episode`` (default) pairs whole episodes, drawn uniformly with replacement
from the trajectories imitation samples (never an episode against itself); on CartPole-v1 every step pays
+1, so two fixed-length clips tie under the true return and the teacher flips a coin (BACKGROUND.md):
whole episodes are the fair setting. imitation compares returns of equal-length fragments only (its
``PreferenceModel.probability`` subtracts the reward vectors), so with episodes the model sums each
fragment's predicted rewards apart; nothing else changes. ``fixed`` is imitation's own RandomFragmenter
with ``--fragment-length`` steps (the tutorial's 100; it raises when no trajectory is that long, which a
random CartPole policy rarely reaches, and the result records that crash). The sampler asks for
2 × pairs × ``--fragment-length`` transitions per round either way.

Budgets: ``--pairs`` comparisons in all (imitation's ``total_comparisons``; the dataset's size is checked
and reported) and ``--env-steps`` env steps in all, counted in every training env (PPO's rollouts and the
transitions sampled for queries, exploratory ones included; evaluation is not counted). imitation's
``train`` splits ``total_timesteps`` over the iterations but trains the agent once more than that (1.0.1
trains after the initial round too) and samples query transitions outside it, so the agent trainer here
caps each training call at an even share, in whole PPO rollouts, of what is left of the budget after
reserving an estimate of the query sampling still to come; the last call takes the rest exactly.

Seeding: numpy's Generator and the envs from ``--seed``; torch is seeded by SB3's ``PPO(seed=...)``, which
the tutorial builds after the reward network, so the reward network's initial weights are not seeded and a
run does not replay from its seed (kept as the tutorial has it; the result says so).

Evaluation (``evaluate`` below, imported by rankings_vs_imitation.py for our side too, so both use the same
protocol): ``--eval-episodes`` episodes of the final policy, greedy, on a fresh CartPole-v1, episode i reset
with seed ``eval_seeds(seed)[i]``.

Only the standard library is imported at module level, so the driver can import ``evaluate`` and
``eval_seeds`` from our own virtualenv.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

ENV_ID = "CartPole-v1"
EVAL_EPISODES = 20

# imitation's tutorial (v1.0.1), PPO and reward-learning settings, applied to CartPole-v1.
TUTORIAL: dict[str, Any] = {
    "n_envs": 8,
    "ppo": {
        "n_steps": 2048 // 8,
        "batch_size": 64,
        "ent_coef": 0.01,
        "learning_rate": 2e-3,
        "clip_range": 0.1,
        "gae_lambda": 0.95,
        "gamma": 0.97,
        "n_epochs": 10,
    },
    "reward_epochs": 3,
    "num_iterations": 5,
    "fragment_length": 100,
    "transition_oversampling": 1,
    "initial_comparison_frac": 0.1,
    "initial_epoch_multiplier": 4,
    "query_schedule": "hyperbolic",
    "exploration_frac": 0.05,
    "gatherer_temperature": 1.0,
}

NOT_SEEDED = (
    "imitation's reward network is created before torch is seeded (the tutorial's order: SB3's PPO(seed=...) "
    "seeds torch after BasicRewardNet exists), so its runs do not replay from a seed"
)


def eval_seeds(seed: int, episodes: int = EVAL_EPISODES) -> list[int]:
    """Reset seeds of the evaluation episodes of a run with ``seed``, shared by both sides."""
    return [1_000_000 + 1_000 * seed + i for i in range(episodes)]


def evaluate(env: Any, act: Callable[[Any], int], seeds: Sequence[int]) -> list[float]:
    """Undiscounted returns of ``act`` (observation -> action), one episode per reset seed. Works with
    gymnasium 0.29 and 1.x alike (both reset to (obs, info) and step to a 5-tuple)."""
    returns = []
    for seed in seeds:
        obs, _ = env.reset(seed=int(seed))
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def query_schedule(pairs: int, iterations: int) -> list[int]:
    """The pairs imitation asks for in each round (its own computation in ``PreferenceComparisons.train``)."""
    import numpy as np
    from imitation.algorithms.preference_comparisons import QUERY_SCHEDULES
    from imitation.util import util

    initial = int(pairs * TUTORIAL["initial_comparison_frac"])
    probs = np.vectorize(QUERY_SCHEDULES[TUTORIAL["query_schedule"]])(np.linspace(0, 1, iterations))
    shares = util.oric(probs / probs.sum() * (pairs - initial))
    return [initial, *shares.tolist()]


def run(args: argparse.Namespace, result: dict) -> None:
    """Train and evaluate one seed, filling ``result`` as it goes (so a crash leaves what was reached)."""
    result["stage"] = "import"
    import gymnasium as gym
    import numpy as np
    import torch
    from imitation.algorithms import preference_comparisons as pc
    from imitation.policies.base import FeedForward32Policy, NormalizeFeaturesExtractor
    from imitation.rewards.reward_nets import BasicRewardNet
    from imitation.util import logger as imit_logger
    from imitation.util.networks import RunningNorm
    from imitation.util.util import make_vec_env
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    rollout = TUTORIAL["ppo"]["n_steps"] * TUTORIAL["n_envs"]
    schedule = query_schedule(args.pairs, args.iterations)
    counted = {"steps": 0, "returns": []}  # every env step of every training env; true episode returns

    class CountSteps(gym.Wrapper):
        """Counts the steps of one training env and records its episodes' true returns."""

        def __init__(self, env: gym.Env):
            super().__init__(env)
            self.ret = 0.0

        def reset(self, **kwargs):
            self.ret = 0.0
            return self.env.reset(**kwargs)

        def step(self, action):
            out = self.env.step(action)
            counted["steps"] += 1
            self.ret += float(out[1])
            if out[2] or out[3]:
                counted["returns"].append(self.ret)
            return out

    class EpisodeFragmenter(pc.Fragmenter):
        """Pairs of whole episodes, uniformly with replacement, never an episode against itself."""

        def __init__(self, rng: np.random.Generator, custom_logger=None):
            super().__init__(custom_logger)
            self.rng = rng

        def __call__(self, trajectories, fragment_length, num_pairs):
            del fragment_length  # whole episodes
            episodes = [t for t in trajectories if len(t) > 0]
            if len(episodes) < 2:
                raise ValueError(f"{len(episodes)} finished episode(s) sampled; a pair needs two")
            pairs = []
            for _ in range(num_pairs):
                i, j = self.rng.choice(len(episodes), size=2, replace=False)
                pairs.append((episodes[i], episodes[j]))
            return pairs

    class WholeEpisodePreferenceModel(pc.PreferenceModel):
        """imitation's preference model with each fragment's predicted return summed apart, so fragments
        of different lengths compare (undiscounted, as the tutorial's discount_factor 1)."""

        def probability(self, rews1, rews2):
            diff = torch.clip(rews2.sum(axis=0) - rews1.sum(axis=0), -self.threshold, self.threshold)
            return self.noise_prob * 0.5 + (1 - self.noise_prob) * (1 / (1 + diff.exp()))

    class BudgetedAgentTrainer(pc.AgentTrainer):
        """imitation's AgentTrainer whose training calls share what is left of the env-step budget."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.calls, self.trained = 0, []

        def train(self, steps: int, **kwargs) -> None:
            del steps  # imitation's even split of total_timesteps over one call too many; see the docstring
            left_calls = len(schedule) - self.calls
            future = schedule[self.calls + 1 :]
            share = 0
            if left_calls > 0:
                free = args.env_steps - counted["steps"] - sum(sampling_estimate(n) for n in future)
                share = max(0, free // left_calls // rollout * rollout)
            if not future:  # the last call: nothing is sampled after it, so it takes the rest exactly
                share = max(0, (args.env_steps - counted["steps"]) // rollout * rollout)
            self.calls += 1
            self.trained.append(share)
            if share:
                super().train(share, **kwargs)

    def sampling_estimate(num_pairs: int) -> int:
        """Fresh env steps a round's query sampling is likely to take: the exploratory share, what the
        last training call's finished episodes may lack, and the unfinished episodes it throws away."""
        want = math.ceil(TUTORIAL["transition_oversampling"] * 2 * num_pairs * args.fragment_length)
        explore = int(TUTORIAL["exploration_frac"] * want)
        return explore + (want - explore) // 4 + TUTORIAL["n_envs"] * 500

    result["stage"] = "setup"
    started = time.perf_counter()
    cpu = time.process_time()
    rng = np.random.default_rng(args.seed)
    venv = make_vec_env(
        ENV_ID, rng=rng, n_envs=TUTORIAL["n_envs"], post_wrappers=[lambda env, i: CountSteps(env)]
    )
    reward_net = BasicRewardNet(venv.observation_space, venv.action_space, normalize_input_layer=RunningNorm)
    if args.fragments == "episode":
        fragmenter: pc.Fragmenter = EpisodeFragmenter(rng)
        preference_model = WholeEpisodePreferenceModel(reward_net, noise_prob=args.error)
    else:
        fragmenter = pc.RandomFragmenter(warning_threshold=0, rng=rng)
        preference_model = pc.PreferenceModel(reward_net, noise_prob=args.error)

    class NoisyGatherer(pc.SyntheticGatherer):
        """SyntheticGatherer whose answers are, with probability ``error`` each, a fair coin instead."""

        def __call__(self, fragment_pairs):
            preferences = super().__call__(fragment_pairs)
            random = self.rng.random(len(preferences)) < args.error
            coins = self.rng.integers(0, 2, size=len(preferences)).astype(preferences.dtype)
            return np.where(random, coins, preferences)

    gatherer = NoisyGatherer(temperature=args.temperature, rng=rng)
    reward_trainer = pc.BasicRewardTrainer(
        preference_model=preference_model,
        loss=pc.CrossEntropyRewardLoss(),
        epochs=TUTORIAL["reward_epochs"],
        rng=rng,
    )
    agent = PPO(
        policy=FeedForward32Policy,
        policy_kwargs={
            "features_extractor_class": NormalizeFeaturesExtractor,
            "features_extractor_kwargs": {"normalize_class": RunningNorm},
        },
        env=venv,
        seed=args.seed,
        device="cpu",
        **TUTORIAL["ppo"],
    )
    generator = BudgetedAgentTrainer(
        algorithm=agent,
        reward_fn=reward_net,
        venv=venv,
        exploration_frac=TUTORIAL["exploration_frac"],
        rng=rng,
    )
    logger = imit_logger.configure(folder=args.log_dir, format_strs=["csv"]) if args.log_dir else None
    comparisons = pc.PreferenceComparisons(
        generator,
        reward_net,
        num_iterations=args.iterations,
        fragmenter=fragmenter,
        preference_gatherer=gatherer,
        reward_trainer=reward_trainer,
        fragment_length=args.fragment_length,
        transition_oversampling=TUTORIAL["transition_oversampling"],
        initial_comparison_frac=TUTORIAL["initial_comparison_frac"],
        allow_variable_horizon=True,  # CartPole-v1 ends when the pole falls
        initial_epoch_multiplier=TUTORIAL["initial_epoch_multiplier"],
        query_schedule=TUTORIAL["query_schedule"],
        custom_logger=logger,
    )
    rounds = result["rounds"] = []

    def after_round(iteration: int) -> None:
        recent = counted["returns"][-20:]
        rounds.append(
            {
                "round": iteration,
                "pairs": len(comparisons.dataset),
                "env_steps": counted["steps"],
                "agent_steps": generator.trained[-1],
                "train_return_last20": float(np.mean(recent)) if recent else None,
            }
        )
        result.update(pairs=len(comparisons.dataset), env_steps=counted["steps"])
        print(f"round {iteration}: {rounds[-1]}", flush=True)

    result["stage"] = "train"
    try:
        out = comparisons.train(
            total_timesteps=args.env_steps, total_comparisons=args.pairs, callback=after_round
        )
    finally:
        result.update(pairs=len(comparisons.dataset), env_steps=counted["steps"])
        result["wall_s"] = time.perf_counter() - started
        result["cpu_s"] = time.process_time() - cpu
    result["reward_accuracy"] = float(out["reward_accuracy"])
    result["agent_steps"] = int(agent.num_timesteps)
    result["sampling_steps"] = counted["steps"] - int(agent.num_timesteps)
    result["stage"] = "evaluate"
    env = gym.make(ENV_ID)
    returns = evaluate(
        env,
        lambda obs: int(agent.predict(obs, deterministic=True)[0]),
        eval_seeds(args.seed, args.eval_episodes),
    )
    env.close()
    venv.close()
    result.update(eval_returns=returns, mean_return=float(np.mean(returns)), status="ok", stage="done")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs", type=int, default=500, help="Comparisons in all (total_comparisons).")
    parser.add_argument("--env-steps", type=int, default=150_000, help="Env steps in all, sampling included.")
    parser.add_argument("--fragments", choices=("episode", "fixed"), default="episode")
    parser.add_argument("--fragment-length", type=int, default=TUTORIAL["fragment_length"])
    parser.add_argument("--error", type=float, default=0.1, help="Share of answers that are a coin flip.")
    parser.add_argument(
        "--temperature",
        type=float,
        default=TUTORIAL["gatherer_temperature"],
        help="SyntheticGatherer's: 1 (the tutorial's) Boltzmann-rational, 0 exactly by return (ties 0.5).",
    )
    parser.add_argument("--iterations", type=int, default=TUTORIAL["num_iterations"])
    parser.add_argument("--eval-episodes", type=int, default=EVAL_EPISODES)
    parser.add_argument("--result", required=True, help="Where to write the result (JSON).")
    parser.add_argument("--log-dir", default="", help="imitation's progress.csv goes here (empty: none).")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    result: dict[str, Any] = {
        "side": "imitation",
        "seed": args.seed,
        "status": "crashed",
        "settings": {**TUTORIAL, **{k: v for k, v in vars(args).items() if k not in ("result", "log_dir")}},
        "seeded": False,
        "note": NOT_SEEDED,
        "pairs": 0,
        "env_steps": 0,
    }
    try:
        run(args, result)
    except Exception as e:  # imitation's failures are part of the result
        result["error"] = f"{type(e).__name__}: {e}"
        result["traceback"] = traceback.format_exc()[-4000:]
        print(result["traceback"], file=sys.stderr, flush=True)
    try:
        import imitation
        import stable_baselines3

        result["versions"] = {
            "imitation": imitation.__version__,
            "stable_baselines3": stable_baselines3.__version__,
        }
    except Exception:  # pragma: no cover - the import failure is already the result
        pass
    tmp = args.result + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, args.result)


if __name__ == "__main__":
    main()
