"""Experiment sweeps: a TOML file names a base config and a grid over any config field; every cell × seed is
one training run, run in parallel processes (or as Ray tasks), each into its own folder (``tamer.runner``:
written atomically, so a sweep killed at any moment and run again redoes only what is missing). The folder
names come from the swept values (``blend=action_biasing,beta=0.5/seed=3``), so people can read them and a
restarted sweep finds the same runs.

An experiment file::

    description = "What the sweep asks."
    seeds = 20                # 0..19, or a list: seeds = [1, 5, 9]
    threshold = -150.0        # optional: the return that counts as solved, for episodes-to-threshold

    [base]                    # config fields shared by every run (tamer.config.Config)
    env = "MountainCar-v0"
    episodes = 40

    [grid]                    # every combination of these values is one cell
    beta = [0.5, 1.0]

    [[variants]]              # optional alternatives, each crossed with [grid]; a list sweeps within it
    agent = "tamer+rl"
    blend = ["action_biasing", "control_sharing"]
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamer.config import Config
from tamer.errors import ConfigError
from tamer.io import write_atomic
from tamer.plugins import load_object, parse_spec, split_specs
from tamer.results import EXPERIMENT_COPY
from tamer.runner import BACKENDS, Run, finished, locked, run_all  # noqa: F401 (re-exported for scripts)
from tamer.settings import check_field, coerce

TOP_KEYS = ("description", "seeds", "threshold", "base", "grid", "variants")
FIELDS = {f.name: f for f in dataclasses.fields(Config)}


@dataclass
class Cell:
    """One point of the grid: the values that make it (its folder name) and the config they give."""

    name: str
    values: dict[str, Any]
    cfg: Config


@dataclass
class Experiment:
    path: Path
    description: str
    seeds: list[int]
    cells: list[Cell]
    text: str  # the file as read, copied into the results folder

    def runs(self, out: Path) -> list[Run]:
        """Seed-major, so a sweep stopped early has every cell at the same number of seeds."""
        return [
            Run(dataclasses.replace(cell.cfg, seed=seed), out / cell.name / f"seed={seed}")
            for seed in self.seeds
            for cell in self.cells
        ]

    def check(self) -> None:
        """Check every cell so a bad value stops the sweep before it starts rather than when its first run
        reaches a worker, hours in: the config's own validation, the env id registered, the plug-ins it
        names importable. Cheap: no env, model or agent is built."""
        for seed in self.seeds:  # each run's config is its cell's with the seed replaced
            try:
                check_field(Config, FIELDS["seed"], seed)
            except ConfigError as e:
                raise ConfigError(f"{self.path}: seeds: {e}") from None
        seen: set[tuple[str, str]] = set()
        for cell in self.cells:
            try:
                cell.cfg.validate()
                for what, name in [("env", cell.cfg.env), *plugin_specs(cell.cfg)]:
                    if (what, name) not in seen:
                        (check_env_id if what == "env" else check_plugin)(name, what)
                        seen.add((what, name))
            except ConfigError as e:
                raise ConfigError(f"{self.path}, cell {cell.name}: {e}") from None


def check_env_id(env_id: str, what: str = "env") -> None:
    """That ``env_id`` is registered (after our envs, and the module of a ``package.module:Env-v0`` id, are
    imported), without making the env; else one line with the nearest registered id."""
    import importlib

    import gymnasium as gym

    import envs  # noqa: F401  (registers tamer/* environments)
    from tamer.plugins import parse_spec

    module, sep, name = parse_spec(env_id, "--env")[0].rpartition(":")
    if sep:
        try:
            importlib.import_module(module)
        except Exception as e:  # a user's module may fail in any way while it is imported
            raise ConfigError(f"cannot make {what} {env_id!r}: {type(e).__name__}: {e}") from None
    try:
        gym.spec(name)
    except gym.error.Error:
        close = difflib.get_close_matches(name, list(gym.registry), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"cannot make env {env_id!r}: no such registered environment{hint}") from None


def plugin_specs(cfg: Config) -> list[tuple[str, str]]:
    """(what, spec) of every ``package.module:Name`` plug-in the run would load."""
    specs = []
    if cfg.agent == "tamer+rl":
        specs += [("blend", cfg.blend), ("beta schedule", cfg.beta_schedule)]
    if cfg.agent != "rl" and cfg.teacher != "none":
        specs.append(("teacher", cfg.teacher))
        if cfg.teacher == "oracle" and not cfg.oracle.startswith("run:"):
            specs.append(("oracle", cfg.oracle))
    specs += [("callback", spec) for spec in split_specs(cfg.callback)]
    return [(what, spec) for what, spec in specs if ":" in spec]


def check_plugin(spec: str, what: str) -> None:
    """That the module of ``package.module:Name(k=v, ...)`` imports and holds ``Name`` (nothing is built)."""
    load_object(parse_spec(spec, what)[0], what)


# --- reading an experiment file ---------------------------------------------------------------------------


def check_fields(table: dict, where: str, lists: bool | None) -> None:
    """Names and types of one table's fields, as ``Config.from_dict`` checks them, but naming the table.
    ``lists``: True = every value is a list of values to sweep, False = none is, None = either."""
    for name, value in table.items():
        if name not in FIELDS:
            close = difflib.get_close_matches(name, FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown config field {name!r}{hint}")
        if isinstance(value, list):
            if lists is False:
                raise ConfigError(f"{where}: field {name!r} is a list; sweep over it in [grid] instead")
            if not value:
                raise ConfigError(f"{where}: field {name!r} has an empty list of values")
        elif lists is True:
            raise ConfigError(f"{where}: field {name!r} must be a list of values to sweep, got {value!r}")
        for v in value if isinstance(value, list) else [value]:
            coerce(name, v, type(FIELDS[name].default), where)


def parse_value(text: str) -> Any:
    """A ``--set`` value in TOML syntax (1, 0.5, true, "x"); a bare word is taken as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set needs FIELD=VALUE, got {item!r}")
        overrides[name.strip().replace("-", "_")] = parse_value(value.strip())
    return overrides


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def cell_name(values: dict[str, Any]) -> str:
    """A folder name people can read, from the swept values; characters a path cannot hold become '_',
    and a name too long for a file system keeps its start and a hash of the whole."""
    if not values:
        return "base"
    name = ",".join(f"{k}={format_value(v)}" for k, v in values.items())
    name = re.sub(r"[/\\:*?\"<>|\x00-\x1f]", "_", name)
    if name.startswith("."):
        name = "_" + name[1:]
    if len(name.encode()) > 150:
        name = name[:110] + "~" + hashlib.sha1(name.encode()).hexdigest()[:10]
    return name


def read_seeds(data: dict, grid: dict, base: dict, where: str) -> list[int]:
    seeds = data.get("seeds")
    if "seed" in grid:
        if seeds is not None:
            raise ConfigError(f"{where}: give seeds either as top-level seeds or as seed in [grid], not both")
        seeds = grid.pop("seed")
    if seeds is None:
        return [base.get("seed", Config.seed)]
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"{where}: seeds must be >= 1, got {seeds}")
        return list(range(seeds))
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise ConfigError(f"{where}: seeds must be a count (20) or a list of ints ([1, 2, 3]), got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: seeds {seeds} repeat a seed")
    return seeds


def load_experiment(
    path: Path, overrides: dict[str, Any] | None = None, seeds: int | None = None
) -> Experiment:
    """Read and check an experiment file. Every mistake (TOML syntax, an unknown field, a wrong type, a
    value out of range) is one ``ConfigError`` line naming the file, and the field where there is one."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as e:
        raise ConfigError(f"cannot read experiment {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: TOML syntax error: {e}") from None
    for key in data:
        if key not in TOP_KEYS:
            hint = " (config fields go in [base], [grid] or [[variants]])" if key in FIELDS else ""
            raise ConfigError(f"{path}: unknown top-level key {key!r}{hint}; known: {', '.join(TOP_KEYS)}")
    base, grid, variants = data.get("base", {}), dict(data.get("grid", {})), data.get("variants", [{}])
    if not isinstance(base, dict) or not isinstance(grid, dict):
        raise ConfigError(f"{path}: base and grid must be tables ([base], [grid])")
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise ConfigError(f"{path}: variants must be an array of tables ([[variants]])")
    check_fields(base, f"{path} [base]", lists=False)
    check_fields(grid, f"{path} [grid]", lists=True)
    for i, variant in enumerate(variants, 1):
        check_fields(variant, f"{path} [[variants]] #{i}", lists=None)
        if "seed" in variant:
            raise ConfigError(f"{path} [[variants]] #{i}: give seeds as top-level seeds, not per variant")
        if clash := sorted(set(variant) & set(grid)):
            raise ConfigError(f"{path} [[variants]] #{i}: field {clash[0]!r} is also swept in [grid]")
    if overrides:
        check_fields(overrides, "--set", lists=False)
        for name in overrides:
            if name in grid or any(name in v for v in variants):
                raise ConfigError(f"--set {name}: {path} sweeps over {name!r}; edit the file instead")
        base = {**base, **overrides}
    seed_list = read_seeds(data, grid, base, str(path)) if seeds is None else list(range(seeds))
    threshold = data.get("threshold")
    if threshold is not None and (not isinstance(threshold, int | float) or isinstance(threshold, bool)):
        raise ConfigError(f"{path}: threshold must be a number, got {threshold!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{path}: description must be a string")
    return Experiment(
        path,
        description,
        seed_list,
        make_cells(path, base, grid, variants),
        text,
    )


def make_cells(path: Path, base: dict, grid: dict, variants: list[dict]) -> list[Cell]:
    cells: dict[str, Cell] = {}
    for variant in variants:
        keys = [*variant, *grid]
        options = {**{k: v if isinstance(v, list) else [v] for k, v in variant.items()}, **grid}
        for combo in itertools.product(*(options[k] for k in keys)):
            values = dict(zip(keys, combo, strict=True))
            name = cell_name(values)
            try:
                cfg = Config.from_dict({**base, **values}, str(path))
            except ConfigError as e:
                message = str(e)
                raise ConfigError(
                    message if message.startswith(str(path)) else f"{path}, cell {name}: {message}"
                ) from None
            values = {k: getattr(cfg, k) for k in values}  # as typed: beta = 1 and beta = 1.0 are one cell
            name = cell_name(values)
            if name in cells:
                raise ConfigError(
                    f"{path}: two cells are both {name!r}; remove the repeated value or variant"
                )
            cells[name] = Cell(name, values, cfg)
    return list(cells.values())


def write_experiment_copy(exp: Experiment, root: Path, notes: Sequence[str] = ()) -> None:
    root.mkdir(parents=True, exist_ok=True)
    text = exp.text + "".join(f"\n# {note}" for note in notes) + ("\n" if notes else "")
    write_atomic(root / EXPERIMENT_COPY, text)
