"""Probe environments: tiny MDPs whose exact action values are known, for sharp tests.

* `Probe-Bandit-v0`: a contextual bandit. The observation is `[+1]` or `[-1]` at random;
  action 1 pays 1 when the observation is positive, action 0 pays 1 when it is negative,
  the other pays 0, and every episode terminates after one step. Exact values:
  `Q(s, right) = 1`, `Q(s, wrong) = 0` for any discount.
* `Probe-Truncation-v0`: a single observation `[0]`, reward 1 on every step, never
  terminates, truncated after `max_steps_in_episode` (5) steps. Bootstrapping through the
  time limit gives `Q = 1 / (1 - gamma)` for both actions; an agent that treats
  truncation as termination learns the much smaller `1 / (1 - gamma * (L - 1) / L)`.
* `Probe-Chain-v0`: two states in a row, whatever the action: the first (observation
  `[-1]`) pays 0 and leads to the second (`[+1]`), which pays 1 and terminates. Exact
  values: `Q(second, a) = V(second) = 1`, `Q(first, a) = V(first) = gamma`. An agent that
  bootstraps from the observation it acted on instead of the next one learns
  `Q(first, a) = 0`.
* `Probe-Lengths-v0`: each episode's length `L` is 1, 2 or 4, drawn at reset (the
  observation is `[L / 4]`); every step pays `1 / L`, and the episode terminates after `L`
  steps, so every complete episode returns exactly 1 and one cut after `k < L` steps
  returns `k / L`. Parallel episodes end at different steps (for evaluation tests).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class ProbeState(environment.EnvState):
    sign: jax.Array  # float32 scalar, +1 or -1 (bandit) or 0


@struct.dataclass
class ProbeParams(environment.EnvParams):
    max_steps_in_episode: int = 5


class _Probe(environment.Environment[ProbeState, ProbeParams]):
    @property
    def default_params(self) -> ProbeParams:
        return ProbeParams()

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params: ProbeParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(2)

    def observation_space(self, params: ProbeParams) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def get_obs(self, state: ProbeState, params: Any = None, key: Any = None) -> jax.Array:
        return jnp.reshape(state.sign, (1,)).astype(jnp.float32)


class BanditProbe(_Probe):
    """Contextual bandit: one step, reward 1 for the action matching the sign."""

    def reset_env(self, key: jax.Array, params: ProbeParams) -> tuple[jax.Array, ProbeState]:
        sign = jnp.where(jax.random.bernoulli(key), 1.0, -1.0)
        state = ProbeState(time=0, sign=sign)
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        right = jnp.where(state.sign > 0, 1, 0)
        reward = jnp.where(action == right, 1.0, 0.0)
        new = ProbeState(time=state.time + 1, sign=state.sign)
        return self.get_obs(new), new, reward, jnp.array(True), {}

    def is_terminated(self, state, params):
        return state.time >= 1


class TruncationProbe(_Probe):
    """Reward 1 forever, cut by the time limit only."""

    def reset_env(self, key: jax.Array, params: ProbeParams) -> tuple[jax.Array, ProbeState]:
        state = ProbeState(time=0, sign=jnp.float32(0.0))
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        new = ProbeState(time=state.time + 1, sign=state.sign)
        return self.get_obs(new), new, jnp.float32(1.0), jnp.array(False), {}

    def is_terminated(self, state, params):
        return jnp.array(False)


class ChainProbe(_Probe):
    """Two states in a row: `[-1]` pays 0, then `[+1]` pays 1 and terminates."""

    def reset_env(self, key: jax.Array, params: ProbeParams) -> tuple[jax.Array, ProbeState]:
        state = ProbeState(time=0, sign=jnp.float32(-1.0))
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        reward = jnp.where(state.time == 1, 1.0, 0.0)
        new = ProbeState(time=state.time + 1, sign=jnp.where(state.time == 0, 1.0, 0.0))
        return self.get_obs(new), new, reward, self.is_terminated(new, params), {}

    def is_terminated(self, state, params):
        return state.time >= 2


class LengthsProbe(_Probe):
    """Episodes of length 1, 2 or 4 (drawn at reset), each step paying `1 / length`."""

    def reset_env(self, key: jax.Array, params: ProbeParams) -> tuple[jax.Array, ProbeState]:
        length = jnp.array([1.0, 2.0, 4.0])[jax.random.randint(key, (), 0, 3)]
        state = ProbeState(time=0, sign=length)  # `sign` holds the length here
        return self.get_obs(state), state

    def get_obs(self, state: ProbeState, params: Any = None, key: Any = None) -> jax.Array:
        return jnp.reshape(state.sign / 4.0, (1,)).astype(jnp.float32)

    def step_env(self, key, state, action, params):
        new = ProbeState(time=state.time + 1, sign=state.sign)
        reward = (1.0 / state.sign).astype(jnp.float32)
        return self.get_obs(new), new, reward, self.is_terminated(new, params), {}

    def is_terminated(self, state, params):
        return state.time >= state.sign


PROBES = {
    "Probe-Bandit-v0": BanditProbe,
    "Probe-Truncation-v0": TruncationProbe,
    "Probe-Chain-v0": ChainProbe,
    "Probe-Lengths-v0": LengthsProbe,
}
