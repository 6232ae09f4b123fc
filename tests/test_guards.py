"""Guards for the driver's bookkeeping: greedy evaluation of parallel episodes of different
lengths, and the stopping window when several environments finish in the same step.

Each expectation is worked out from the environment's own rules (written in the test), never
from rljax's output; each test fails on a plausible bug named in its docstring.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from conftest import make_recorder

import rljax

# --- Greedy evaluation: each episode sums its own rewards, and nothing after its end -------

EPISODES = 48


def _lengths_returns(max_eval_steps, time_limit=5):
    """Greedy returns of `EPISODES` episodes of Probe-Lengths-v0 (length L in {1, 2, 4}
    drawn at reset, reward 1 / L per step, truncated after `time_limit` steps), evaluation
    bounded by `max_eval_steps` (None: the time limit). The same key, so the same
    episodes, every call."""
    env, params = rljax.make("Probe-Lengths-v0")
    params = params.replace(max_steps_in_episode=time_limit)
    agent = make_recorder(1, 1, (1,))  # a constant action; the probe ignores it
    agent_state = agent.init(jax.random.key(0), None, jnp.zeros((1, 1)))
    config = rljax.TrainConfig(
        total_env_steps=1, chunk_env_steps=1, eval_episodes=EPISODES, max_eval_steps=max_eval_steps
    )
    trainer = rljax.make_trainer(agent, env, params, config)
    return np.asarray(jax.jit(trainer.evaluate)(agent_state, jax.random.key(1)))


def test_evaluation_sums_each_episode_up_to_its_own_end_or_the_bound():
    """Bugs guarded: rewards of the episode that auto-reset starts after an earlier end are
    added to the ended one (`returns + reward` without `where(done, 0, reward)`); the
    evaluation stops when the first episode ends instead of the last; or
    `TrainConfig.max_eval_steps` does not bound it (or bounds it one step short)."""
    # A complete episode pays L steps * 1 / L = 1, whatever its length.
    np.testing.assert_array_equal(_lengths_returns(None), 1.0)
    # Cut after two steps, an episode of length L has earned min(L, 2) / L: 1 for L = 1, 2
    # and 0.5 for L = 4. With rewards added after an end, L = 1 would show 1 + 1 / L'.
    returns = _lengths_returns(2)
    assert set(returns.tolist()) == {0.5, 1.0}, returns
    # The environment's own time limit of 2 steps cuts them the same way (its params are
    # the ones evaluation steps with, not the defaults).
    np.testing.assert_array_equal(_lengths_returns(5, time_limit=2), returns)


def test_evaluation_plays_the_greedy_policy():
    """Bug guarded: evaluation acting with the exploring policy (`greedy` not passed)."""
    env, params = rljax.make("Probe-Bandit-v0")  # one step; the action matching the sign pays

    def act(state, obs, key, greedy=False):
        del state, key
        right = (obs[:, 0] > 0).astype(jnp.int32)
        return right if greedy is True else 1 - right  # exploring: always wrong

    agent = rljax.Agent(init=None, act=act, update=None)
    config = rljax.TrainConfig(total_env_steps=1, chunk_env_steps=1, eval_episodes=8)
    trainer = rljax.make_trainer(agent, env, params, config)
    np.testing.assert_array_equal(jax.jit(trainer.evaluate)(None, jax.random.key(0)), 1.0)


class _NoisyProbe(rljax.envs.probes.TruncationProbe):
    """Rewards drawn from the step's key (uniform in [0, 1)); an episode ends after
    `sign + 1` steps, 1 to 4 drawn at reset, or at the time limit."""

    def reset_env(self, key, params):
        sign = jax.random.randint(key, (), 0, 4).astype(jnp.float32)
        state = rljax.envs.probes.ProbeState(time=0, sign=sign)
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        new = state.replace(time=state.time + 1)
        ended = new.time > state.sign
        return self.get_obs(new), new, jax.random.uniform(key), ended, {}


class _AutoResetOnly(_NoisyProbe):
    """The same environment, but its `step` is its own (as a wrapper's is), so evaluation
    steps it with the auto-reset."""

    def step(self, key, state, action, params=None):
        return super().step(key, state, action, params)


class _DoubledRewards(_NoisyProbe):
    """A `step` that changes what `step_env` gives (as a reward-scaling wrapper does)."""

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = super().step(key, state, action, params)
        return obs, state, 2.0 * reward, terminated, truncated, info


def _greedy_returns(env):
    agent = make_recorder(1, 1, (1,))
    agent_state = agent.init(jax.random.key(0), None, jnp.zeros((1, 1)))
    config = rljax.TrainConfig(total_env_steps=1, chunk_env_steps=1, eval_episodes=EPISODES)
    trainer = rljax.make_trainer(agent, env, env.default_params, config)
    return np.asarray(jax.jit(trainer.evaluate)(agent_state, jax.random.key(5)))


def test_evaluation_without_the_auto_reset_gives_the_environments_own_steps_returns():
    """Evaluation steps a plain gymnax environment with `step_env` (no auto-reset to
    compute). Bugs guarded: `step_env` given another key than the one gymnax's `step`
    hands it (the key unsplit, or the reset's half), so that a random step pays otherwise;
    or an environment whose own `step` changes what `step_env` gives (a wrapper) stepped
    with `step_env` all the same."""
    assert rljax.core.evaluation.steps_within_episodes(_NoisyProbe())
    assert not rljax.core.evaluation.steps_within_episodes(_AutoResetOnly())
    expected = _greedy_returns(_AutoResetOnly())  # gymnax's `step`, reset and all
    assert len(set(expected.tolist())) == EPISODES  # random, and no two alike
    np.testing.assert_array_equal(_greedy_returns(_NoisyProbe()), expected)
    np.testing.assert_allclose(_greedy_returns(_DoubledRewards()), 2.0 * expected, rtol=1e-6)


def test_default_evaluation_bound_is_the_environment_step_limit():
    _, params = rljax.make("Probe-Lengths-v0")
    assert rljax.core.evaluation.default_max_steps(params) == 5
    assert rljax.core.evaluation.default_max_steps(object()) == 10_000  # no limit: 10,000


# --- The stopping window: every episode that ends in a step enters it -----------------------

B, T, W = 3, 2, 4  # three environments all finish every step (one-step bandit episodes)
UPDATES = 16
THRESHOLD = 0.8  # the window's mean passes it when all four returns are 1
KEY = 11  # stops at update 9


class HistoryState(NamedTuple):
    reward: jax.Array  # [UPDATES, T, B] the rewards of every rollout so far
    done: jax.Array  # [UPDATES, T, B]
    update_calls: jax.Array


def _history_agent() -> rljax.Agent:
    """Always action 0; keeps every rollout's rewards and episode ends."""

    def init(key, hparams, obs):
        del key, hparams, obs
        zeros = jnp.zeros((UPDATES, T, B))
        return HistoryState(zeros, zeros.astype(bool), jnp.int32(0))

    def act(state, obs, key, greedy=False):
        del state, key, greedy
        return jnp.zeros(obs.shape[:1], jnp.int32)

    def update(state, rollout, key):
        del key
        n = state.update_calls
        return HistoryState(
            state.reward.at[n].set(rollout.reward), state.done.at[n].set(rollout.done), n + 1
        ), {}

    return rljax.Agent(init=init, act=act, update=update)


def _completed_returns(history: HistoryState, updates: int) -> list[float]:
    """Returns of the episodes completed in the first `updates` updates, in time order and,
    within a step, in environment order (the bandit's episodes are one step long)."""
    reward, done = np.asarray(history.reward), np.asarray(history.done)
    assert done[:updates].all()  # every step ends every environment's episode
    return reward[:updates].reshape(-1).tolist()


def test_stopping_window_holds_every_episode_that_ended_in_the_same_step():
    """Bug guarded: episodes that end in the same step overwrite one window slot (`slot`
    without the `cumsum(done)` offset), or the episode count grows by one per step; the
    stop rule then fires at another update, or never."""
    env, params = rljax.make("Probe-Bandit-v0")  # action 0 pays 1 where the sign is -1
    config = rljax.TrainConfig(
        total_env_steps=UPDATES * B * T, num_envs=B, rollout_len=T, chunk_env_steps=B * T,
        stop_window=W, stop_return=THRESHOLD,
    )  # fmt: skip
    trainer = rljax.make_trainer(_history_agent(), env, params, config)
    state = jax.jit(trainer.init)(jax.random.key(KEY), None)
    run_chunk = jax.jit(trainer.run_chunk)
    rewards_seen, stop_update = set(), None
    for u in range(1, UPDATES + 1):
        state, row = run_chunk(state)
        if stop_update is not None:  # a stopped run is left as it is
            assert int(state.env_steps) == stop_update * B * T
            continue
        returns = _completed_returns(state.agent, u)
        assert int(state.num_episodes) == len(returns) == u * B * T
        # By hand: the window holds the last W returns, in whatever slots.
        window = np.sort(np.asarray(state.recent_returns))
        np.testing.assert_array_equal(window, np.sort(returns[-W:]))
        np.testing.assert_allclose(float(row["episode_return_mean"]), np.mean(returns[-B * T :]))
        rewards_seen.update(returns[-B:])
        if np.mean(returns[-W:]) > THRESHOLD:  # the first update whose window passes
            stop_update = u
            assert int(state.stop_step) == u * B * T
        assert bool(state.stopped) == (stop_update is not None)
    assert rewards_seen == {0.0, 1.0}  # environments finishing together returned different values
    assert stop_update is not None and stop_update > 2, "pick a key that stops later"


# --- Losses: mutants that tests/test_losses.py let through (found by `make mutants`) -------


def test_sarsa_bootstraps_with_the_discount_times_the_next_value():
    # r + discount * Q(s', a') - Q(s, a) = 1 + 0.5 * 4 - 3 = 0 (and not 1 + 0.5 / 4 - 3).
    td = rljax.losses.sarsa(
        jnp.array([3.0, 0.0]), jnp.int32(0), jnp.float32(1.0), jnp.float32(0.5),
        jnp.array([7.0, 4.0]), jnp.int32(1),
    )  # fmt: skip
    assert float(td) == 0.0


def test_normalize_keeps_nearly_constant_advantages_finite():
    # [0, 2e-8]: mean 1e-8, standard deviation 1e-8, so (x - mean) / (std + 1e-8) = -+0.5
    # (an epsilon subtracted instead would divide by zero).
    out = rljax.losses.normalize(jnp.array([0.0, 2e-8]), jnp.ones(2))
    np.testing.assert_allclose(out, [-0.5, 0.5], rtol=1e-3)


def test_masked_mean_weights_by_fractional_weights():
    # sum(x * w) / sum(w) = (2 * 0.25 + 4 * 0.25) / 0.5 = 3, even when the weights sum to
    # less than one (not divided by max(sum(w), 1)).
    mean = rljax.losses.masked_mean(jnp.array([2.0, 4.0, 100.0]), jnp.array([0.25, 0.25, 0.0]))
    assert float(mean) == 3.0
