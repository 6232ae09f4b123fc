"""A pixel probe: a one-step image task whose exact action values are known.

`Probe-Pixels-v0`: the observation is a 5x5 one-channel image `[5, 5, 1]`, black but for
one bright pixel (1.0) at a random row in one of the two leftmost or the two rightmost
columns. Action 0 ("left") pays 1 when the pixel is on the left, action 1 ("right") pays 1
when it is on the right, the other action pays 0, and every episode terminates after one
step. Exact values: `Q(s, matching) = 1`, `Q(s, other) = 0` for any discount; a random
policy earns 0.5 per episode, the optimal one 1.

It tests the convolutional path (`rljax.nets.ConvTorso`) in seconds: an agent must read
the pixel's side from the image wherever the pixel lies in its half.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

SIZE = 5  # the image is SIZE x SIZE x 1
LEFT_COLUMNS = (0, 1)
RIGHT_COLUMNS = (3, 4)


@struct.dataclass
class PixelState(environment.EnvState):
    row: jax.Array  # int32 scalar
    column: jax.Array  # int32 scalar


@struct.dataclass
class PixelParams(environment.EnvParams):
    max_steps_in_episode: int = 1


class PixelProbe(environment.Environment[PixelState, PixelParams]):
    """One bright pixel on the left or the right of a 5x5 image; name its side."""

    @property
    def default_params(self) -> PixelParams:
        return PixelParams()

    @property
    def name(self) -> str:
        return "Probe-Pixels-v0"

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params: PixelParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(2)

    def observation_space(self, params: PixelParams) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (SIZE, SIZE, 1), jnp.float32)

    def get_obs(self, state: PixelState, params: Any = None, key: Any = None) -> jax.Array:
        """The image `[5, 5, 1]`: 1.0 at `(row, column)`, 0 elsewhere."""
        image = jnp.zeros((SIZE, SIZE, 1), jnp.float32)
        return image.at[state.row, state.column, 0].set(1.0)

    def reset_env(self, key: jax.Array, params: PixelParams) -> tuple[jax.Array, PixelState]:
        k_row, k_col = jax.random.split(key)
        columns = jnp.array(LEFT_COLUMNS + RIGHT_COLUMNS, jnp.int32)
        column = columns[jax.random.randint(k_col, (), 0, len(columns))]
        state = PixelState(time=0, row=jax.random.randint(k_row, (), 0, SIZE), column=column)
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        right = (state.column >= RIGHT_COLUMNS[0]).astype(jnp.int32)
        reward = jnp.where(action == right, 1.0, 0.0).astype(jnp.float32)
        new = state.replace(time=state.time + 1)
        return self.get_obs(new), new, reward, jnp.array(True), {}

    def is_terminated(self, state, params):
        return state.time >= 1


PIXEL_PROBES = {"Probe-Pixels-v0": PixelProbe}
