"""Pictures of one greedy episode of the course's environments, as animated GIFs.

Environments with their own `render_episode(states, path, title)` (Pacman) draw
themselves; GridWorld, gymnax CartPole (which has no renderer) and MinAtar games are drawn
here with matplotlib, one frame per state.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from rljax.envs import gridworld as gw

# MinAtar planes drawn in these colours (RGB), in channel order; the background is black.
PLANE_COLOURS = np.array(
    [[0.95, 0.85, 0.2], [0.9, 0.3, 0.3], [0.4, 0.7, 1.0], [0.6, 0.9, 0.5], [0.9, 0.6, 0.9],
     [0.5, 0.9, 0.9], [1.0, 0.6, 0.3], [0.8, 0.8, 0.8], [0.5, 0.5, 1.0], [1.0, 1.0, 1.0]]
)  # fmt: skip


def frames_of(states: Any, length: int) -> list[Any]:
    """The first `length + 1` states of a stacked episode `[T, ...]` (as
    `rljax.greedy_episode` returns them) as a list of unbatched states."""
    host = jax.device_get(states)
    return [jax.tree.map(lambda x, i=i: x[i], host) for i in range(length + 1)]


def _animate(frames: list[Any], draw: Callable[[Any, Any, int], None], path: Path, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    fig, ax = plt.subplots(figsize=(4, 4))

    def update(i: int):
        ax.clear()
        draw(ax, frames[i], i)
        ax.set_title(f"{title}  t={i}" if title else f"t={i}")
        ax.set_xticks([])
        ax.set_yticks([])

    animation = FuncAnimation(fig, update, frames=len(frames))
    animation.save(path, writer=PillowWriter(fps=4))
    plt.close(fig)


def _draw_gridworld(ax: Any, state: Any, i: int) -> None:
    from matplotlib.patches import Circle, Rectangle

    del i
    for s in range(gw.NUM_STATES):
        r, c = divmod(s, gw.SIZE)
        colour = "#b7e4b0" if s == gw.GOAL else "#f4b6b6" if s in gw.TRAPS else "white"
        ax.add_patch(Rectangle((c, gw.SIZE - 1 - r), 1, 1, facecolor=colour, edgecolor="black"))
    r, c = divmod(int(np.asarray(state.pos)), gw.SIZE)
    ax.add_patch(Circle((c + 0.5, gw.SIZE - 0.5 - r), 0.3, color="royalblue"))
    ax.set_xlim(0, gw.SIZE)
    ax.set_ylim(0, gw.SIZE)
    ax.set_aspect("equal")


def _draw_cartpole(ax: Any, state: Any, i: int) -> None:
    from matplotlib.patches import Rectangle

    del i
    x, theta = float(np.asarray(state.x)), float(np.asarray(state.theta))
    ax.plot([-2.4, 2.4], [0, 0], color="grey")
    ax.add_patch(Rectangle((x - 0.25, -0.1), 0.5, 0.2, color="black"))
    ax.plot([x, x + np.sin(theta)], [0.0, np.cos(theta)], color="peru", linewidth=5)
    ax.set_xlim(-2.6, 2.6)
    ax.set_ylim(-0.5, 1.5)
    ax.set_aspect("equal")


def _draw_planes(env: Any, env_params: Any) -> Callable[[Any, Any, int], None]:
    def draw(ax: Any, state: Any, i: int) -> None:
        del i
        planes = np.asarray(env.get_obs(state, env_params), np.float32)  # [H, W, C]
        colours = PLANE_COLOURS[np.arange(planes.shape[-1]) % len(PLANE_COLOURS)]
        image = np.clip(planes @ colours, 0.0, 1.0)
        ax.imshow(image, interpolation="nearest")

    return draw


def render_episode(
    env: Any, env_params: Any, states: Any, length: int, path: str | os.PathLike, title: str = ""
) -> Path:
    """Write one episode (`states` stacked `[T, ...]`, the first `length + 1` of them used)
    to `path` as an animated GIF. Returns the path written.

    Raises `ValueError` for an environment that cannot be drawn.
    """
    path = Path(path)
    frames = frames_of(states, length)
    if hasattr(env, "render_episode"):
        episode = jax.tree.map(lambda x: x[: length + 1], jax.device_get(states))
        return Path(env.render_episode(episode, path, title))
    if isinstance(env, gw.GridWorld):
        _animate(frames, _draw_gridworld, path, title)
    elif hasattr(frames[0], "theta") and hasattr(frames[0], "x"):  # gymnax CartPole
        _animate(frames, _draw_cartpole, path, title)
    elif "MinAtar" in getattr(env, "name", ""):
        _animate(frames, _draw_planes(env, env_params), path, title)
    else:
        raise ValueError(f"rljax cannot draw {getattr(env, 'name', type(env).__name__)} yet")
    return path
