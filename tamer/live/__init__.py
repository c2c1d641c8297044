"""Live teaching: a person watches the agent in a pygame window and presses keys to reward it.

``tamer play`` runs ``tamer.train.run_episode``'s loop with a person as the teacher and the wall clock as
the clock. Two threads share the work:

- The **frame loop** (``loop``, main thread) draws at ``--fps``, reads the keyboard between frames (every 2 ms
  while it waits for the next frame), steps the environment when the agent's step is due (``--step-rate``,
  which ``[`` and ``]`` change), and logs each keypress to ``feedback.csv`` the moment it is read. A step ends
  on the frame nearest its due time and the next one starts in that same frame (the frame waits up to 4 ms
  for the learner's answer; a later answer ends the wait for the next frame when it comes), keeping the
  cadence, so the agent keeps the pace asked for; the HUD shows the pace measured over the last 20 steps.
- The **learner** (``worker``, one background thread; ``--no-learn-in-thread`` runs it inline) makes every
  call that touches the agent, one job at a time: the learning body of headless training
  (``tamer.stepper.Stepper``: record the step's interval, credit each keypress handed over after it, update
  Ĥ, choose the next action, update Q), with callbacks writing the session folder. A slow model therefore
  delays the agent's next step, never a frame.

The person's keys are a ``tamer.feedback.FeedbackSource`` (``keys.KeyboardSource``), as the simulated
teacher is headless: a headless run's steps and feedback fed through the live learner give the same agent.

**Time.** Keypresses and step intervals read one clock (``SessionClock``, seconds since the session began).
pygame 2 does not pass on SDL's event timestamp (its KEYDOWN carries key, mod, unicode, scancode, window), so
a keypress is stamped when the loop pumps it from SDL's queue: at most ~2 ms late while the loop waits for the
next frame, at most one frame's work late otherwise. Where an event does carry a ``timestamp`` (ms on
``pygame.time.get_ticks``'s scale) that is used instead. A step's interval runs from the end of the previous
step (or the first action of an episode) to the moment the loop ends it; a keypress is handed over when the
step it was pressed in ends, so every step its delay window can reach has been recorded.

**The session folder** (``session``), written as things happen so that Esc, closing the window, Ctrl+C or an
exception lose nothing that was logged (each line is flushed; the model is saved on every exit path). One
process at a time holds it (``.lock``, ``tamer.io.locked``: a second play, resume, rank or ``replay --out`` is
refused in one line; the lock dies with its holder, however it dies). Files that are rewritten are replaced
atomically (``tamer.io.write_atomic``); a log's torn last line (a kill while writing it) is read past and cut
before the log is appended to::

    config.json      the run's Config (teacher "none": the person is the teacher)
    live.json        the LiveConfig (rates, keys)
    feedback.csv     time,step,episode,value: one line per keypress, written when it is read; ``step`` is
                     the step after which it is handed to the agent
    steps.csv        one line per step, written once the learner has applied it: step, episode, run,
                     t_start, t_end, action, reward, terminated, truncated, obs, next_obs (floats by repr)
    metrics.csv      one row per episode (train's columns plus seconds, positive, negative, ended, run)
    model.npz        the agent, saved at each episode's end, every --checkpoint-every s, on Ctrl+S, on exit
    checkpoint.json  what model.npz holds: the last step, the run, ``late`` (keypresses after that step it
                     holds, see below) and the model file's sha256

**Replay** (``replay``, ``tamer replay SESSION``) builds the agent from config.json and makes the learner's
calls again (the same ``Stepper``) with the logged steps and keypresses, so it reproduces Ĥ exactly; a resumed
session (``tamer play --resume``, a new "run") starts from a freshly built agent loading the saved state,
and replay does the same at each run boundary. A resume loads model.npz only when it is the file
checkpoint.json describes (its sha256) and covers the whole log; missing, unreadable, another file or behind
the log, the agent is rebuilt by replaying the log (one line says so); a model.npz of another config is
refused in one line. Keypresses logged during a step that never ended (a crash, a kill) are taught when the
session resumes, before its first step, credited by their time over the last logged steps
(``session.learn_late``: a resumed run's steps begin after everything logged, so no window of theirs could
reach one of its steps); replay teaches them at the same point.

**Demonstrations** (``demo``, ``tamer play --demonstrate``): the person drives the agent with the action keys
(``keys.ActionKeys``: the env's ``get_keys_to_action()``, else built-in arrows) instead of rewarding it; the
same folder (live.json says ``"demonstrate": true``), no learner thread and no model: a recorder logs each
step, and ``tamer replay`` trains a behaviour-cloning policy from steps.csv (``replay_demonstrations``).

**Rankings** (``rank``, ``tamer rank``): a second window plays the K attempts of a query side by side and the
person orders them with the number keys; each ranking and its attempts go to a ``tamer.rankings.RankingLog``
in the session folder, and ``tamer replay`` trains the reward model from them (``rank_session``: the keys,
the attempts, the folder, the replay).

Modules: ``keys`` (LiveConfig, the key commands, the key map, KeyboardSource, ActionKeys), ``session`` (the
folder and its formats), ``worker`` (the learner), ``demo`` (demonstration sessions), ``loop`` (the frame
loop), ``play`` (the window, ``play()``), ``replay``, ``rank`` and ``rank_session`` (ranking sessions).
Importing ``tamer.live`` does not import pygame; ``play`` does.
"""

from tamer.live.demo import DemoRecorder, DemoReport, replay_demonstrations
from tamer.live.keys import COMMANDS, ActionKeys, KeyboardSource, KeyMap, LiveConfig, keys_help, legend
from tamer.live.loop import LiveContext, LivePlay
from tamer.live.play import NO_DISPLAY, PlaySummary, open_display, play
from tamer.live.rank import RankPlay, RankSummary, rank
from tamer.live.rank_session import RankConfig, RankInput, RankReplay, is_ranking_session, replay_rankings
from tamer.live.replay import ReplayReport, agent_state, compare_agents, max_difference, replay_session
from tamer.live.session import (
    LIVE_METRICS,
    STEPS_HEADER,
    SessionClock,
    SessionFolder,
    Start,
    StepsCsv,
    read_feedback_steps,
    read_steps,
    resume_point,
)
from tamer.live.worker import Learner, LiveLearner, Thought

__all__ = [
    "COMMANDS",
    "ActionKeys",
    "DemoRecorder",
    "DemoReport",
    "LIVE_METRICS",
    "NO_DISPLAY",
    "STEPS_HEADER",
    "KeyMap",
    "KeyboardSource",
    "Learner",
    "LiveConfig",
    "LiveContext",
    "LiveLearner",
    "LivePlay",
    "PlaySummary",
    "RankConfig",
    "RankInput",
    "RankPlay",
    "RankReplay",
    "RankSummary",
    "ReplayReport",
    "SessionClock",
    "SessionFolder",
    "Start",
    "StepsCsv",
    "Thought",
    "agent_state",
    "compare_agents",
    "keys_help",
    "legend",
    "max_difference",
    "open_display",
    "is_ranking_session",
    "play",
    "rank",
    "read_feedback_steps",
    "read_steps",
    "replay_demonstrations",
    "replay_rankings",
    "replay_session",
    "resume_point",
]
