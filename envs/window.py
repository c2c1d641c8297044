"""The pygame window of our environments' ``render_mode="human"``: each rgb frame shown at the env's
``render_fps``, pygame imported only when a window is first needed."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class FrameWindow:
    """Mixin for a ``gym.Env`` that renders rgb frames: ``_render_human(frame)`` shows one, ``close()`` shuts
    the window. The env sets ``screen`` and ``clock`` to None in its ``__init__``."""

    window_caption = "tamer"
    metadata: dict[str, Any]
    screen: Any
    clock: Any

    def _render_human(self, frame: np.ndarray) -> None:
        try:
            import pygame
        except ImportError as e:
            raise gym.error.DependencyNotInstalled("pygame is not installed, run `pip install pygame`") from e
        if self.screen is None:
            pygame.init()
            pygame.display.init()
            pygame.display.set_caption(self.window_caption)
            self.screen = pygame.display.set_mode((frame.shape[1], frame.shape[0]))
        if self.clock is None:
            self.clock = pygame.time.Clock()
        surf = pygame.surfarray.make_surface(np.transpose(frame, (1, 0, 2)))
        self.screen.blit(surf, (0, 0))
        pygame.event.pump()
        self.clock.tick(self.metadata["render_fps"])
        pygame.display.flip()

    def close(self) -> None:
        if self.screen is not None:
            import pygame

            pygame.display.quit()
            pygame.quit()
            self.screen = None
            self.clock = None
