"""Algorithms by name: presets, settings overridden as `name=value`, one `Experiment`.

Used by the command line (`python -m rljax`) and by anyone who wants to build a run from
strings. Names mean the same thing in every algorithm: `learning_rate` (also the tabular
step size alpha), `gamma`, `epsilon` with `epsilon_end` and `epsilon_decay`, `num_envs`.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import rljax
from rljax import a2c, a3c, deep_sarsa, dqn, reinforce, tabular
from rljax.driver import Preset, TrainConfig, Trainer, make_trainer
from rljax.types import Agent


@dataclasses.dataclass(frozen=True)
class Algo:
    """An algorithm as the command line sees it."""

    name: str
    summary: str
    default_env: str
    presets: Mapping[str, Preset]
    build: Callable[[Any, Any, Any, TrainConfig], Agent]  # (config, env, params, train)


def _tabular_config(config, env, params, train):
    del config, train
    return tabular.TabularConfig.for_env(env, params)


def _tabular(make: Callable[..., Agent]) -> Callable[[Any, Any, Any, TrainConfig], Agent]:
    def build(config, env, params, train):
        return make(_tabular_config(config, env, params, train), train.num_envs)

    return build


_GRID_TRAIN = TrainConfig(total_env_steps=40_000, log_env_steps=1_000, eval_episodes=4)
# Optimistic values and exploration fading to zero: tests/test_gridworld_learning.py.
_GRID_CONTROL = tabular.TabularHParams(
    learning_rate=0.05, gamma=0.9, epsilon=0.3, epsilon_decay=0.9998, init_value=2.0
)
_GRID_PREDICTION = tabular.TabularHParams(learning_rate=0.05, gamma=0.9)

ALGOS: dict[str, Algo] = {
    "dqn": Algo(
        "dqn",
        "DQN: replay memory, target network, epsilon-greedy (Mnih et al. 2015)",
        "CartPole-v1",
        dict(dqn.PRESETS),
        lambda config, env, params, train: dqn.make_dqn(config, rljax.env_spec(env, params)),
    ),
    "deep_sarsa": Algo(
        "deep_sarsa",
        "Deep SARSA: online semi-gradient SARSA with an MLP, no replay, no target (S&B 10.1)",
        "Pacman-v0",
        {
            "default": Preset(
                deep_sarsa.DeepSARSAConfig(),
                deep_sarsa.DeepSARSAHParams(),
                TrainConfig(total_env_steps=50_000, log_env_steps=1_000, eval_episodes=1),
            )
        },
        lambda config, env, params, train: deep_sarsa.make_deep_sarsa(
            dataclasses.replace(config, num_envs=train.num_envs), rljax.env_spec(env, params)
        ),
    ),
    "reinforce": Algo(
        "reinforce",
        "REINFORCE: Monte-Carlo policy gradient with a learned baseline (S&B 13.3-13.4)",
        "Pacman-v0",
        {
            "default": reinforce.PRESETS["pacman"],
            **reinforce.PRESETS,
        },
        lambda config, env, params, train: reinforce.make_reinforce(
            config, rljax.env_spec(env, params)
        ),
    ),
    "a2c": Algo(
        "a2c",
        "A2C: advantage actor-critic, n-step returns or GAE, vectorised actors (Mnih et al. 2016)",
        "CartPole-v1",
        {"default": a2c.PRESETS["cartpole"], **a2c.PRESETS},
        lambda config, env, params, train: a2c.make_a2c(config, rljax.env_spec(env, params)),
    ),
    "a3c": Algo(
        "a3c",
        "A3C: K actor-learners with stale local copies, updates applied in a seeded order",
        "CartPole-v1",
        {"default": a3c.PRESETS["cartpole"], **a3c.PRESETS},
        lambda config, env, params, train: a3c.make_a3c(config, rljax.env_spec(env, params)),
    ),
    "q_learning": Algo(
        "q_learning",
        "tabular Q-learning (S&B 6.5)",
        "GridWorld-v0",
        {"default": Preset(None, _GRID_CONTROL, _GRID_TRAIN)},
        _tabular(lambda cfg, n: tabular.make_q_learning(cfg, n)),
    ),
    "sarsa": Algo(
        "sarsa",
        "tabular SARSA (S&B 6.4)",
        "GridWorld-v0",
        {"default": Preset(None, _GRID_CONTROL, _GRID_TRAIN)},
        _tabular(lambda cfg, n: tabular.make_sarsa(cfg, n)),
    ),
    "expected_sarsa": Algo(
        "expected_sarsa",
        "tabular Expected SARSA (S&B 6.6)",
        "GridWorld-v0",
        {"default": Preset(None, _GRID_CONTROL, _GRID_TRAIN)},
        _tabular(lambda cfg, n: tabular.make_sarsa(cfg, n, expected=True)),
    ),
    "td": Algo(
        "td",
        "TD(0) prediction of the uniform random policy (S&B 6.1)",
        "GridWorld-v0",
        {"default": Preset(None, _GRID_PREDICTION, _GRID_TRAIN)},
        lambda config, env, params, train: tabular.make_td_prediction(
            _tabular_config(config, env, params, train)
        ),
    ),
    "mc": Algo(
        "mc",
        "first-visit Monte-Carlo prediction of the uniform random policy (S&B 5.1)",
        "GridWorld-v0",
        {"default": Preset(None, _GRID_PREDICTION, _GRID_TRAIN)},
        _tabular(lambda cfg, n: tabular.make_mc_prediction(cfg, n)),
    ),
}


class Experiment(NamedTuple):
    """A run, fully specified: what `rljax.runner.run_in_folder` executes."""

    algo: str
    env_id: str
    preset: str
    config: Any  # static algorithm config (None for the tabular agents)
    hparams: Any
    train: TrainConfig
    trainer: Trainer

    def settings(self) -> dict[str, Any]:
        """Every setting as plain JSON-able values (what `config.json` stores)."""
        plain = lambda x: dataclasses.asdict(x) if dataclasses.is_dataclass(x) else None  # noqa: E731
        hparams = {k: float(v) for k, v in plain(self.hparams).items()}
        return {
            "algo": self.algo,
            "env": self.env_id,
            "preset": self.preset,
            "config": plain(self.config),
            "hparams": hparams,
            "train": plain(self.train),
        }


def algo(name: str) -> Algo:
    """The algorithm called `name`; `ValueError` lists the known names."""
    if name not in ALGOS:
        raise ValueError(f"unknown algorithm {name!r}; known algorithms: {', '.join(ALGOS)}")
    return ALGOS[name]


def settable(algo_name: str, preset: str = "default") -> dict[str, tuple[Any, str, str]]:
    """`name -> (default, meaning, where)` for everything `--set` accepts, `where` being
    `hparams` (traced), `config` (static) or `train` (driver)."""
    p = _preset(algo(algo_name), preset)
    out = {}
    for where, obj in (("hparams", p.hparams), ("config", p.config), ("train", p.train)):
        if obj is None:
            continue
        meanings = field_meanings(type(obj))
        for f in dataclasses.fields(obj):
            out[f.name] = (getattr(obj, f.name), meanings.get(f.name, ""), where)
    return out


def make_experiment(
    algo_name: str,
    env_id: str | None = None,
    preset: str = "default",
    overrides: Mapping[str, str] | None = None,
) -> Experiment:
    """Build a run from names: `overrides` maps setting names to strings (`--set k=v`).

    Raises `ValueError` naming the unknown algorithm, environment, preset or setting (with
    the valid names), or the field and value that a config refuses.
    """
    a = algo(algo_name)
    p = _preset(a, preset)
    env_id = env_id or a.default_env
    env, env_params = rljax.make(env_id)
    parts = {"hparams": p.hparams, "config": p.config, "train": p.train}
    valid = settable(algo_name, preset)
    updates: dict[str, dict[str, Any]] = {"hparams": {}, "config": {}, "train": {}}
    for name, text in (overrides or {}).items():
        if name not in valid:
            raise ValueError(
                f"unknown setting {name!r} for {algo_name}; valid settings: {', '.join(valid)}"
            )
        default, _, where = valid[name]
        updates[where][name] = _parse(name, text, default)
    if "total_env_steps" in updates["train"] and "log_env_steps" not in updates["train"]:
        steps = updates["train"]["total_env_steps"]
        updates["train"]["log_env_steps"] = min(p.train.log_env_steps, steps)
    for where, values in updates.items():
        if values:
            parts[where] = dataclasses.replace(parts[where], **values)
    agent = a.build(parts["config"], env, env_params, parts["train"])
    trainer = make_trainer(agent, env, env_params, parts["train"])
    return Experiment(
        algo_name, env_id, preset, parts["config"], parts["hparams"], parts["train"], trainer
    )


def _preset(a: Algo, name: str) -> Preset:
    if name not in a.presets:
        raise ValueError(
            f"unknown preset {name!r} for {a.name}; known presets: {', '.join(a.presets)}"
        )
    return a.presets[name]


def _parse(name: str, text: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if isinstance(default, tuple):
            return tuple(int(x) for x in text.split(",") if x.strip())
        if isinstance(default, int) and not isinstance(default, bool):
            return int(text)
        if isinstance(default, float) or default is None:
            return None if text.lower() == "none" else float(text)
        return text
    except ValueError:
        kind = type(default).__name__
        raise ValueError(f"setting {name}: cannot read {text!r} as {kind}") from None


def field_meanings(cls: type) -> dict[str, str]:
    """One-line meanings of a config class's fields, read from the `Attributes:` sections
    of its docstring and its base classes' (`name: meaning`, or `a, b, c: meaning`)."""
    meanings: dict[str, str] = {}
    for base in reversed(cls.__mro__):  # a subclass documents only the fields it adds
        if base is not object:
            meanings.update(_attribute_docs(base.__doc__ or ""))
    return meanings


def _attribute_docs(doc: str) -> dict[str, str]:
    doc = inspect.cleandoc(doc)
    meanings: dict[str, str] = {}
    section = doc.split("Attributes:", 1)[1] if "Attributes:" in doc else ""
    names: list[str] = []
    for line in section.splitlines():
        match = re.match(r"^ {2}(\w+(?:, *\w+)*): *(.+)$", line)
        if match:
            names = re.split(r", *", match.group(1))
            for name in names:
                meanings[name] = match.group(2).strip()
        elif line.startswith("    ") and names:  # a continuation line
            for name in names:
                meanings[name] += " " + line.strip()
        else:
            names = []
    return meanings
