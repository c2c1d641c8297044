"""The reward model r̂(s, a) learned from rankings (stage two of the human-feedback pipeline), the reward PPO
optimises in stage three.

A segment's predicted return is R̂ = Σ_t r̂(s_t, a_t); a ranked pair (better, worse) costs the Bradley–Terry
loss −log σ(R̂_better − R̂_worse) (Christiano et al. 2017). As InstructGPT (Ouyang et al. 2022), all K(K−1)/2
pairs of one ranking go into the same batch, and each ranking's pairs are averaged (so a ranking of 9 counts
as much as a ranking of 2, and its K attempts are evaluated once, not once per pair). A tie is a pair with
target 0.5. ``random_answer`` ε is Christiano's assumption that the person answers at random with
probability ε: P(better ≻ worse) = (1 − ε)·σ(ΔR̂) + ε/2, which bounds the loss of a mistaken label.

Models (``kind``):

- ``linear``: r̂(s, a) = w_a · φ(s) over the framework's features (``tamer.features``: tile coding, RBFs,
  one-hot), as a torch ``EmbeddingBag`` over the sparse ``Phi`` (index a·n_features + i), zero at the start;
- ``mlp`` / ``cnn``: ``tamer.deep.make_net`` over an ``ObservationEncoder`` with one output per action, the
  taken action's output read out (as Deep TAMER's Ĥ: one pass gives r̂(s, ·) for every action). Vector
  observations are normalised by a running mean/std of the observations trained on (updated once per new
  query, frozen during a round, clipped to ±10); images are scaled to [0, 1] by the CNN.

``members`` > 1 is an ensemble (Christiano: 3), each member trained on its own bootstrap resample of the
pairs (multiplicities drawn each round; a pair drawn twice weighs twice) and its own minibatch order; r̂ is
the members' mean, and their spread chooses queries (``tamer.rankings.select_attempts``).

Output normalisation: after each round, r̂ is shifted and scaled to zero mean and unit variance over the
most recent ``norm_states`` steps of the data (or over states PPO passes to ``calibrate``), then held fixed
until the next round, so PPO sees a stable scale. ``__call__(obs_batch, actions_batch)`` -> rewards is the
interface PPO uses; ``member_returns(segments)`` the one query selection uses.

Validation: rankings whose query id falls in the held-out fraction (a fixed function of the seed and the id,
so a query stays held out as data grows) are not trained on; each round reports the accuracy of the ensemble
on their untied pairs. Reproducibility as ``tamer.deep``: weights initialised under a forked torch RNG, one
numpy generator per member, so the same data and seed give the same model on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tamer.deep import ObservationEncoder, make_net, rng_state, set_rng_state
from tamer.errors import ConfigError
from tamer.features import FeatureMap, make_features
from tamer.rankings import Query, RankedQuery, Ranking, Segment

# Adam step sizes per kind: the nets' as Deep TAMER's Ĥ (tamer.deep.H_NET_LR); the linear one larger (sparse
# features: few weights move per step).
LR = {"linear": 3e-2, "mlp": 3e-3, "cnn": 1e-3}
CHUNK = 8192  # steps per forward pass at inference


class RewardFunction(Protocol):
    """What PPO consumes: r̂ for a batch of (raw observation, action), one float per step."""

    def __call__(self, obs_batch, actions_batch) -> np.ndarray: ...


# --------------------------------------------------------------------------------------------------- loss


class PairBatch(NamedTuple):
    """The pairs of several rankings, as indices into the batch's segments (ranking r's attempts follow
    ranking r−1's). ``weight`` is 1 / (its ranking's number of pairs)."""

    better: np.ndarray
    worse: np.ndarray
    target: np.ndarray  # P(better ≻ worse): 1, or 0.5 for a tie
    weight: np.ndarray


def ranking_batch(rankings: Sequence[Ranking], n_attempts: Sequence[int]) -> PairBatch:
    """All K(K−1)/2 pairs of every ranking, in ranking order, segment indices offset per ranking."""
    better, worse, target, weight = [], [], [], []
    offset = 0
    for ranking, k in zip(rankings, n_attempts, strict=True):
        pairs = ranking.pairs()
        for i, j, t in pairs:
            better.append(offset + i)
            worse.append(offset + j)
            target.append(t)
            weight.append(1.0 / len(pairs))
        offset += k
    return PairBatch(
        np.array(better, dtype=np.int64),
        np.array(worse, dtype=np.int64),
        np.array(target, dtype=np.float32),
        np.array(weight, dtype=np.float32),
    )


def bradley_terry_loss(
    returns: torch.Tensor,
    better: torch.Tensor,
    worse: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    random_answer: float = 0.0,
) -> torch.Tensor:
    """Σ_p w_p·ℓ_p / Σ_p w_p with ℓ = −[t·log P + (1 − t)·log(1 − P)], P = (1 − ε)·σ(R_b − R_w) + ε/2.
    With unit pair weights 1/n_pairs this is the mean over rankings of each ranking's mean pair loss."""
    delta = returns[better] - returns[worse]
    if random_answer:
        keep, noise = math.log1p(-random_answer), math.log(random_answer / 2)
        log_p = torch.logaddexp(keep + F.logsigmoid(delta), torch.full_like(delta, noise))
        log_q = torch.logaddexp(keep + F.logsigmoid(-delta), torch.full_like(delta, noise))
    else:
        log_p, log_q = F.logsigmoid(delta), F.logsigmoid(-delta)
    nll = -(target * log_p + (1.0 - target) * log_q)
    if weight is None:
        return nll.mean()
    return (weight * nll).sum() / weight.sum().clamp_min(1e-12)


# ------------------------------------------------------------------------------------------------ members


class LinearReward(nn.Module):
    """r̂(s, a) = w_a · φ(s) over sparse features: inputs ``idx`` (N, nnz) = a·n_features + i, ``val``."""

    def __init__(self, n_features: int, n_actions: int):
        super().__init__()
        self.table = nn.EmbeddingBag(n_features * n_actions, 1, mode="sum")
        nn.init.zeros_(self.table.weight)

    def forward(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.table(b["idx"], per_sample_weights=b["val"]).squeeze(1)


class NetReward(nn.Module):
    """A network with one output per action; vector inputs normalised by the buffers ``mean``/``std``."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, net: nn.Module, shape: tuple[int, ...], normalize: bool):
        super().__init__()
        self.net, self.normalize = net, normalize
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))

    def forward(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        x = b["x"]
        if self.normalize:
            x = ((x - self.mean) / self.std).clamp(-10.0, 10.0)
        return self.net(x).gather(1, b["a"].unsqueeze(1)).squeeze(1)


class RunningMeanStd:
    """Mean and variance of every observation folded in so far (Chan et al.'s parallel update, float64)."""

    def __init__(self, shape: tuple[int, ...]):
        self.count, self.mean, self.var = 0, np.zeros(shape), np.ones(shape)

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        n, mean, var = len(x), x.mean(axis=0), x.var(axis=0)
        total = self.count + n
        delta = mean - self.mean
        m2 = self.var * self.count + var * n + delta**2 * self.count * n / total
        self.mean, self.var, self.count = self.mean + delta * n / total, m2 / total, total


# ------------------------------------------------------------------------------------------- reward model


class RewardModel:
    """r̂(s, a) for discrete actions, learned from rankings by ``fit`` (see the module docstring)."""

    def __init__(
        self,
        space: gym.Space,
        n_actions: int,
        kind: str = "mlp",
        *,
        features: FeatureMap | None = None,
        encoder: ObservationEncoder | None = None,
        hidden: Sequence[int] = (64, 64),
        members: int = 1,
        bootstrap: bool | None = None,
        lr: float = 0.0,
        epochs: int = 10,
        batch: int = 16,
        random_answer: float = 0.0,
        weight_decay: float = 0.0,
        val_fraction: float = 0.1,
        normalize_obs: bool = True,
        norm_states: int = 10_000,
        center: bool = True,
        use_action: bool = True,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ):
        """``batch``: rankings per minibatch (each brings all its pairs); ``epochs``: passes per ``fit``;
        ``lr`` 0: ``LR[kind]``; ``bootstrap`` None: resample the pairs when ``members`` > 1; ``center``
        False: output normalisation keeps r̂'s level (divides by its root mean square, subtracts nothing),
        for attempts of different lengths, whose returns identify that level; ``use_action`` False: r̂(s)
        of the state alone, the same for every action (``imitation``'s reward nets' ``use_action``)."""
        if kind not in LR:
            raise ConfigError(f"unknown reward model {kind!r}; known: {', '.join(LR)}")
        if members < 1 or epochs < 0 or batch < 1 or not (0 <= random_answer < 1 and 0 <= val_fraction < 1):
            raise ConfigError(
                "reward model needs members, batch >= 1, random_answer and val_fraction in [0, 1)"
            )
        self.kind, self.n_actions, self.seed, self.use_action = kind, n_actions, seed, use_action
        outputs = n_actions if use_action else 1  # one r̂ per action, or one for the state
        self.epochs, self.batch, self.random_answer = epochs, batch, random_answer
        self.val_fraction, self.norm_states, self.center = val_fraction, norm_states, center
        self.bootstrap = members > 1 if bootstrap is None else bootstrap
        self.device = torch.device(device)
        self.features = self.encoder = None
        self.obs_stats: RunningMeanStd | None = None
        if kind == "linear":
            self.features = features if features is not None else make_features(space)
        else:
            self.encoder = encoder if encoder is not None else ObservationEncoder(space, scale=False)
            if self.encoder.frame_stack != 1:
                raise ConfigError("the reward model judges single observations: frame_stack must be 1")
            if (kind == "cnn") != self.encoder.is_image:
                raise ConfigError(f"a {kind} reward model does not fit observations {space}")
            if normalize_obs and self.encoder.kind == "vector":
                self.obs_stats = RunningMeanStd(self.encoder.shape)
        self.members: list[nn.Module] = []
        self.optimizers: list[torch.optim.Optimizer] = []
        self.rngs: list[np.random.Generator] = []
        for m in range(members):
            net_seed, rng_seed = np.random.SeedSequence([seed, 5, m]).generate_state(2)
            if self.features is not None:
                member: nn.Module = LinearReward(self.features.n_features, outputs)
            else:
                assert self.encoder is not None
                net = make_net(self.encoder, hidden, outputs, int(net_seed), zero_output=False)
                member = NetReward(net, self.encoder.shape, self.obs_stats is not None)
            self.members.append(member.to(self.device))
            self.optimizers.append(
                torch.optim.Adam(member.parameters(), lr=lr or LR[kind], weight_decay=weight_decay)
            )
            self.rngs.append(np.random.default_rng(int(rng_seed)))
        self.offset, self.scale = 0.0, 1.0
        self.seen: set[int] = set()  # query ids whose observations are in obs_stats
        self.history: list[dict] = []
        self._cache: dict[Query, dict] = {}

    @property
    def n_members(self) -> int:
        return len(self.members)

    # ---- inputs ------------------------------------------------------------------------------------

    def encode(self, obs, actions) -> dict[str, np.ndarray]:
        """Steps -> the members' inputs (numpy; features or encoded observations and the actions)."""
        actions = np.asarray(actions, dtype=np.int64).reshape(-1)
        if not self.use_action:
            actions = np.zeros_like(actions)  # every action reads the state's one output
        if self.features is not None:
            phis = [self.features(o) for o in obs]
            idx = np.stack([p.idx for p in phis]) + actions[:, None] * self.features.n_features
            return {"idx": idx, "val": np.stack([p.val for p in phis]).astype(np.float32)}
        e = self.encoder
        assert e is not None
        if e.kind == "vector":
            x = (np.asarray(obs, dtype=np.float32).reshape(len(actions), -1) - e.center) * e.inv_half
        elif e.kind == "onehot":
            x = e._eye[np.asarray(obs).astype(np.int64).reshape(-1) - e.start]
        else:
            x = np.stack([e.frame(o) for o in obs])
        return {"x": x, "a": actions}

    def _tensors(self, inputs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for k, v in inputs.items()}

    def _item(self, d: RankedQuery) -> dict:
        """A ranked query's inputs, segment index per step and pairs, computed once."""
        item = self._cache.get(d.query)
        if item is None:
            a = d.query.attempts
            obs = np.concatenate([s.obs for s in a])
            item = {
                "inputs": self.encode(obs, np.concatenate([s.actions for s in a])),
                "seg": np.repeat(np.arange(len(a)), [len(s) for s in a]),
                "k": len(a),
                "pairs": ranking_batch([d.ranking], [len(a)]),
            }
            self._cache[d.query] = item
        return item

    # ---- inference ---------------------------------------------------------------------------------

    def member_rewards(self, obs, actions) -> np.ndarray:
        """(members, N) raw r̂ of every member (before output normalisation)."""
        n = len(actions)
        out = np.empty((self.n_members, n))
        with torch.inference_mode():
            for start in range(0, n, CHUNK):
                b = self._tensors(self.encode(obs[start : start + CHUNK], actions[start : start + CHUNK]))
                for m, member in enumerate(self.members):
                    out[m, start : start + CHUNK] = member(b).double().cpu().numpy()
        return out

    def member_returns(self, segments: Sequence[Segment]) -> np.ndarray:
        """(members, segments) raw predicted returns R̂ = Σ_t r̂(s_t, a_t)."""
        rewards = self.member_rewards(
            np.concatenate([s.obs for s in segments]), np.concatenate([s.actions for s in segments])
        )
        starts = np.concatenate([[0], np.cumsum([len(s) for s in segments])[:-1]])
        return np.add.reduceat(rewards, starts, axis=1)

    def __call__(self, obs_batch, actions_batch) -> np.ndarray:
        """r̂ of each (observation, action), ensemble mean, output-normalised: what PPO adds up."""
        return (self.member_rewards(obs_batch, actions_batch).mean(axis=0) - self.offset) / self.scale

    def calibrate(self, obs, actions) -> None:
        """Zero mean, unit variance of r̂ over these steps from now on (e.g. PPO's latest rollout); without
        ``center``, unit root mean square with the level kept."""
        raw = self.member_rewards(obs, actions).mean(axis=0)
        offset = float(raw.mean()) if self.center else 0.0
        spread = float(raw.std()) if self.center else float(np.sqrt(np.mean(raw**2)))
        self.offset, self.scale = offset, spread if spread > 1e-8 else 1.0

    # ---- training ----------------------------------------------------------------------------------

    def is_validation(self, query_id: int) -> bool:
        if not self.val_fraction:
            return False
        return bool(np.random.default_rng([self.seed, 9, query_id % 2**63]).random() < self.val_fraction)

    def _batch(self, items: Sequence[dict], multiplicity: Sequence[np.ndarray] | None = None):
        """Stacked inputs, segment index per step, pairs (multiplicity-weighted) of several ranked queries."""
        inputs = {k: np.concatenate([it["inputs"][k] for it in items]) for k in items[0]["inputs"]}
        offsets = np.concatenate([[0], np.cumsum([it["k"] for it in items])[:-1]])
        seg = np.concatenate([it["seg"] + o for it, o in zip(items, offsets, strict=True)])
        pairs = [it["pairs"] for it in items]
        weight = np.concatenate([p.weight for p in pairs])
        if multiplicity is not None:
            weight = weight * np.concatenate(multiplicity).astype(np.float32)
        t = self._tensors(
            {
                "better": np.concatenate([p.better + o for p, o in zip(pairs, offsets, strict=True)]),
                "worse": np.concatenate([p.worse + o for p, o in zip(pairs, offsets, strict=True)]),
                "target": np.concatenate([p.target for p in pairs]),
                "weight": weight,
                "seg": seg,
            }
        )
        return self._tensors(inputs), t, int(offsets[-1] + items[-1]["k"])

    def _returns(self, member: nn.Module, inputs, seg: torch.Tensor, n_segments: int) -> torch.Tensor:
        r = member(inputs)
        return torch.zeros(n_segments, dtype=r.dtype, device=r.device).index_add_(0, seg, r)

    def loss(self, data: Sequence[RankedQuery], member: int = 0, multiplicity=None) -> torch.Tensor:
        """The Bradley–Terry loss of one member over these ranked queries, all pairs of each ranking in the
        batch (differentiable: ``fit`` steps on it)."""
        inputs, t, n_seg = self._batch([self._item(d) for d in data], multiplicity)
        returns = self._returns(self.members[member], inputs, t["seg"], n_seg)
        return bradley_terry_loss(
            returns, t["better"], t["worse"], t["target"], t["weight"], self.random_answer
        )

    def _fold_observations(self, data: Sequence[RankedQuery]) -> None:
        if self.obs_stats is None:
            return
        for d in data:
            if d.query.id not in self.seen:
                self.seen.add(d.query.id)
                obs = np.concatenate([s.obs for s in d.query.attempts])
                self.obs_stats.update(self.encode(obs, np.zeros(len(obs), dtype=np.int64))["x"])
        mean = torch.as_tensor(self.obs_stats.mean, dtype=torch.float32)
        std = torch.as_tensor(np.sqrt(self.obs_stats.var + 1e-8), dtype=torch.float32)
        for member in self.members:
            assert isinstance(member, NetReward)
            member.mean.copy_(mean)
            member.std.copy_(std)

    def fit(self, data: Sequence[RankedQuery], epochs: int | None = None) -> dict:
        """One training round on every ranked query so far (skipped ones and held-out ones aside):
        ``epochs`` passes of minibatches of ``batch`` rankings per member. Returns (and appends to
        ``history``) the round's report: rankings, pairs, human seconds, mean loss of the last epoch,
        validation pairs and accuracy (NaN with no held-out pair)."""
        usable = [d for d in data if not d.ranking.skipped and d.ranking.pairs()]
        if not usable:
            raise ConfigError("no ranking to learn from (every query was skipped or had one attempt)")
        self._fold_observations(usable)
        val = [d for d in usable if self.is_validation(d.query.id)]
        train = [d for d in usable if not self.is_validation(d.query.id)]
        if not train:  # a tiny first round all held out: learn from it, validate on nothing
            train, val = usable, []
        items = [self._item(d) for d in train]
        n_pairs = [len(it["pairs"].target) for it in items]
        epochs = self.epochs if epochs is None else epochs
        losses = []
        for member, opt, rng in zip(self.members, self.optimizers, self.rngs, strict=True):
            mult = None
            if self.bootstrap:
                counts = rng.multinomial(sum(n_pairs), np.full(sum(n_pairs), 1.0 / sum(n_pairs)))
                mult = np.split(counts, np.cumsum(n_pairs)[:-1])
            for epoch in range(epochs):
                order = rng.permutation(len(items))
                for start in range(0, len(items), self.batch):
                    chosen = order[start : start + self.batch]
                    if mult is not None and not any(mult[i].any() for i in chosen):
                        continue
                    inputs, t, n_seg = self._batch(
                        [items[i] for i in chosen], None if mult is None else [mult[i] for i in chosen]
                    )
                    returns = self._returns(member, inputs, t["seg"], n_seg)
                    loss = bradley_terry_loss(
                        returns, t["better"], t["worse"], t["target"], t["weight"], self.random_answer
                    )
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if epoch == epochs - 1:
                        losses.append(loss.item())
        accuracy, val_pairs = self.accuracy(val)
        recent = [s for d in usable[::-1] for s in d.query.attempts[::-1]]
        keep = np.cumsum([len(s) for s in recent]) <= max(self.norm_states, len(recent[0]))
        states = [s for s, k in zip(recent, keep, strict=True) if k]
        self.calibrate(np.concatenate([s.obs for s in states]), np.concatenate([s.actions for s in states]))
        report = {
            "round": len(self.history),
            "rankings": len(train),
            "pairs": sum(n_pairs),
            "skipped": sum(d.ranking.skipped for d in data),
            "human_seconds": float(sum(d.ranking.seconds for d in data)),
            "loss": float(np.mean(losses)) if losses else math.nan,
            "val_rankings": len(val),
            "val_pairs": val_pairs,
            "val_accuracy": accuracy,
        }
        self.history.append(report)
        return report

    def accuracy(self, data: Sequence[RankedQuery]) -> tuple[float, int]:
        """Fraction of the untied pairs of these rankings where the ensemble's R̂(better) > R̂(worse)."""
        hits, total = 0, 0
        for d in data:
            returns = self.member_returns(d.query.attempts).mean(axis=0)
            for i, j, t in d.ranking.pairs():
                if t == 1.0:
                    hits += int(returns[i] > returns[j])
                    total += 1
        return (hits / total if total else math.nan), total

    # ---- persistence -------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Every member's weights (and input statistics), Adam's moments, the generators, the output
        scale and the history: ``tamer.deep.dumps`` stores it, ``loads`` reads it back."""
        stats = self.obs_stats
        return {
            "kind": self.kind,
            "seed": self.seed,  # keys the held-out split
            "members": [m.state_dict() for m in self.members],
            "optimizers": [o.state_dict() for o in self.optimizers],
            "rngs": [rng_state(r) for r in self.rngs],
            "output": [self.offset, self.scale],
            "obs_stats": None
            if stats is None
            else [stats.count, torch.from_numpy(stats.mean.copy()), torch.from_numpy(stats.var.copy())],
            "seen": sorted(self.seen),
            "history": [dict(h) for h in self.history],
        }

    def load_state_dict(self, state: dict) -> None:
        if state["kind"] != self.kind or len(state["members"]) != self.n_members:
            raise ConfigError(
                f"saved reward model is {state['kind']} x{len(state['members'])}, "
                f"this one {self.kind} x{self.n_members}"
            )
        try:
            for m, s in zip(self.members, state["members"], strict=True):
                m.load_state_dict(s)
        except RuntimeError as e:
            raise ConfigError(f"saved reward model does not fit: {str(e).splitlines()[0]}") from None
        for o, s in zip(self.optimizers, state["optimizers"], strict=True):
            o.load_state_dict(s)
        for r, s in zip(self.rngs, state["rngs"], strict=True):
            set_rng_state(r, s)
        self.seed = int(state["seed"])
        self.offset, self.scale = (float(v) for v in state["output"])
        if self.obs_stats is not None and state["obs_stats"] is not None:
            count, mean, var = state["obs_stats"]
            stats = self.obs_stats
            stats.count, stats.mean, stats.var = int(count), mean.numpy().copy(), var.numpy().copy()
        self.seen = set(int(i) for i in state["seen"])
        self.history = [dict(h) for h in state["history"]]
