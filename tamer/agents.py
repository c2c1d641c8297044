"""The agent: a model of human reward Ĥ, optionally an RL learner of the MDP reward, and a blend between them.

TAMER, plain RL and every TAMER+RL technique are this one class with a different blend (``tamer.blends``),
so every comparison runs through one code path. The agent's input ``x`` is a pair (Ĥ's input, Q's input);
when both models read the same feature map the features are computed once and shared.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from tamer.errors import ConfigError, RunError


def greedy(values: np.ndarray | list[float], rng: np.random.Generator) -> int:
    """argmax with ties broken at random (an untrained model values every action the same). Values that are
    not finite (a diverged Ĥ or Q) raise RunError: acting on them would be silent nonsense.

    Plain Python on the list: for a handful of actions this is several times faster than numpy calls.
    ``values`` may be that list already."""
    vals = values if isinstance(values, list) else values.tolist()
    best = max(vals)
    total = sum(vals)  # NaN or ±inf among the values makes it so; max alone misses a NaN after a number
    if total - total != 0 and not all(map(math.isfinite, vals)):
        raise RunError(f"the model's action values are not finite ({vals}): Ĥ or Q diverged")
    n_best = vals.count(best)
    if n_best == 1:
        return vals.index(best)
    return [i for i, v in enumerate(vals) if v == best][int(rng.integers(n_best))]


def source_name(path: Path | BinaryIO) -> str:
    """A file's path for messages; a file object's name, if it has one."""
    return str(path) if isinstance(path, str | Path) else str(getattr(path, "name", "<file object>"))


class ScaleNormalizer:
    """Rescales Ĥ so that its spread across actions matches Q's: Ĥ · (mean Q spread) / (mean Ĥ spread).

    Ĥ lives on the teacher's scale (about ±1) while Q lives on the return's (-200..0 on Mountain Car), and
    what decides an action is the spread across actions (max_a − min_a) in a state. Without this, β = 1 means
    "Ĥ decides" in one environment and "Ĥ is ignored" in another; with it, β = 1 gives Ĥ as much say as Q.
    The spreads are exponential moving averages (``rate`` per call) so they follow learners that drift."""

    def __init__(self, rate: float = 0.01):
        self.rate, self.q_spread, self.h_spread = rate, 0.0, 0.0

    def __call__(self, h: np.ndarray, q: np.ndarray) -> np.ndarray:
        self.q_spread += self.rate * (float(q.max() - q.min()) - self.q_spread)
        self.h_spread += self.rate * (float(h.max() - h.min()) - self.h_spread)
        return h * (self.q_spread / self.h_spread) if self.h_spread > 1e-12 else h


class Agent:
    def __init__(
        self,
        h,
        rl,
        blend,
        n_actions: int,
        rng: np.random.Generator,
        epsilon: float = 0.0,
        schedule=None,
        normalizer: ScaleNormalizer | None = None,
    ):
        self.h, self.rl, self.blend = h, rl, blend
        self.n_actions, self.rng, self.epsilon = n_actions, rng, epsilon
        self.schedule, self.normalizer = schedule, normalizer
        self.shared = (
            h is not None and rl is not None and getattr(h, "features", 0) is getattr(rl, "features", 1)
        )
        self.h_frozen = False  # sequential mode freezes Ĥ once the teacher is gone
        self.episode = 0

    def encode(self, obs) -> tuple:
        hx = self.h.encode(obs) if self.h is not None else None
        if self.rl is None:
            return hx, None
        return hx, hx if self.shared else self.rl.encode(obs)

    def h_values(self, x) -> np.ndarray:
        return self.h.predict(x[0])

    def q_values(self, x) -> np.ndarray:
        return self.rl.values(x[1])

    def values(self, x) -> tuple[np.ndarray, np.ndarray]:
        """(Q, Ĥ) in one state for blends that compare them in Q's units, Ĥ rescaled to Q's scale when
        normalisation is on. Blends that treat Ĥ as a reward use ``h_values`` (the teacher's own scale)."""
        q, h = self.rl.values(x[1]), self.h.predict(x[0])
        return q, (self.normalizer(h, q) if self.normalizer is not None else h)

    def beta_at(self, x) -> float | None:
        return self.schedule.value(x[0]) if self.schedule is not None else None

    def act(self, x) -> int:
        return self.blend.act(self, x)

    def learn_feedback(self, xs, actions, credits, h) -> None:
        """Human reward: ``h`` credited over the steps ``xs``/``actions`` by ``credits``."""
        if not xs or self.h is None or self.h_frozen:
            return
        hxs = [x[0] for x in xs]
        self.h.update(hxs, actions, credits, h)
        if self.schedule is not None:
            self.schedule.on_feedback(hxs)

    def learn_reward(
        self, x, action: int, reward: float, x_next, action_next: int | None, terminated: bool
    ) -> None:
        """MDP reward for one transition; ``action_next`` is None at the end of an episode."""
        if self.schedule is not None:
            self.schedule.on_step()
        self.blend.learn(self, x, action, reward, x_next, action_next, terminated)

    def end_episode(self) -> None:
        self.episode += 1
        if self.schedule is not None:
            self.schedule.on_episode()
        if self.rl is not None:
            self.rl.end_episode()

    def teacher_left(self, blend=None) -> None:
        """The teacher is gone for good. Sequential mode passes the blend the RL phase runs with and
        freezes Ĥ; blends that act once on a finished Ĥ (``q_init``) do it now."""
        if blend is not None:
            self.blend, self.h_frozen = blend, True
        if hasattr(self.blend, "teacher_left"):
            self.blend.teacher_left(self)

    def parts(self) -> dict:
        return {"h": self.h, "rl": self.rl, "schedule": self.schedule, "blend": self.blend}

    def save(self, path: Path | BinaryIO, store=None) -> None:
        """numpy state as npz arrays ``part.key``; state that is not numpy (networks, optimisers, replay
        buffers, RNG states of neural parts) as one torch-serialised blob, ``agent.torch``, in the same file,
        so a save stays one atomic rename. With ``store`` (a ``tamer.rowstore.RowStore``, which
        ``tamer.io.save_agent`` passes), a replay buffer too big to copy at every checkpoint goes to a side
        file instead, which each save extends by the rows added since the last; ``agent.rows`` names them."""
        # Any, not np.ndarray: mypy matches ``**state`` against savez's keyword-only ``allow_pickle: bool``
        state: dict[str, Any] = {
            "agent.episode": np.array(self.episode),
            "agent.h_frozen": np.array(self.h_frozen),
        }
        other: dict[str, dict] = {}
        rows: dict[str, dict] = {}
        if store is not None:
            store.begin()
        for name, part in self.parts().items():
            if part is not None and hasattr(part, "state_dict"):
                lazy = getattr(part, "row_buffers", ()) if store is not None else ()
                for k, v in (part.state_dict(rows=False) if lazy else part.state_dict()).items():
                    if isinstance(v, np.ndarray):
                        state[f"{name}.{k}"] = v
                        continue
                    if k in lazy:  # a replay buffer: to the side file if it is big, else copied as ever
                        ref = store.save(f"{name}.{k}", v)
                        if ref is None:
                            v = v.state_dict()
                        else:
                            rows[f"{name}.{k}"], v = ref, {"rows": f"{name}.{k}"}
                    other.setdefault(name, {})[k] = v
        if other:
            from tamer.deep import dumps

            state["agent.torch"] = dumps(other)
        if rows:
            from tamer.rowstore import encode_refs

            state["agent.rows"] = encode_refs(rows)
        np.savez(path, **state)

    def load(self, path: Path | BinaryIO) -> None:
        """What ``save`` wrote. A file that is no such save (empty, not an npz, another agent's, other shapes)
        is one ConfigError line: never an agent left silently blank or half loaded."""
        try:
            self._load(path)
        except ConfigError:
            raise
        except Exception as e:  # numpy, zipfile, pickle and torch each fail their own way on a bad file
            reason = " ".join(f"{type(e).__name__}: {e}".split())  # one line, whatever the library says
            raise ConfigError(f"cannot read model {source_name(path)}: {reason}") from None

    def _load(self, path: Path | BinaryIO) -> None:
        with np.load(path) as data:
            self.episode = int(data["agent.episode"]) if "agent.episode" in data.files else 0
            self.h_frozen = bool(data["agent.h_frozen"]) if "agent.h_frozen" in data.files else False
            other: dict[str, dict] = {}
            if "agent.torch" in data.files:
                from tamer.deep import loads

                other = loads(data["agent.torch"])
            if "agent.rows" in data.files:  # replay buffers in side files next to the model
                from tamer.rowstore import decode_refs, load_rows

                if not isinstance(path, str | Path):
                    raise ConfigError(
                        f"model {source_name(path)} keeps replay buffers in side files: load its path"
                    )
                for key, ref in decode_refs(data["agent.rows"]).items():
                    name, k = key.split(".", 1)
                    other.setdefault(name, {})[k] = load_rows(Path(path), ref)
            for name, part in self.parts().items():
                prefix = name + "."
                state = {k[len(prefix) :]: data[k] for k in data.files if k.startswith(prefix)}
                state.update(other.get(name, {}))
                if not state and name in ("h", "rl") and hasattr(part, "load_state_dict"):
                    raise ConfigError(
                        f"cannot read model {source_name(path)}: it holds no saved {name} (its "
                        f"arrays: {', '.join(data.files) or 'none'}); is it a model.npz of this run?"
                    )
                if part is not None and state and hasattr(part, "load_state_dict"):
                    part.load_state_dict(state)
