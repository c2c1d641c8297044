"""The run configuration: one flat dataclass, every field typed, defaulted and documented.

Flat on purpose: a sweep can grid over any field by name, the CLI has one ``--flag`` per field whose help
text is the field's doc, and a run folder's ``config.json`` is the whole story of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tamer.errors import ConfigError
from tamer.settings import Settings, flag_name, is_plugin_spec, knob, rule

__all__ = ["Config", "Settings", "knob"]

# Upper bounds of sizes: far beyond any useful value, low enough that a typo (1e8 tilings) is refused in one
# line instead of allocating gigabytes.
MAX_TILINGS, MAX_BINS, MAX_RBF_CENTERS = 1024, 1024, 100
MAX_BUFFER, MAX_BATCH, MAX_LAYER, MAX_LAYERS = 10_000_000, 65_536, 65_536, 32
# Where time-based credit works at all: a step of 1 ms to 1000 s, and feedback delays a person might have
# (the credit history is kept that long, so an absurd delay would keep every step of the run).
MIN_STEP_RATE, MAX_STEP_RATE, MAX_DELAY, MAX_GAMMA_SHAPE = 1e-3, 1e3, 60.0, 100.0


@dataclass
class Config(Settings):
    # --- what runs
    env: str = knob("MountainCar-v0", "Gymnasium environment id (discrete actions), e.g. tamer/GridWorld-v0.")
    agent: Literal["tamer", "rl", "tamer+rl", "bc", "rankings"] = knob(
        "tamer",
        "tamer: act on Ĥ only; rl: MDP reward only; tamer+rl: both, combined by --blend; bc: a policy "
        "cloned from demonstrations (--demos); rankings: PPO on a reward model r̂ learned from rankings of "
        "its own attempts, in rounds (tamer.pipeline; --rank-* flags; --rl does not apply).",
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
    # --- demonstrations and behaviour cloning (--agent bc)
    demos: str = knob(
        "",
        "Demonstrations for --agent bc: empty = a simulated demonstrator on --oracle; or a `tamer play "
        "--demonstrate` session folder, its steps.csv, or a .npz of obs/actions.",
    )
    demo_episodes: int = knob(5, "Simulated demonstrator: episodes it plays.", ge=1, le=MAX_BUFFER)
    demo_steps: int = knob(
        0, "Simulated demonstrator: step budget (0 = whole episodes).", ge=0, le=MAX_BUFFER
    )
    demo_error: float = knob(
        0.05, "Simulated demonstrator: probability of a uniformly random action instead.", ge=0, le=1
    )
    bc_epochs: int = knob(20, "Behaviour cloning: passes over the demonstrations.", ge=1, le=100_000)
    bc_lr: float = knob(
        0.0, "Behaviour cloning: step size; 0 = 0.5 (normalised SGD) linear, 1e-3 (Adam) mlp/cnn.", ge=0
    )
    bc_batch: int = knob(64, "Behaviour cloning: minibatch size.", ge=1, le=MAX_BATCH)
    # --- credit assignment (Knox & Stone 2009)
    delay: Literal["uniform", "gamma"] = knob(
        "uniform", "Delay density of feedback after the event it judges."
    )
    delay_min: float = knob(0.2, "Uniform delay: lower end, seconds (Knox & Stone 2009: 0.2).", ge=0)
    delay_max: float = knob(0.8, "Uniform delay: upper end, seconds (Knox & Stone 2009: 0.8).", gt=0)
    gamma_shape: float = knob(2.0, "Gamma delay: shape k.", gt=0)
    gamma_scale: float = knob(0.28, "Gamma delay: scale θ, seconds (mode (k-1)θ = 0.28 s).", gt=0)
    credit: Literal["delay", "immediate", "previous"] = knob(
        "delay",
        "Which steps a feedback credits: delay (spread by --delay's density); immediate (all to the step on "
        "screen when it came); previous (all to the step before that one: Knox & Stone's Tetris).",
    )
    # --- features and the model Ĥ
    features: Literal["auto", "tile", "tile_pairs", "tile_dims", "rbf", "onehot", "tetris"] = knob(
        "auto",
        "auto: one-hot for Discrete; for a Box, tile coding up to 4 dimensions, tile_pairs above. "
        "tile_pairs: tile coding over every pair of dimensions, side by side; tile_dims: over each "
        "dimension alone; tetris: the 46 Tetris features of each placement's afterstate (tamer.tetris; "
        "auto on tamer/Tetris-v0).",
    )
    tilings: int = knob(8, "Tile coding: number of tilings.", ge=1, le=MAX_TILINGS)
    bins: int = knob(8, "Tile coding: tiles per dimension per tiling.", ge=1, le=MAX_BINS)
    tile_offsets: Literal["asymmetric", "uniform"] = knob(
        "asymmetric", "Tile coding: offsets between tilings."
    )
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
    rl: Literal["sarsa", "qlearning", "dqn", "ppo"] = knob(
        "sarsa",
        "MDP-reward learner: sarsa (Sarsa(λ)), qlearning (Watkins Q(λ)), dqn (deep Q-network; give it "
        "--gamma 0.99) or ppo (policy gradient, tamer.ppo; give it --gamma 0.98; with a blend only "
        "reward_shaping, potential_shaping, h_as_reward).",
    )
    rl_lr: float = knob(0.5, "RL step size, normalised by the feature norm (0.5 = α 0.5/tilings).", gt=0)
    gamma: float = knob(1.0, "RL discount factor γ.", ge=0, le=1)
    lam: float = knob(0.9, "RL trace decay λ.", ge=0, le=1)
    rl_epsilon: float = knob(0.0, "RL ε at the start (optimistic q_init explores without it).", ge=0, le=1)
    rl_epsilon_decay: float = knob(1.0, "RL ε multiplied by this each episode.", gt=0, le=1)
    rl_epsilon_min: float = knob(0.0, "RL ε floor.", ge=0, le=1)
    q_init: float = knob(0.0, "Initial Q value of every state-action (0 is optimistic for -1 rewards).")
    # --- neural models (Deep TAMER) and DQN
    model: Literal["auto", "linear", "mlp", "cnn", "knn"] = knob(
        "auto",
        "Ĥ model: auto (linear, or cnn for image observations); linear (over --features); mlp (vector "
        "observations) or cnn (image observations), the networks of Deep TAMER (Warnell et al. 2018); knn.",
    )
    knn_k: int = knob(60, "kNN Ĥ: neighbours averaged per prediction (tamer.knn).", ge=1, le=10_000)
    knn_capacity: int = knob(20000, "kNN Ĥ: samples kept (then the oldest go).", ge=1, le=MAX_BUFFER)
    device: Literal["cpu", "cuda", "auto"] = knob(
        "cpu", "Torch device of neural models; auto = CUDA for CNNs on images when present, else CPU."
    )
    torch_threads: int = knob(1, "Torch CPU threads; small nets gain nothing from more.", ge=1, le=1024)
    h_hidden: str = knob("64,64", "Neural Ĥ: hidden layer sizes (after the convolutions, for cnn).")
    h_net_lr: float = knob(
        0.0, "Neural Ĥ: Adam step size; 0 picks 3e-3 for mlp, 1e-3 for cnn (unreliable at 3e-3).", ge=0
    )
    h_buffer: int = knob(
        10000, "Neural Ĥ: feedback replay buffer capacity, in (s, a, credit, h) samples.", ge=1, le=MAX_BUFFER
    )
    h_batch: int = knob(
        32, "Neural Ĥ: minibatch drawn from the feedback buffer per update.", ge=1, le=MAX_BATCH
    )
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
    # --- PPO (--rl ppo, tamer.ppo). Defaults: RL Zoo's CartPole-v1 set (8 envs × 32 steps, minibatch 256,
    # 20 epochs, λ 0.8, lr 1e-3 and clip 0.2 both linear to 0, no entropy bonus, 1e5 steps; with --gamma 0.98)
    ppo_envs: int = knob(
        8,
        "PPO: envs stepped together (gymnasium SyncVectorEnv) by --agent rl; inside a blend one env runs and "
        "a rollout is envs × n-steps of its steps (RL Zoo CartPole: 8).",
        ge=1,
        le=1024,
    )
    ppo_n_steps: int = knob(
        32, "PPO: steps per env in each rollout (RL Zoo CartPole: 32).", ge=1, le=MAX_BUFFER
    )
    ppo_batch: int = knob(256, "PPO: minibatch size (RL Zoo CartPole: 256).", ge=1, le=MAX_BATCH)
    ppo_epochs: int = knob(20, "PPO: passes over each rollout (RL Zoo CartPole: 20).", ge=1, le=1000)
    ppo_lr: float = knob(1e-3, "PPO: Adam step size at the start (RL Zoo CartPole: 1e-3, linear).", gt=0)
    ppo_clip: float = knob(0.2, "PPO: clip range ε of the probability ratio at first (RL Zoo: 0.2).", gt=0)
    ppo_ent_coef: float = knob(0.0, "PPO: weight of the entropy bonus (RL Zoo CartPole: 0).", ge=0)
    ppo_vf_coef: float = knob(0.5, "PPO: weight of the value loss (SB3's default 0.5).", ge=0)
    ppo_gae_lambda: float = knob(0.8, "PPO: GAE's λ (RL Zoo CartPole: 0.8).", ge=0, le=1)
    ppo_max_grad_norm: float = knob(0.5, "PPO: gradient norm clipped to this (SB3's default 0.5).", gt=0)
    ppo_anneal: Literal["linear", "none"] = knob(
        "linear", "PPO: linear: step size and clip range fall linearly to 0 over --ppo-steps (RL Zoo); none."
    )
    ppo_steps: int = knob(
        100_000,
        "PPO: env steps to train --agent rl --rl ppo (in whole rollouts; --episodes does not apply there), "
        "and the horizon of --ppo-anneal (RL Zoo CartPole: 1e5).",
        ge=1,
    )
    ppo_hidden: str = knob("64,64", "PPO: layer sizes of the policy and of the separate value net (tanh).")
    kl_coef: float = knob(
        0.0,
        "PPO: weight β of the KL penalty: each step's reward loses β·KL(π(·|s) ‖ π_ref(·|s)) (InstructGPT).",
        ge=0,
    )
    reference: str = knob(
        "", "PPO: run folder whose saved policy is π_ref of the KL penalty (default: the --init run)."
    )
    init: str = knob("", "PPO: run folder whose saved policy (and value net, if saved) PPO starts from.")
    # --- rankings (--agent rankings, tamer.pipeline): rounds of K attempts ranked, r̂ retrained, PPO on r̂
    rank_rounds: int = knob(
        10, "Rankings: rounds; each ranks queries, retrains r̂, then PPO takes --ppo-steps / rounds steps.",
        ge=1, le=100_000,
    )  # fmt: skip
    rank_queries: int = knob(10, "Rankings: queries per round (when --rank-pairs is 0).", ge=0, le=MAX_BUFFER)
    rank_pairs: int = knob(
        0,
        "Rankings: budget of ranked pairs over all rounds (a query gives K(K-1)/2), spread by --rank-decay; "
        "0 = --rank-queries every round.",
        ge=0, le=MAX_BUFFER,
    )  # fmt: skip
    rank_decay: float = knob(
        1.0,
        "Rankings: with --rank-pairs, round r gets a share of the queries ∝ 1/(1 + decay·r) (hyperbolic, "
        "Christiano et al.'s decaying label rate); 0 = equal shares.",
        ge=0, le=1e6,
    )  # fmt: skip
    rank_k: int = knob(2, "Rankings: attempts per query, ranked best to worst.", ge=2, le=9)
    rank_length: int = knob(
        0,
        "Rankings: steps per attempt; 0 = whole episodes. With --rank-start rollouts a window may reach its "
        "episode's failure and be shorter (where every step pays the same, as on CartPole, that is what "
        "tells attempts apart).",
        ge=0, le=MAX_BUFFER,
    )  # fmt: skip
    rank_start: Literal["shared", "own", "rollouts"] = knob(
        "shared",
        "Rankings: shared: a query's K attempts start from one reset seed; own: each is a window of its "
        "own episode (tamer.rankings.collect_attempts); rollouts: episodes (or windows) PPO played since "
        "the last round, so attempts cost no extra env steps (round 0 plays its own).",
    )
    rank_epsilon: float = knob(
        0.0, "Rankings: chance of a random action per attempt step besides PPO's sampling (shared, own).",
        ge=0, le=1,
    )  # fmt: skip
    rank_candidates: int = knob(
        0,
        "Rankings: attempts made per query, of which the K the reward ensemble disagrees on most are "
        "ranked (--reward-members >= 2; else K at random); 0 = K.",
        ge=0, le=1000,
    )  # fmt: skip
    ranker: str = knob(
        "return",
        "Rankings: who ranks. return: a simulated person ranking by the env's return; oracle: by the share "
        "of steps whose action --oracle approves; recorded: the rankings of --rank-log, in order; or "
        "package.module:function (segment -> value).",
        builtins=("return", "oracle", "recorded"),
    )
    rank_log: str = knob("", "Rankings: --ranker recorded's folder (tamer rank session, run's rankings/).")
    ranker_beta: float = knob(
        0.0, "Simulated ranker: rationality β of a Plackett-Luce choice by value; 0 = exactly by value.", ge=0
    )
    ranker_error: float = knob(
        0.0, "Simulated ranker: probability that an answer is a uniformly random ranking.", ge=0, le=1
    )
    ranker_tie: float = knob(
        0.0, "Simulated ranker: attempts valued closer than this are tied (0 = no ties).", ge=0
    )
    ranker_skip: float = knob(
        -1e9, "Simulated ranker: a query whose every attempt is valued below this is skipped (default: none)."
    )
    ranker_gamma: float = knob(
        1.0, "Simulated ranker: myopia, step t of T weighted gamma^(T-1-t) (1 = not myopic).", gt=0, le=1
    )
    reward_model: Literal["auto", "linear", "mlp", "cnn"] = knob(
        "auto",
        "Rankings: the reward model r̂: linear over --features, or a network; auto = linear for Discrete "
        "observations, cnn for images, mlp otherwise.",
    )
    reward_members: int = knob(
        1, "Rankings: reward ensemble members, each on its own resample (Christiano: 3).", ge=1, le=64
    )
    reward_epochs: int = knob(
        10, "Rankings: passes over all rankings so far when r̂ is retrained each round.", ge=1, le=100_000
    )
    reward_hidden: str = knob("64,64", "Rankings: hidden layer sizes of an mlp/cnn reward model.")
    reward_action: bool = knob(
        True,
        "Rankings: r̂(s, a) reads the action; --no-reward-action: r̂(s), the state's alone (imitation's "
        "use_action), which leaves PPO no per-action bonus to chase where the person judged outcomes.",
    )
    reward_lr: float = knob(
        0.0, "Rankings: reward model Adam step size; 0 = 3e-2 linear, 3e-3 mlp, 1e-3 cnn.", ge=0
    )
    reward_random: float = knob(
        0.0, "Rankings: r̂ assumes answers at random with this probability (Christiano: 0.1).", ge=0, lt=1
    )
    reward_norm: Literal["auto", "center", "scale"] = knob(
        "auto",
        "Rankings: r̂'s scale after each round: center: zero mean, unit variance over recent attempts; "
        "scale: unit root mean square, sign kept (its level is learned when attempts differ in length); "
        "auto: scale for whole episodes (--rank-length 0), center for clips.",
    )
    rank_beta: float = knob(
        0.0, "Rankings: PPO learns from the env's reward + β·r̂ (--rank-beta-schedule); 0 = r̂ alone.", ge=0
    )
    rank_beta_schedule: str = knob(
        "constant",
        "Rankings: β's schedule, as --beta-schedule's (feedback: β·decay^(steps since the last round)).",
        builtins=("constant", "episode_exp", "episode_linear", "step_exp", "feedback"),
    )
    rank_beta_decay: float = knob(1.0, "Rankings: decay of β per the schedule's unit (1 = none).", ge=0)

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
    def step_rate_is_a_pace(self) -> None:
        if self.step_rate and not MIN_STEP_RATE <= self.step_rate <= MAX_STEP_RATE:
            raise ConfigError(
                f"step-rate must be 0 (the env's own pace) or in [{MIN_STEP_RATE}, {MAX_STEP_RATE}] steps "
                f"per second, got {self.step_rate}"
            )

    @rule
    def delays_are_a_persons(self) -> None:
        if self.delay_max > MAX_DELAY:
            raise ConfigError(f"delay-max must be <= {MAX_DELAY} seconds, got {self.delay_max}")
        if self.gamma_shape > MAX_GAMMA_SHAPE:
            raise ConfigError(f"gamma-shape must be <= {MAX_GAMMA_SHAPE}, got {self.gamma_shape}")
        if self.gamma_shape * self.gamma_scale > MAX_DELAY:
            raise ConfigError(
                f"the mean gamma delay gamma-shape × gamma-scale must be <= {MAX_DELAY} seconds, got "
                f"{self.gamma_shape} × {self.gamma_scale}"
            )

    @rule
    def hidden_sizes(self) -> None:
        for name in ("h_hidden", "dqn_hidden", "ppo_hidden", "reward_hidden"):
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
        parts = (getattr(blend, "needs_h", True), getattr(blend, "needs_rl", True))
        return (*parts, getattr(blend, "needs_linear", False))

    @rule
    def linear_blend_needs_linear_models(self) -> None:
        if self.agent != "tamer+rl":
            return
        needs_h, needs_rl, needs_linear = self.blend_parts()
        linear_h = self.model in ("linear", "auto")  # auto on images is refused when the agent is built
        if needs_linear and not (needs_h and linear_h and needs_rl and self.rl != "dqn"):
            raise ConfigError(
                f"--blend {self.blend} needs Ĥ and Q linear over the same features (--model linear, "
                f"not --rl dqn), got --model {self.model} --rl {self.rl}"
            )

    @rule
    def q_init_has_a_moment(self) -> None:
        """q_init acts when the teacher leaves: in simultaneous mode that is --leave-after, within the run."""
        if self.agent != "tamer+rl" or self.blend != "q_init" or self.mode != "simultaneous":
            return
        if not 0 < self.leave_after < self.episodes:
            raise ConfigError(
                "--blend q_init adds Ĥ to Q when the teacher leaves, so in simultaneous mode it needs "
                f"--leave-after N with 0 < N < episodes (got --leave-after {self.leave_after}, --episodes "
                f"{self.episodes}); or use --mode sequential"
            )

    @rule
    def beta_schedule_fits(self) -> None:
        """β's schedule exists when a tamer+rl blend uses both Ĥ and Q."""
        if self.agent != "tamer+rl" or is_plugin_spec(self.beta_schedule) or not all(self.blend_parts()[:2]):
            return
        if self.beta_schedule != "episode_linear" and not 0 < self.beta_decay <= 1:
            raise ConfigError(
                f"beta-decay must be in (0, 1] for --beta-schedule {self.beta_schedule}, "
                f"got {self.beta_decay}"
            )
        if self.beta_schedule == "region" and self.model not in ("linear", "auto"):
            raise ConfigError(
                f"--beta-schedule region needs a linear Ĥ (--model linear; its traces live on Ĥ's "
                f"features), got --model {self.model}"
            )

    @rule
    def rankings_fit(self) -> None:
        """--agent rankings: recorded rankings come from a folder; candidates are at least K."""
        if self.agent != "rankings":
            return
        if self.ranker == "recorded" and not self.rank_log:
            raise ConfigError("--ranker recorded needs --rank-log FOLDER (a tamer rank session)")
        if self.rank_log and self.ranker != "recorded":
            raise ConfigError(f"--rank-log is read only by --ranker recorded, not --ranker {self.ranker}")
        if self.rank_candidates and self.rank_candidates < self.rank_k:
            raise ConfigError(
                f"rank-candidates must be 0 or >= rank-k, got {self.rank_candidates} < {self.rank_k}"
            )
        if self.rank_epsilon and self.rank_start == "rollouts":
            raise ConfigError("--rank-epsilon does not apply to --rank-start rollouts (PPO's own episodes)")
        if self.rank_pairs == 0 and self.rank_queries == 0:
            raise ConfigError("--agent rankings needs queries: --rank-queries >= 1 or --rank-pairs >= 1")
        linear = self.rank_beta_schedule == "episode_linear"
        if self.rank_beta and not linear and not 0 < self.rank_beta_decay <= 1:
            raise ConfigError(
                f"rank-beta-decay must be in (0, 1] for --rank-beta-schedule {self.rank_beta_schedule}, "
                f"got {self.rank_beta_decay}"
            )
