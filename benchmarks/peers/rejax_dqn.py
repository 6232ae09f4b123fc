"""Peer baseline: rejax's DQN on gymnax CartPole-v1, seeds vmapped in one jitted call.

Runs inside benchmarks/peers/.venv-rejax (see setup.sh), not the project venv, on the same
jax, flax, optax and gymnax versions as rljax. rejax 0.1.3 calls gymnax's old 5-value
`step` (obs, state, reward, done, info); gymnax 1.x returns terminated and truncated
apart, so `FiveValueStep` hands rejax `done = terminated | truncated` (what rejax's
config expects; its DQN then cuts bootstrapping at truncation, as it always did).

Prints one JSON object on stdout:
    {"library": "rejax", "version": ..., "seeds": N, "env_steps_per_seed": ...,
     "compile_seconds": ..., "train_seconds": ..., "eval_return_per_seed": [...], ...}

compile_seconds is `jax.jit(jax.vmap(algo.train)).lower(keys).compile()`; train_seconds is
one call of the compiled program until its outputs are ready. Unless --no-train-eval is
given, training includes rejax's default in-loop evaluation (128 episodes every
`eval_freq` steps), exactly as rejax's config runs it. After training, each seed's final
greedy policy (argmax Q, no epsilon) is evaluated on --eval-episodes episodes with rejax's
own `rejax.evaluate.evaluate` helper.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from importlib.metadata import version

import jax
import jax.numpy as jnp
from rejax import DQN
from rejax.evaluate import evaluate

# The `dqn` entry of configs/gymnax/cartpole.yaml in the rejax repository (the YAML files
# are not part of the PyPI wheel, so the values are restated here).
REJAX_CARTPOLE_DQN = {
    "env": "CartPole-v1",
    "agent": "DuelingQNetwork",
    "agent_kwargs": {"activation": "swish"},
    "num_envs": 10,
    "buffer_size": 50_000,
    "fill_buffer": 5_000,
    "batch_size": 100,
    "max_grad_norm": 10,
    "learning_rate": 0.001,
    "num_epochs": 5,
    "total_timesteps": 100_000,
    "eval_freq": 2_500,
    "polyak": 0.98,
    "eps_start": 1,
    "eps_end": 0.05,
    "exploration_fraction": 0.5,
    "gamma": 0.99,
    "ddqn": True,
    "normalize_observations": False,
}


# rejax's buffers ask for int64 without x64 enabled; JAX truncates to int32 and warns.
warnings.filterwarnings("ignore", message="Explicitly requested dtype")


class FiveValueStep:
    """A gymnax environment whose `step` returns gymnax 0.0.x's 5 values."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):
        if name.startswith("__") or name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    def __hash__(self):
        return hash((FiveValueStep, self.env))

    def __eq__(self, other):
        return isinstance(other, FiveValueStep) and other.env == self.env

    def step(self, key, state, action, params=None):
        out = self.env.step(key, state, action, params)
        if len(out) == 5:  # an old gymnax: already 5 values
            return out
        obs, state, reward, terminated, truncated, info = out
        return obs, state, reward, jnp.logical_or(terminated, truncated), info


def no_eval(algo, ts, rng):
    """Stand-in for rejax's in-loop evaluation callback: does nothing."""
    del algo, ts, rng
    return ()


def make_greedy_act(algo, ts):
    """act(obs, rng) -> action taking argmax Q, with no exploration."""

    def act(obs, rng):
        del rng
        if algo.normalize_observations:
            obs = algo.normalize_obs(ts.obs_rms_state, obs)
        q_values = algo.agent.apply(ts.q_ts.params, jnp.expand_dims(obs, 0))
        return jnp.argmax(q_values, axis=-1)[0]

    return act


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8, help="seeds trained in one vmap")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="total env steps per seed (default: the config's 100_000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="base PRNG seed")
    parser.add_argument("--eval-episodes", type=int, default=32)
    parser.add_argument(
        "--no-train-eval",
        action="store_true",
        help="drop rejax's in-loop evaluation (128 episodes every eval_freq steps)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    config = dict(REJAX_CARTPOLE_DQN)
    if args.steps is not None:
        config["total_timesteps"] = args.steps
    if args.no_train_eval:
        config["skip_initial_evaluation"] = True

    algo = DQN.create(**config)
    algo = algo.replace(env=FiveValueStep(algo.env))
    if args.no_train_eval:
        algo = algo.replace(eval_callback=no_eval)

    root = jax.random.PRNGKey(args.seed)
    train_root, eval_root = jax.random.split(root)
    keys = jax.random.split(train_root, args.seeds)

    train_fn = jax.jit(jax.vmap(algo.train))
    t0 = time.perf_counter()
    compiled = train_fn.lower(keys).compile()
    compile_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    ts, train_eval = compiled(keys)
    jax.block_until_ready((ts, train_eval))
    train_seconds = time.perf_counter() - t0

    max_steps = int(algo.env_params.max_steps_in_episode)

    def eval_one(ts_one, rng):
        act = make_greedy_act(algo, ts_one)
        _, returns = evaluate(act, rng, algo.env, algo.env_params, args.eval_episodes, max_steps)
        return returns

    eval_keys = jax.random.split(eval_root, args.seeds)
    t0 = time.perf_counter()
    returns = jax.block_until_ready(jax.jit(jax.vmap(eval_one))(ts, eval_keys))
    eval_seconds = time.perf_counter() - t0

    global_steps = jax.device_get(ts.global_step)
    result = {
        "library": "rejax",
        "version": version("rejax"),
        "jax_version": jax.__version__,
        "gymnax_version": version("gymnax"),
        "versions": {p: version(p) for p in ("rejax", "jax", "flax", "optax", "gymnax")},
        "device": str(jax.devices()[0]),
        "seeds": args.seeds,
        "env_steps_per_seed": int(global_steps[0]),
        "compile_seconds": round(compile_seconds, 3),
        "train_seconds": round(train_seconds, 3),
        "eval_seconds": round(eval_seconds, 3),
        "in_training_eval": not args.no_train_eval,
        "eval_episodes": args.eval_episodes,
        "eval_return_per_seed": [round(float(r), 2) for r in returns.mean(axis=1)],
        "config": {k: v for k, v in config.items() if k != "agent_kwargs"},
    }
    if not args.no_train_eval:
        # rejax's own curve: (lengths, returns), each [seeds, evals, 128].
        _, curve_returns = train_eval
        result["train_eval_final_mean_return_per_seed"] = [
            round(float(r), 2) for r in curve_returns[:, -1].mean(axis=-1)
        ]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
