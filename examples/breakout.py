"""DQN, A2C or A3C on MinAtar Breakout from pixels: several seeds at once, curve, animation.

    python examples/breakout.py --algo dqn|a2c|a3c [--seeds 8] [--steps N] [--out DIR]

(`--steps`: env steps per seed, a multiple of the preset's chunk: 3,200 for DQN, 6,400 for
A2C and A3C; by default the preset's budget, 160k for DQN, 320k for A2C and A3C.)

The course ends with DQN and A3C playing Atari Breakout from 84x84 frames; here they play
MinAtar's Breakout (`Breakout-MinAtar`, gymnax): 10x10 images with 4 binary planes
(paddle, ball, the ball's trail, bricks), 3 actions, +1 per brick. The networks see the
planes through a convolutional torso (`rljax.nets.ConvTorso`: MinAtar's one 3x3
convolution of 16 channels, then a dense 128 layer); the `breakout` presets say what was
kept from the course's settings and what was changed. A uniformly random policy scores
about 0.43 per episode.

Prints each seed's greedy return and writes `curve.png` (episode return against
environment steps) and `episode.gif` (a greedy episode of the best seed: bricks orange,
paddle blue, ball white, its trail grey) to the output folder.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import jax
import numpy as np
from _train_and_show import parse, train_and_show

import rljax

ENV_ID = "Breakout-MinAtar"
# Colours of MinAtar Breakout's planes, painted in this order (the ball on top).
PLANES = (  # (channel, RGB)
    (3, (1.0, 0.55, 0.1)),  # bricks
    (2, (0.45, 0.45, 0.45)),  # the ball's trail
    (0, (0.2, 0.5, 1.0)),  # paddle
    (1, (1.0, 1.0, 1.0)),  # ball
)
MAX_FRAMES = 400  # frames in the GIF (a good policy can play the whole 1,000 steps)


def planes_to_rgb(planes: np.ndarray) -> np.ndarray:
    """`[..., H, W, 4]` MinAtar Breakout planes -> `[..., H, W, 3]` RGB in [0, 1]."""
    planes = np.asarray(planes)
    rgb = np.zeros((*planes.shape[:-1], 3), np.float32)
    for channel, colour in PLANES:
        rgb = np.where(planes[..., channel : channel + 1] > 0, np.array(colour), rgb)
    return rgb


def render_episode(states: Any, path: str | os.PathLike, title: str = "") -> str | os.PathLike:
    """Animate stacked gymnax MinAtar Breakout states (`[T, ...]`, as
    `rljax.greedy_episode` records them) as a GIF at `path`, at most `MAX_FRAMES` frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import PillowWriter

    env, _ = rljax.make(ENV_ID)
    frames = planes_to_rgb(jax.vmap(env.get_obs)(states))[:MAX_FRAMES]  # [T, 10, 10, 3]
    fig, ax = plt.subplots(figsize=(3, 3.2))
    try:
        image = ax.imshow(frames[0], interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        writer = PillowWriter(fps=10)
        with writer.saving(fig, os.fspath(path), dpi=80):
            for t, frame in enumerate(frames):
                image.set_data(frame)
                ax.set_title(f"{title}\nstep {t}" if title else f"step {t}", fontsize=9)
                writer.grab_frame()
    finally:
        plt.close(fig)
    return path


def algo_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--algo", choices=["dqn", "a2c", "a3c"], default="a2c")


if __name__ == "__main__":
    args = parse(__doc__.splitlines()[0], ENV_ID, [ENV_ID], algo_flag)
    train_and_show(args.algo, "breakout", args, render=render_episode)
