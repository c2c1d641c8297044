"""The keyboard of a live session: the live settings (``LiveConfig``), the commands keys are bound to, the
key map, the legend, the person's keypresses as a feedback source (``KeyboardSource``), and the action keys
of a demonstration session (``ActionKeys``: which key drives which action).

Each command is one row of ``COMMANDS``: its meaning (the legend, ``--help``) and the method of the frame loop
(``tamer.live.loop.LivePlay``) that carries it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from tamer.errors import ConfigError
from tamer.feedback import Feedback, FeedbackLog
from tamer.settings import Settings, knob


@dataclass
class LiveConfig(Settings):
    """Settings of the live window; the agent, its model and the credit window are the run's ``Config``."""

    KIND = "live config"

    fps: float = knob(
        60.0, "Frames drawn per second (0 = as fast as possible); the agent's pace is --step-rate.", ge=0
    )
    view_width: int = knob(720, "Width in pixels the environment's frame is scaled to fit.", ge=32)
    view_height: int = knob(480, "Height in pixels the environment's frame is scaled to fit.", ge=32)
    checkpoint_every: float = knob(
        30.0,
        "Seconds between model checkpoints (0 = none; also saved at each episode's end, on the save key and "
        "on exit).",
        ge=0,
    )
    learn_in_thread: bool = knob(
        True,
        "Learn and choose actions on a background thread, so a slow model delays the agent, never a frame.",
    )
    keys_good: str = knob(
        "up,w,=", "Keys giving reward +1: pygame key names, comma-separated; ctrl+ for Ctrl."
    )
    keys_bad: str = knob("down,s,-", "Keys giving reward -1.")
    keys_pause: str = knob(
        "space", "Pause / resume the agent (keys still count, credited to the frozen step)."
    )
    keys_slower: str = knob("[", "Slower agent (fewer steps per second).")
    keys_faster: str = knob("]", "Faster agent.")
    keys_reset: str = knob("r", "End the episode now and start a new one.")
    keys_save: str = knob("ctrl+s", "Save the model now.")
    keys_quit: str = knob("escape", "Save everything and quit (so do closing the window and Ctrl+C).")
    demonstrate: bool = knob(
        False,
        "Demonstrate instead of teaching: you drive the agent with the action keys (the env's "
        "get_keys_to_action(), else ours: arrows), every step is logged, nothing is learned live; `tamer "
        "replay` trains a behaviour-cloning policy from the session. Fixed for the session's life.",
    )


class Command(NamedTuple):
    meaning: str  # the legend's text
    action: str  # the frame loop's method carrying it out, called with (pygame event, session time)


FEEDBACK_COMMANDS = ("good", "bad")  # unbound in a demonstration session: the person acts, not rewards

COMMANDS: dict[str, Command] = {  # in the legend's order; LiveConfig has keys_<name> for each
    "good": Command("good (+1)", "good"),
    "bad": Command("bad (-1)", "bad"),
    "pause": Command("pause / resume", "toggle_pause"),
    "slower": Command("slower agent", "slower"),
    "faster": Command("faster agent", "faster"),
    "reset": Command("reset episode", "request_reset"),
    "save": Command("save model now", "request_save"),
    "quit": Command("save and quit", "request_quit"),
}


def key_specs(live: LiveConfig, command: str) -> list[str]:
    return [k.strip() for k in getattr(live, "keys_" + command).split(",") if k.strip()]


def split_ctrl(spec: str) -> tuple[bool, str]:
    """ "ctrl+s" -> (True, "s"), "s" -> (False, "s")."""
    ctrl = spec.lower().startswith("ctrl+") and len(spec) > 5
    return ctrl, spec[5:] if ctrl else spec


def key_label(spec: str) -> str:
    """How a key spec reads on screen: "ctrl+s" -> "Ctrl+S", "escape" -> "Esc", "w" -> "W"."""
    ctrl, name = split_ctrl(spec)
    label = {"escape": "Esc"}.get(name.lower()) or (name.upper() if len(name) == 1 else name.title())
    return ("Ctrl+" if ctrl else "") + label


def commands_of(live: LiveConfig) -> list[str]:
    """The commands bound in a session: all, less the feedback keys when demonstrating."""
    return [c for c in COMMANDS if not (live.demonstrate and c in FEEDBACK_COMMANDS)]


def legend(live: LiveConfig) -> list[tuple[str, str]]:
    """(keys, meaning) lines for the HUD and --help; slower and faster share a line."""
    labels = {c: " ".join(key_label(s) for s in key_specs(live, c)) for c in commands_of(live)}
    lines = []
    for command in labels:
        meaning = COMMANDS[command].meaning
        if not labels[command] or (command == "faster" and labels["slower"]):
            continue
        if command == "slower" and labels["faster"]:
            lines.append((f"{labels['slower']} {labels['faster']}", "slower / faster agent"))
        else:
            lines.append((labels[command], meaning))
    return lines


DEMONSTRATE_HELP = """\
--demonstrate: drive the agent yourself (no feedback keys; the other keys as above). Each step takes the
action of the keys held when it starts (or of a key tapped during the step before):
  MountainCar-v0       Left push left, Right push right; no key: no push
  Acrobot-v1           Left torque -1, Right torque +1; no key: torque 0
  CartPole-v0/v1       Left push left, Right push right; no key: the last action repeats (CartPole has no
                       no-op; an episode starts with your first key)
  tamer/GridWorld-v0   the arrow keys; no key: the last action repeats (an episode starts with your first key)
  other envs           their own get_keys_to_action() (gymnasium.utils.play's convention), else refused
`tamer replay SESSION` trains the behaviour-cloning policy from the logged steps."""


def keys_help(live: LiveConfig | None = None) -> str:
    rows = legend(live or LiveConfig())
    width = max(len(keys) for keys, _ in rows)
    return (
        "keys (remap with --keys-*):\n"
        + "\n".join(f"  {keys:<{width}}  {meaning}" for keys, meaning in rows)
        + "\n\n"
        + DEMONSTRATE_HELP
    )


class KeyMap:
    """Key (and Ctrl) -> command. A binding without ctrl+ does not fire while Ctrl is held, so Ctrl+S saves
    without also counting as the "s" key's -1."""

    def __init__(self, live: LiveConfig):
        import pygame

        self.ctrl = pygame.KMOD_CTRL
        self.table: dict[tuple[int, bool], str] = {}
        for command in commands_of(live):
            for spec in key_specs(live, command):
                ctrl, name = split_ctrl(spec)
                try:
                    code = pygame.key.key_code(name)
                except ValueError:
                    raise ConfigError(
                        f"--keys-{command}: unknown key {name!r} (pygame key names: up, w, =, space, ...)"
                    ) from None
                if (code, ctrl) in self.table:
                    raise ConfigError(
                        f"key {spec!r} is bound twice: to {self.table[code, ctrl]} and {command}"
                    )
                self.table[code, ctrl] = command

    def command(self, key: int, mod: int) -> str | None:
        return self.table.get((key, bool(mod & self.ctrl)))


class KeyboardSource:
    """A person's feedback keys as a ``tamer.feedback.FeedbackSource``, the interface the simulated teacher
    answers headless. The frame loop ``press``es each key the moment it reads it, which writes it to
    feedback.csv at once; ``poll`` hands over every key pressed since the last step ended, when the next
    one ends (each was stamped before that). Keys pressed during a step that never ends (a crash) are never
    handed over, though logged."""

    def __init__(self, path: Path, append: bool = False):
        self.log = FeedbackLog(path, append)
        self.pending: list[Feedback] = []
        self.last_time = float("-inf")

    def press(self, feedback: Feedback, step: int, episode: int) -> Feedback:
        """Log a keypress (``step``: the step after which it will be handed over) and keep it for ``poll``;
        returns it as logged: never before the previous keypress, so the log's times never go backwards."""
        feedback = Feedback(max(float(feedback.time), self.last_time), float(feedback.value))
        self.last_time = feedback.time
        self.log.write(feedback, step, episode)
        self.pending.append(feedback)
        return feedback

    def observe(self, obs, action: int, t_start: float, t_end: float, episode: int) -> None:
        pass  # the person watches the window

    def poll(self, now: float) -> list[Feedback]:
        handed, self.pending = self.pending, []
        return handed

    def close(self) -> None:
        self.log.close()


# --- the action keys of a demonstration session ----------------------------------------------------------

# For environments without their own get_keys_to_action(): key names (pygame's) held together -> action.
BUILTIN_ACTION_KEYS: dict[str, dict[tuple[str, ...], int]] = {
    "MountainCar-v0": {("left",): 0, ("right",): 2, ("left", "right"): 1},
    "Acrobot-v1": {("left",): 0, ("right",): 2, ("left", "right"): 1},
    "CartPole-v0": {("left",): 0, ("right",): 1},
    "CartPole-v1": {("left",): 0, ("right",): 1},
    "tamer/GridWorld-v0": {("up",): 0, ("right",): 1, ("down",): 2, ("left",): 3},
    "tamer/GridWorldPixels-v0": {("up",): 0, ("right",): 1, ("down",): 2, ("left",): 3},
}
# The action taken while no key is held, where the env has one that does nothing (a map's own () entry wins).
NO_OP: dict[str, int] = {"MountainCar-v0": 1, "Acrobot-v1": 1}
# pygame 1's arrow key codes, which gymnasium's classic-control maps still use (MountainCar's 275, 276);
# pygame 2 numbers the arrows 1073741903.. and has no key 273..276.
LEGACY_ARROWS = {273: "up", 274: "down", 275: "right", 276: "left"}


def no_key_map(env_id: str) -> str:
    return (
        f"{env_id} has no keys for --demonstrate: it has no get_keys_to_action() and no built-in map "
        f"(built in: {', '.join(BUILTIN_ACTION_KEYS)})"
    )


class ActionKeys:
    """Which keys drive which action in a demonstration session, and the action each step takes.

    ``table`` maps a sorted tuple of pygame key codes held together to an action (gymnasium.utils.play's
    convention for ``get_keys_to_action()``); ``no_op`` is the action while no key is held, or None where
    the env has none: the last action of the episode then repeats, and an episode waits for its first key.
    A step takes (``choose``, when it starts) the action of the keys held now; a combination the table lacks
    takes its most recently pressed key that has an action of its own; with nothing held, a key tapped
    (pressed and released) since the last step started; else the no-key action."""

    def __init__(self, table: dict[tuple[int, ...], int], no_op: int | None, names: list[str], source: str):
        self.table, self.no_op, self.names, self.source = table, no_op, names, source
        self.keys = {k for combo in table for k in combo}
        self.held: list[int] = []  # action keys down now, in the order they were pressed
        self.tapped: int | None = None  # the action of the last press since the last step started
        self.last: int | None = None  # the last action of this episode

    @classmethod
    def of_env(cls, env, env_id: str, names: list[str]) -> ActionKeys:
        """The env's own ``get_keys_to_action()``, else our built-in map; a ConfigError (one line) without
        either, or where an action is not one of the env's."""
        import pygame

        from tamer.envs import env_id_of

        registered, space = env_id_of(env, env_id), env.action_space
        own = getattr(env.unwrapped, "get_keys_to_action", None)
        if own is not None:
            try:
                raw, source = dict(own()), "the env's get_keys_to_action()"
            except Exception as e:
                raise ConfigError(f"{registered}: get_keys_to_action() failed: {e}") from None
        elif registered in BUILTIN_ACTION_KEYS:
            raw = {
                tuple(pygame.key.key_code(n) for n in names_): a
                for names_, a in BUILTIN_ACTION_KEYS[registered].items()
            }
            source = "built-in keys"
        else:
            raise ConfigError(no_key_map(registered))
        table: dict[tuple[int, ...], int] = {}
        for combo, action in raw.items():
            keys = tuple(combo) if isinstance(combo, tuple | str) else (combo,)  # "wa": w and a together
            codes = tuple(sorted(key_code_of(k) for k in keys))
            if not isinstance(action, int | np.integer) or isinstance(action, bool) or action not in space:
                raise ConfigError(f"{registered}: key map action {action!r} is not one of {space}")
            table[codes] = int(action)
        no_op = table.pop((), NO_OP.get(registered))
        if not table:
            raise ConfigError(no_key_map(registered))
        return cls(table, no_op, names, source)

    def check_free(self, keymap: KeyMap) -> None:
        """Refuse (one line) an action key that a command (pause, reset, ...) is bound to."""
        for code in sorted(self.keys):
            command = keymap.table.get((code, False))
            if command is not None:
                raise ConfigError(
                    f"key {self.label(code)!r} drives an action ({self.action_of(code)}) and is bound to "
                    f"{command}; remap it with --keys-{command}"
                )

    def action_of(self, code: int) -> str:
        action = self.table.get((code,))
        return "with other keys" if action is None else self.names[action]

    @staticmethod
    def label(code: int) -> str:
        import pygame

        return key_label(pygame.key.name(code) or str(code))

    def legend(self) -> list[tuple[str, str]]:
        """(keys, action) lines: each single key, then what happens with none."""
        rows: dict[int, list[str]] = {}
        for combo, action in sorted(self.table.items(), key=lambda kv: (kv[1], kv[0])):
            if len(combo) == 1:
                rows.setdefault(action, []).append(self.label(combo[0]))
        lines = [(" ".join(labels), self.names[a]) for a, labels in rows.items()]
        return [*lines, ("no key", self.no_key_meaning())]

    def no_key_meaning(self) -> str:
        return self.names[self.no_op] if self.no_op is not None else "last action again"

    # --- the keyboard, as the frame loop reads it

    def press(self, code: int) -> None:
        if code not in self.held:
            self.held.append(code)
        action = self.held_action()
        if action is not None:
            self.tapped = action

    def release(self, code: int) -> None:
        if code in self.held:
            self.held.remove(code)

    def clear(self) -> None:
        """The window lost the focus: no key counts as held any more."""
        self.held.clear()

    def held_action(self) -> int | None:
        if not self.held:
            return None
        action = self.table.get(tuple(sorted(self.held)))
        if action is not None:
            return action
        return next((self.table[k,] for k in reversed(self.held) if (k,) in self.table), None)

    def choose(self) -> int | None:
        """The action of the step starting now, or None: no key yet and no no-op (the episode waits)."""
        action = self.held_action()
        if action is None:
            action = self.tapped
        if action is None:
            action = self.no_op if self.no_op is not None else self.last
        self.tapped = None
        if action is not None:
            self.last = action
        return action

    def new_episode(self) -> None:
        self.last = None  # a new episode does not repeat the last one's last action


def key_code_of(key) -> int:
    """A key of a ``get_keys_to_action`` map as pygame 2 numbers it: a key code (pygame 1's arrow codes,
    which gymnasium's classic-control maps still use, translated), or a character (its code point)."""
    if isinstance(key, str) and len(key) == 1:
        return ord(key.lower())
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        if int(key) in LEGACY_ARROWS:
            import pygame

            return pygame.key.key_code(LEGACY_ARROWS[int(key)])
        return int(key)
    raise ConfigError(f"get_keys_to_action(): cannot read key {key!r} (a pygame key code or one character)")
