"""Neural models in torch: Deep TAMER's Ĥ (Warnell et al. 2018) and DQN (Mnih et al. 2015) as the RL side.

Both implement the same interfaces as the linear ones (``tamer.models.HumanRewardModel`` and the learner
interface of ``tamer.rl``), so every agent, blend, credit assigner and session runs them unchanged:

- ``NeuralModel``: Ĥ(s, ·) as one network with an output per action, an MLP over vector observations or a
  small CNN over images. Every feedback's credited samples go into a ``FeedbackBuffer``; each feedback
  triggers ``updates`` gradient steps, the first on the new samples together with a minibatch from the
  buffer, the rest on minibatches alone, so the few labels a person gives are reused many times.
- DQN, the RL side built from the same parts, is in ``tamer.dqn``; PPO in ``tamer.ppo``.

Speed: the nets are small, so per-step cost is dominated by Python and torch call overhead, not FLOPs. We
run one torch thread by default (``Config.torch_threads``), wrap inference in ``torch.inference_mode``,
convert inputs without copies (``torch.from_numpy``), cache the last two forward passes (blends often ask
for the same state twice), and do all learning on whole minibatches.

Reproducibility: each model owns a numpy Generator (minibatch sampling) and initialises its weights under a
forked torch RNG seeded from the config's seed, so two runs with the same config and seed give identical
numbers on CPU, and the global torch RNG is left alone.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from tamer.errors import ConfigError

# --------------------------------------------------------------------------------------------- devices


def pick_device(name: str, *, images: bool) -> torch.device:
    """The torch device of ``--device``: ``cpu``; ``cuda`` (a config error without one); ``auto``: CUDA only
    when torch sees one *and* the model reads images (the CNN), else CPU. Our nets are small, so a step costs
    Python and kernel launches more than FLOPs, and on a GPU it also pays host-device copies: the CartPole MLP
    ran 2.4x slower on CUDA than on one CPU thread (an earlier round, on a GPU machine). A CNN over frames
    does far more arithmetic per sample, where a GPU should pay: that half awaits ``benchmarks/device.py``'s
    CUDA figures."""
    if name == "auto":
        return torch.device("cuda" if images and torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda, but torch sees no CUDA device; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {name!r}; known: cpu, cuda, auto")
    return torch.device(name)


def parse_hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"hidden sizes must be comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"hidden sizes must be one or more integers >= 1, got {text!r}")
    return sizes


# -------------------------------------------------------------------------------------------- encoding


class NetInput(np.ndarray):
    """An encoded observation: a plain ndarray that also offers ``val``, the flat input vector.

    ``val`` exists for blends written against linear features that normalise a step by ||φ||² (``h_feature``
    reads ``x.val``); for a network the input vector is the nearest equivalent."""

    @property
    def val(self) -> np.ndarray:
        return np.asarray(self, dtype=np.float64).reshape(-1)


class ObservationEncoder:
    """Observation -> network input, computed once per step.

    Discrete observations become one-hot vectors; 1-d boxes float32 vectors, scaled to [-1, 1] when
    ``scale`` where bounds are known (the box's, else tile coding's defaults for the env: Ĥ learns slowly
    from CartPole's pole angle of ±0.2 rad next to velocities of ±3); images (H, W, C) or (H, W)
    uint8 arrays (C·stack, H/d, W/d): mean-pooled by ``downsample`` d and the last ``frame_stack`` frames
    stacked on the channel axis (so a CNN sees motion). Images stay uint8 (4x smaller in replay buffers);
    the network scales them to [0, 1]. Stacking needs to know where episodes start: ``episode_clock`` is a
    callable giving the agent's episode counter, and a change of it resets the stack.
    """

    def __init__(
        self,
        space: gym.Space,
        downsample: int = 1,
        frame_stack: int = 1,
        bounds: tuple[np.ndarray, np.ndarray] | None = None,
        scale: bool = True,
    ):
        self.downsample, self.frame_stack = downsample, frame_stack
        self.episode_clock: Callable[[], int] | None = None
        self._episode: int | None = None
        self._frames: deque[np.ndarray] = deque(maxlen=frame_stack)
        self.shape: tuple[int, ...]  # (n,) for vectors, (C·stack, H/d, W/d) for images
        self.dtype: type[np.generic]
        if isinstance(space, gym.spaces.Discrete):
            self.kind, self.start = "onehot", int(space.start)
            self.shape, self.dtype = (int(space.n),), np.float32
            self._eye = np.eye(int(space.n), dtype=np.float32)
        elif isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
            self.kind, self.shape, self.dtype = "vector", space.shape, np.float32
            low, high = bounds if bounds is not None else (space.low, space.high)
            low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
            known = np.isfinite(low) & np.isfinite(high) & (high > low) & (np.abs(high - low) < 1e6) & scale
            self.center = np.where(known, (low + high) / 2, 0.0).astype(np.float32)
            self.inv_half = np.where(known, 2 / np.where(known, high - low, 1.0), 1.0).astype(np.float32)
        elif isinstance(space, gym.spaces.Box) and len(space.shape) in (2, 3):
            h, w = space.shape[:2]
            c = space.shape[2] if len(space.shape) == 3 else 1
            if h < downsample or w < downsample:
                raise ConfigError(f"images of {h}x{w} px cannot be downsampled by {downsample}")
            self.kind, self.dtype = "image", np.uint8
            self.shape = (c * frame_stack, h // downsample, w // downsample)
        else:
            raise ConfigError(
                f"neural models read Discrete, 1-d Box or image (H, W[, C]) observations, not {space}"
            )
        if self.kind != "image" and frame_stack != 1:
            raise ConfigError("--frame-stack > 1 is for image observations only")

    @property
    def is_image(self) -> bool:
        return self.kind == "image"

    def frame(self, obs) -> np.ndarray:
        """One image as (C, H/d, W/d) uint8."""
        img = np.asarray(obs)
        if img.ndim == 2:
            img = img[:, :, None]
        d = self.downsample
        if d > 1:
            h, w, c = img.shape
            img = img[: h - h % d, : w - w % d].reshape(h // d, d, w // d, d, c).mean(axis=(1, 3))
            img = img.round().astype(np.uint8)
        return np.ascontiguousarray(img.transpose(2, 0, 1))

    def __call__(self, obs) -> NetInput:
        if self.kind == "vector":
            return ((np.asarray(obs, dtype=np.float32) - self.center) * self.inv_half).view(NetInput)
        if self.kind == "onehot":
            return self._eye[int(obs) - self.start].view(NetInput)
        frame = self.frame(obs)
        if self.frame_stack == 1:
            return frame.view(NetInput)
        episode = self.episode_clock() if self.episode_clock is not None else 0
        if episode != self._episode or not self._frames:
            self._episode = episode
            self._frames.extend([frame] * self.frame_stack)  # a new episode starts from a still picture
        else:
            self._frames.append(frame)
        return np.concatenate(self._frames, axis=0).view(NetInput)


# ---------------------------------------------------------------------------------------------- networks


class MLP(nn.Module):
    def __init__(self, n_in: int, hidden: Sequence[int], n_out: int):
        super().__init__()
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(n_in, size), nn.ReLU()]
            n_in = size
        layers.append(nn.Linear(n_in, n_out))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class SmallCNN(nn.Module):
    """Three 3x3 convolutions (the last two stride 2), pooled to at most 6x6, then an MLP head.

    Sized for the small frames of teaching tasks (a grid world is 24x24 px): Nature-DQN's 8x8 stride-4
    first layer would see a whole grid cell as one pixel. Adaptive pooling keeps the head small for larger
    frames too (downsample them first)."""

    def __init__(self, shape: tuple[int, ...], hidden: Sequence[int], n_out: int):
        super().__init__()
        c, h, w = shape  # (C, H, W)
        self.convs = nn.Sequential(
            nn.Conv2d(c, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d((min(6, (h + 3) // 4), min(6, (w + 3) // 4))),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.convs(torch.zeros(1, c, h, w)).shape[1]
        self.head = MLP(n_flat, hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(x.float() * (1.0 / 255.0)))


def make_net(
    encoder: ObservationEncoder, hidden: Sequence[int], n_out: int, seed: int, zero_output: bool = True
) -> nn.Module:
    """MLP for vectors, CNN for images; weights drawn from a torch RNG seeded by ``seed`` without touching
    the global RNG's state (``fork_rng``), so building a model never changes another's numbers.

    The output layer starts at zero, as the linear models do: an action never taken in a region keeps
    Ĥ = 0 there rather than a random value, so after a -1 the greedy agent tries the other actions instead of
    repeating one that a random initial output happened to favour (seen as runs stuck at 9-step episodes).
    DQN keeps PyTorch's default initialisation (``zero_output=False``), as the reference DQN does."""
    net: nn.Module
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if encoder.is_image:
            net = SmallCNN(encoder.shape, hidden, n_out)
        else:
            net = MLP(int(np.prod(encoder.shape)), hidden, n_out)
    if zero_output:
        last = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    return net


class CachedForward:
    """The network's outputs for the last two inputs seen. A step asks for the same state more than once
    (acting, then a blend's ``values`` for s and s'); the cache answers by identity, and is cleared by
    every gradient step."""

    def __init__(self, net: nn.Module, device: torch.device):
        self.net, self.device = net, device
        self.keys: list = [None, None]
        self.values: list = [None, None]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        keys = self.keys
        if x is keys[1]:
            return self.values[1].copy()  # a copy, as LinearTD.values gives: callers may add to it
        if x is keys[0]:
            return self.values[0].copy()
        with torch.inference_mode():
            out = self.net(torch.from_numpy(np.asarray(x)).to(self.device).unsqueeze(0))[0]
        value = out.cpu().numpy().astype(np.float64)
        keys[0], keys[1] = keys[1], x
        self.values[0], self.values[1] = self.values[1], value
        return value.copy()

    def clear(self) -> None:
        self.keys[0] = self.keys[1] = None


# ----------------------------------------------------------------------------------------------- buffers


class ReplayBuffer:
    """Fixed-capacity ring of named, preallocated arrays; ``add`` writes whole batches by numpy indexing.

    Rows are numbered in the order added (``total`` so far): row t sits in slot t % capacity, and the rows
    held are the last ``size``. A checkpoint can so save only the rows added since the one before
    (``tamer.rowstore``, through ``Agent.save``) instead of copying the whole buffer each time."""

    def __init__(self, capacity: int, fields: dict[str, tuple[tuple[int, ...], type]]):
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.total = 0  # rows ever added
        self.loads = 0  # times its rows were replaced by a saved state (a side file then starts afresh)
        self.data: dict[str, np.ndarray] = {
            name: np.zeros((capacity, *shape), dtype=dtype) for name, (shape, dtype) in fields.items()
        }

    def add(self, **columns) -> np.ndarray:
        """Append rows (every column has the same leading length); returns the slots written."""
        n = len(next(iter(columns.values())))
        slots = (self.pos + np.arange(n)) % self.capacity
        for name, values in columns.items():
            self.data[name][slots] = values
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.capacity, self.size + n)
        self.total += n
        return slots

    def rows(self, first: int, end: int) -> dict[str, np.ndarray]:
        """Rows number ``first`` to ``end`` - 1 (all still held), each column contiguous."""
        if not self.total - self.size <= first <= end <= self.total:
            raise ValueError(
                f"rows {first}..{end} are not held (rows {self.total - self.size}..{self.total})"
            )
        start, n = first % self.capacity, end - first
        if start + n <= self.capacity:
            return {name: a[start : start + n] for name, a in self.data.items()}
        rest = start + n - self.capacity  # the ring wraps: two pieces
        return {name: np.concatenate((a[start:], a[:rest])) for name, a in self.data.items()}

    def batch(self, slots: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        return {name: torch.from_numpy(a[slots]).to(device) for name, a in self.data.items()}

    def state_dict(self) -> dict:
        """The filled rows as tensors, so ``torch.load(weights_only=True)`` reads them back."""
        return {
            "size": self.size,
            "pos": self.pos,
            **{name: torch.from_numpy(a[: self.size].copy()) for name, a in self.data.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        """What ``state_dict`` returns, its columns tensors or numpy arrays (as ``tamer.rowstore`` reads
        them from a side file)."""
        size = int(state["size"])
        if size > self.capacity:
            raise ConfigError(f"saved buffer holds {size} rows, this config's capacity is {self.capacity}")
        for name, a in self.data.items():
            saved = state[name]
            saved = saved.numpy() if isinstance(saved, torch.Tensor) else np.asarray(saved)
            if saved.shape[1:] != a.shape[1:]:
                raise ConfigError(
                    f"saved buffer column {name} has rows {saved.shape[1:]}, need {a.shape[1:]}"
                )
            a[:size] = saved
        self.size, self.pos = size, int(state["pos"])
        # any count of rows with that slot for the next one will do: row t sits in slot t % capacity
        self.total = self.size if self.size < self.capacity else self.capacity + self.pos
        self.loads += 1


def rng_state(rng: np.random.Generator) -> Mapping[str, Any]:
    return rng.bit_generator.state


def set_rng_state(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = state


# ------------------------------------------------------------------------------------------- Deep TAMER


class NeuralModel:
    """Ĥ(s, a) as a network with one output per action, trained from a feedback replay buffer
    (Deep TAMER, Warnell et al. 2018).

    Loss: Σ credit·(h − Ĥ(s, a))² over a minibatch, divided by its size: the credit-weighted squared error
    of TAMER, with samples of small credit (steps at the edge of the delay window) counting little. Each
    feedback adds its credited samples to the buffer and takes ``updates`` Adam steps: the first on the new
    samples plus ``batch_size`` from the buffer (one batched pass), the others on buffer minibatches.
    """

    row_buffers = ("buffer",)  # state_dict(rows=False) keys holding a ReplayBuffer (tamer.rowstore)

    def __init__(
        self,
        encoder: ObservationEncoder,
        n_actions: int,
        hidden: Sequence[int] = (64, 64),
        lr: float = 1e-3,
        buffer_size: int = 10_000,
        batch_size: int = 32,
        updates: int = 1,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ):
        self.encoder, self.n_actions = encoder, n_actions
        self.batch_size, self.updates = batch_size, updates
        self.device = torch.device(device)
        net_seed, rng_seed = np.random.SeedSequence([seed, 1]).generate_state(2)
        self.net = make_net(encoder, hidden, n_actions, int(net_seed)).to(self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.rng = np.random.default_rng(int(rng_seed))
        self.buffer = ReplayBuffer(
            buffer_size,
            {
                "x": (encoder.shape, encoder.dtype),
                "a": ((), np.int64),
                "c": ((), np.float32),
                "h": ((), np.float32),
            },
        )
        self.forward = CachedForward(self.net, self.device)
        self.n_updates = 0

    def encode(self, obs) -> NetInput:
        return self.encoder(obs)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def update(self, xs: Sequence, actions: Sequence[int], credits: Sequence[float], hs) -> None:
        """``hs`` is one h for the whole batch (one feedback) or one per sample."""
        if not len(xs):
            return
        hs = np.full(len(xs), hs, dtype=np.float32) if np.isscalar(hs) else np.asarray(hs, dtype=np.float32)
        new = self.buffer.add(x=np.stack(xs), a=np.asarray(actions), c=np.asarray(credits), h=hs)
        for i in range(self.updates):
            slots = self.rng.integers(self.buffer.size, size=min(self.batch_size, self.buffer.size))
            self.train_on(np.concatenate([new, slots]) if i == 0 else slots)

    def train_on(self, slots: np.ndarray) -> float:
        b = self.buffer.batch(slots, self.device)
        pred = self.net(b["x"]).gather(1, b["a"].unsqueeze(1)).squeeze(1)
        loss = (b["c"] * (b["h"] - pred) ** 2).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.forward.clear()
        self.n_updates += 1
        return loss.item()

    def state_dict(self, rows: bool = True) -> dict:
        """Weights, Adam's moments, the feedback buffer and the sampling RNG: everything a resumed session
        needs to continue exactly as if it had not stopped. ``rows=False``: the buffer itself instead of a
        copy of its rows (``Agent.save`` then saves only the rows added since its last save)."""
        return {
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "buffer": self.buffer.state_dict() if rows else self.buffer,
            "rng": rng_state(self.rng),
            "n_updates": self.n_updates,
        }

    def load_state_dict(self, state: dict) -> None:
        try:
            self.net.load_state_dict(state["net"])
        except (RuntimeError, KeyError) as e:
            raise ConfigError(f"saved Ĥ network does not fit this config: {str(e).splitlines()[0]}") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.buffer.load_state_dict(state["buffer"])
        set_rng_state(self.rng, state["rng"])
        self.n_updates = int(state["n_updates"])
        self.forward.clear()


# ------------------------------------------------------------------------------------------ persistence


def dumps(state: dict) -> np.ndarray:
    """A state dict of tensors and plain values as bytes in a uint8 array, to ride inside the session's npz
    (one file, so ``save_atomic``'s rename still makes the save atomic)."""
    blob = io.BytesIO()
    torch.save(state, blob)
    return np.frombuffer(blob.getvalue(), dtype=np.uint8)


def loads(data: np.ndarray) -> dict:
    return torch.load(io.BytesIO(data.tobytes()), map_location="cpu", weights_only=True)


# ------------------------------------------------------------------------------------------ construction


def configure_torch(threads: int) -> None:
    """Small nets gain nothing from more threads: each tiny matmul would pay their synchronisation."""
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def make_encoder(cfg, env: gym.Env, scale: bool = True) -> ObservationEncoder:
    """``scale``: vector observations scaled to [-1, 1] (Ĥ learns faster so from scarce labels); DQN reads
    them raw, as the reference implementation does (scaled, it learned CartPole more slowly)."""
    space, bounds = env.observation_space, None
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        from tamer.envs import env_id_of
        from tamer.features import box_bounds

        bounds = box_bounds(space, env_id_of(env, cfg.env), cfg.obs_low, cfg.obs_high)
    return ObservationEncoder(space, cfg.downsample, cfg.frame_stack, bounds, scale)


# Adam step sizes for --h-net-lr 0, measured with experiments/deep_cartpole.py (10 seeds each): the MLP on
# CartPole reaches a last-5 return of 443 at 3e-3 and 226 at 1e-3; the CNN on GridWorldPixels learns on 8/10
# seeds at 1e-3 and 6/10 at 3e-3.
H_NET_LR = {"mlp": 3e-3, "cnn": 1e-3}


def make_neural_h(cfg, env: gym.Env, n_actions: int) -> NeuralModel:
    """Deep TAMER's Ĥ for ``--model mlp`` or ``cnn`` (the kind must fit the observation space)."""
    configure_torch(cfg.torch_threads)
    encoder = make_encoder(cfg, env)
    if (cfg.model == "cnn") != encoder.is_image:
        want = "cnn" if encoder.is_image else "mlp (or linear)"
        raise ConfigError(
            f"--model {cfg.model} does not fit {cfg.env}'s observations {env.observation_space}; use {want}"
        )
    return NeuralModel(
        encoder,
        n_actions,
        parse_hidden(cfg.h_hidden),
        cfg.h_net_lr or H_NET_LR[cfg.model],
        cfg.h_buffer,
        cfg.h_batch,
        cfg.h_updates,
        pick_device(cfg.device, images=encoder.is_image),
        cfg.seed,
    )
