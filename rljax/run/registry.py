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
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from rljax.algos import a2c, a3c, deep_sarsa, dp, dqn, reinforce, tabular
from rljax.core.config import Preset, TrainConfig
from rljax.core.driver import Trainer, make_trainer
from rljax.core.types import Agent, env_spec
from rljax.envs import gridworld as gw
from rljax.envs import make
from rljax.run.programs import experiment_fingerprint

Build = Callable[[Any, Any, Any, TrainConfig], Agent]  # (config, env, env_params, train_config)
Report = Callable[[Any, Any, Any, Path], str]  # (agent state of one run, env, params, folder)


@dataclasses.dataclass(frozen=True)
class Algo:
    """An algorithm as the command line sees it.

    `report`, if set, shows what a run learned beyond its returns (e.g. a value table): it
    gets the agent state of one run and the run folder, writes its files there and returns
    text to print.
    """

    name: str
    summary: str
    default_env: str
    presets: Mapping[str, Preset]
    build: Build
    report: Report | None = None


def _network(make_agent: Callable[[Any, Any], Agent]) -> Build:
    def build(config, env, env_params, train_config):
        del train_config
        if hasattr(env.observation_space(env_params), "n"):
            raise ValueError(
                f"{env.name} observes a state index, not a vector or an image: a network "
                "would read the index as a number; use a tabular algorithm (q_learning, sarsa, "
                "expected_sarsa, mc_control, td, mc) or dynamic programming"
            )
        return make_agent(config, env_spec(env, env_params))

    return build


def _tabular(make_agent: Callable[[tabular.TabularConfig], Agent]) -> Build:
    def build(config, env, env_params, train_config):
        del config, train_config
        return make_agent(tabular.TabularConfig.for_env(env, env_params))

    return build


def _planner(method: str) -> Build:
    def build(config, env, env_params, train_config):
        del train_config
        if not isinstance(env, gw.GridWorld):
            raise ValueError(
                f"{method} needs an environment with an exact model (GridWorld-v0, "
                f"GridWorld5-v0), got {env.name}"
            )
        P, R, terminal = gw.transition_model(env, env_params)
        config = dataclasses.replace(config or dp.DPConfig(), method=method)
        return dp.make_dp_agent(config, P, R, terminal)

    return build


def _show_values(V: Any, policy: Any, env: Any, env_params: Any, folder: Path, title: str) -> str:
    import matplotlib.pyplot as plt

    terminal = gw.transition_model(env, env_params)[2]
    fig = gw.render_values(V, policy, folder / "values.png", title, terminal=terminal)
    plt.close(fig)
    return gw.render_ascii(V, policy, terminal) + f"\nvalues: {folder / 'values.png'}"


def _report_planner(state: Any, env: Any, env_params: Any, folder: Path) -> str:
    text = _show_values(state.V, state.params, env, env_params, folder, "dynamic programming")
    if not bool(state.converged):
        text += (
            f"\nnot converged after {int(state.sweeps)} sweeps: with gamma = "
            f"{float(state.hparams.gamma):g} some policy's return does not settle (e.g. a "
            "walk that pays forever without ending); use gamma < 1"
        )
    return text


def _report_q(state: Any, env: Any, env_params: Any, folder: Path) -> str:
    q = np.asarray(state.params)
    if q.shape[0] != gw.NUM_STATES:
        return ""
    policy = (q >= q.max(-1, keepdims=True) - 1e-9).astype(float)
    return _show_values(q.max(-1), policy, env, env_params, folder, "greedy values max_a Q")


def _report_v(state: Any, env: Any, env_params: Any, folder: Path) -> str:
    v = np.asarray(state.params)
    if v.shape[0] != gw.NUM_STATES:
        return ""
    return _show_values(v, None, env, env_params, folder, "state values V")


def _mc_control(config, env, env_params, train_config):
    del config, train_config
    if not isinstance(env, gw.GridWorld):
        raise ValueError(
            f"mc_control needs a GridWorld (it knows where each move leads), got {env.name}"
        )
    successors = np.asarray(gw.transition_model(env, env_params)[0]).argmax(-1)
    return tabular.make_mc_control(tabular.TabularConfig.for_env(env, env_params), successors)


def _dp_presets(method: str) -> dict[str, Preset]:
    return {
        name: p._replace(config=dataclasses.replace(p.config or dp.DPConfig(), method=method))
        for name, p in dp.PRESETS.items()
    }


CARTPOLE = ("CartPole-v1",)
BREAKOUT = ("Breakout-MinAtar",)
PACMAN = ("Pacman-v0",)
GRIDS = ("GridWorld-v0", "GridWorld5-v0")
# The environments each preset was made for (`Preset.envs`): `--preset default` finds the
# one made for the environment asked for, or the algorithm's `generic` preset.
PRESET_ENVS: dict[str, dict[str, tuple[str, ...]]] = {
    "dqn": {"default": CARTPOLE, "course": CARTPOLE, "lecture": CARTPOLE, "breakout": BREAKOUT},
    "deep_sarsa": {"default": PACMAN, "course": PACMAN},
    "reinforce": {
        "default": PACMAN,
        "pacman": PACMAN,
        "course": ("PacmanReinforce-v0",),
        "cartpole": CARTPOLE,
    },
    "a2c": {"default": CARTPOLE, "cartpole": CARTPOLE, "course": CARTPOLE, "breakout": BREAKOUT},
    "a3c": {"default": CARTPOLE, "cartpole": CARTPOLE, "breakout": BREAKOUT},
    # The tuned tabular presets start optimistic for rewards of size 1 (not GridWorld100's).
    **{
        name: {"default": (*GRIDS, "GridWorldDP-v0"), "course": ("GridWorld100-v0",)}
        for name in ("q_learning", "sarsa", "expected_sarsa", "td", "mc")
    },
    "mc_control": {"default": (*GRIDS, "GridWorld100-v0"), "course": ("GridWorld100-v0",)},
    # Planning needs only the model and gamma: any GridWorld.
    **{
        name: {"default": (*GRIDS, "GridWorld100-v0"), "course": ("GridWorldDP-v0",)}
        for name in ("policy_iteration", "value_iteration")
    },
}
_PLAIN_TRAIN = TrainConfig(total_env_steps=100_000, chunk_env_steps=1_000, eval_episodes=8)
_ACTORS_TRAIN = TrainConfig(
    total_env_steps=409_600, num_envs=16, rollout_len=8, chunk_env_steps=5_120, eval_episodes=8
)
# For an environment no preset was made for: each algorithm's generic settings, with no
# reward rewriting and no stopping rule tuned for another task.
GENERIC: dict[str, Preset] = {
    "dqn": Preset(dqn.DQNConfig(), dqn.DQNHParams(), _PLAIN_TRAIN),
    "deep_sarsa": Preset(deep_sarsa.DeepSARSAConfig(), deep_sarsa.DeepSARSAHParams(), _PLAIN_TRAIN),
    "reinforce": Preset(
        reinforce.ReinforceConfig(baseline=True),
        reinforce.ReinforceHParams(),
        TrainConfig(
            total_env_steps=200_000,
            num_envs=8,
            rollout_len=500,
            chunk_env_steps=20_000,
            eval_episodes=8,
        ),
    ),
    "a2c": Preset(a2c.A2CConfig(), a2c.A2CHParams(), _ACTORS_TRAIN),
    "a3c": Preset(a3c.A3CConfig(), a3c.A3CHParams(), _ACTORS_TRAIN),
}


def _tagged(name: str, presets: Mapping[str, Preset]) -> dict[str, Preset]:
    """`presets` with the environments each was made for, and the generic preset."""
    tags = PRESET_ENVS.get(name, {})
    out = {k: p._replace(envs=tags.get(k, p.envs)) for k, p in presets.items()}
    if name in GENERIC:
        out["generic"] = GENERIC[name]
    return out


ALGOS: dict[str, Algo] = {
    "dqn": Algo(
        "dqn",
        "DQN: replay memory, target network, epsilon-greedy (Mnih et al. 2015)",
        "CartPole-v1",
        _tagged("dqn", dict(dqn.PRESETS)),
        _network(dqn.make_dqn),
    ),
    "deep_sarsa": Algo(
        "deep_sarsa",
        "Deep SARSA: online semi-gradient SARSA with an MLP, no replay, no target (S&B 10.1)",
        "Pacman-v0",
        _tagged("deep_sarsa", dict(deep_sarsa.PRESETS)),
        _network(deep_sarsa.make_deep_sarsa),
    ),
    "reinforce": Algo(
        "reinforce",
        "REINFORCE: Monte-Carlo policy gradient with a learned baseline (S&B 13.3-13.4)",
        "Pacman-v0",
        _tagged("reinforce", {"default": reinforce.PRESETS["pacman"], **reinforce.PRESETS}),
        _network(reinforce.make_reinforce),
    ),
    "a2c": Algo(
        "a2c",
        "A2C: advantage actor-critic, n-step returns or GAE, vectorised actors (Mnih et al. 2016)",
        "CartPole-v1",
        _tagged("a2c", {"default": a2c.PRESETS["cartpole"], **a2c.PRESETS}),
        _network(a2c.make_a2c),
    ),
    "a3c": Algo(
        "a3c",
        "A3C: K actor-learners with stale local copies, updates applied in a seeded order",
        "CartPole-v1",
        _tagged("a3c", {"default": a3c.PRESETS["cartpole"], **a3c.PRESETS}),
        _network(a3c.make_a3c),
    ),
    "q_learning": Algo(
        "q_learning",
        "tabular Q-learning (S&B 6.5)",
        "GridWorld-v0",
        _tagged("q_learning", dict(tabular.PRESETS["q_learning"])),
        _tabular(tabular.make_q_learning),
        _report_q,
    ),
    "sarsa": Algo(
        "sarsa",
        "tabular SARSA (S&B 6.4)",
        "GridWorld-v0",
        _tagged("sarsa", dict(tabular.PRESETS["sarsa"])),
        _tabular(tabular.make_sarsa),
        _report_q,
    ),
    "expected_sarsa": Algo(
        "expected_sarsa",
        "tabular Expected SARSA (S&B 6.6)",
        "GridWorld-v0",
        _tagged("expected_sarsa", dict(tabular.PRESETS["expected_sarsa"])),
        _tabular(lambda cfg: tabular.make_sarsa(cfg, expected=True)),
        _report_q,
    ),
    "mc_control": Algo(
        "mc_control",
        "Monte-Carlo control over the values of the next cells, the course's (S&B 5.3)",
        "GridWorld100-v0",
        _tagged("mc_control", dict(tabular.PRESETS["mc_control"])),
        _mc_control,
        _report_v,
    ),
    "td": Algo(
        "td",
        "TD(0) prediction of the uniform random policy (S&B 6.1)",
        "GridWorld-v0",
        _tagged("td", dict(tabular.PRESETS["td"])),
        _tabular(tabular.make_td_prediction),
        _report_v,
    ),
    "mc": Algo(
        "mc",
        "first-visit Monte-Carlo prediction of the uniform random policy (S&B 5.1)",
        "GridWorld-v0",
        _tagged("mc", dict(tabular.PRESETS["mc"])),
        _tabular(tabular.make_mc_prediction),
        _report_v,
    ),
    "policy_iteration": Algo(
        "policy_iteration",
        "policy iteration on the exact model (S&B 4.3)",
        "GridWorld-v0",
        _tagged("policy_iteration", _dp_presets("policy_iteration")),
        _planner("policy_iteration"),
        _report_planner,
    ),
    "value_iteration": Algo(
        "value_iteration",
        "value iteration on the exact model (S&B 4.4)",
        "GridWorld-v0",
        _tagged("value_iteration", _dp_presets("value_iteration")),
        _planner("value_iteration"),
        _report_planner,
    ),
}


class Experiment(NamedTuple):
    """A run, fully specified: what `rljax.run.folders.run_in_folder` executes."""

    algo: str
    env_id: str
    preset: str
    config: Any  # static algorithm config (None for the tabular agents)
    hparams: Any
    train_config: TrainConfig
    trainer: Trainer
    agent: Agent
    env: Any
    env_params: Any

    def settings(self) -> dict[str, Any]:
        """Every setting as plain JSON-able values (what `config.json` stores)."""
        plain = lambda x: dataclasses.asdict(x) if dataclasses.is_dataclass(x) else None  # noqa: E731
        scalar = lambda v: (  # noqa: E731
            None if v is None else bool(v) if np.asarray(v).dtype == bool else float(v)
        )
        hparams = {k: scalar(v) for k, v in plain(self.hparams).items()}
        return {
            "algo": self.algo,
            "env": self.env_id,
            "preset": self.preset,
            "config": plain(self.config),
            "hparams": hparams,
            "train": plain(self.train_config),
        }


def algo(name: str) -> Algo:
    """The algorithm called `name`; `ValueError` lists the known names."""
    if name not in ALGOS:
        raise ValueError(f"unknown algorithm {name!r}; known algorithms: {', '.join(ALGOS)}")
    return ALGOS[name]


def settable(
    algo_name: str, preset: str = "default", env_id: str | None = None
) -> dict[str, tuple[Any, str, str]]:
    """`name -> (default, meaning, where)` for everything `--set` accepts, `where` being
    `hparams` (traced), `config` (static) or `train` (driver); for `env_id`'s preset (the
    algorithm's default environment's if None)."""
    p = _preset(algo(algo_name), preset, env_id)
    out = {}
    for where, obj in (("hparams", p.hparams), ("config", p.config), ("train", p.train_config)):
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
    env_id = env_id or a.default_env
    env, env_params = make(env_id)
    preset, p = resolve_preset(a, preset, env_id)
    parts = {"hparams": p.hparams, "config": p.config, "train": p.train_config}
    valid = settable(algo_name, preset, env_id)
    changes: dict[str, dict[str, Any]] = {"hparams": {}, "config": {}, "train": {}}
    for name, text in (overrides or {}).items():
        if name not in valid:
            raise ValueError(
                f"unknown setting {name!r} for {algo_name}; valid settings: {', '.join(valid)}"
            )
        default, _, where = valid[name]
        changes[where][name] = _parse(name, text, default)
    if "total_env_steps" in changes["train"] and "chunk_env_steps" not in changes["train"]:
        steps = changes["train"]["total_env_steps"]
        changes["train"]["chunk_env_steps"] = min(p.train_config.chunk_env_steps, steps)
    for where, values in changes.items():
        if values:
            parts[where] = dataclasses.replace(parts[where], **values)
    agent = a.build(parts["config"], env, env_params, parts["train"])
    trainer = make_trainer(agent, env, env_params, parts["train"])
    key = experiment_fingerprint(algo_name, parts["config"], parts["train"], env, env_params)
    trainer = trainer._replace(fingerprint=key)
    return Experiment(
        algo_name,
        env_id,
        preset,
        parts["config"],
        parts["hparams"],
        parts["train"],
        trainer,
        agent,
        env,
        env_params,
    )


def resolve_preset(a: Algo, name: str, env_id: str) -> tuple[str, Preset]:
    """The preset that `--preset name` means for `env_id`: `(name, preset)`.

    Presets belong to (algorithm, environment) pairs. `default` is the algorithm's preset
    made for `env_id` (its `default` if that was made for it, else the first other preset
    made for it, its `course` preset last), or else its `generic` one, made for no task in
    particular (no reward rewriting, no stopping rule). A named preset made for other
    environments is a `ValueError` naming them.
    """
    if name != "default" and name not in a.presets:
        raise ValueError(
            f"unknown preset {name!r} for {a.name}; known presets: {', '.join(a.presets)}"
        )
    if name == "default":
        others = [n for n in a.presets if n not in ("default", "course")]
        order = ["default", *others, "course"]
        for candidate in order:
            if candidate in a.presets and env_id in a.presets[candidate].envs:
                return candidate, a.presets[candidate]
        if "generic" in a.presets:
            return "generic", a.presets["generic"]
        made = sorted({e for p in a.presets.values() for e in p.envs})
        raise ValueError(
            f"{a.name} has no settings for {env_id}: its presets were made for {', '.join(made)}"
        )
    preset = a.presets[name]
    if preset.envs and env_id not in preset.envs:
        raise ValueError(
            f"preset {name!r} of {a.name} was made for {', '.join(preset.envs)}, not "
            f"{env_id}; leave --preset out for {env_id}'s settings"
        )
    return name, preset


def _preset(a: Algo, name: str, env_id: str | None = None) -> Preset:
    return resolve_preset(a, name, env_id or a.default_env)[1]


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
        if text.lower() == "none":  # unset (e.g. terminal_reward); validation refuses it
            return None  # where a number is needed
        if isinstance(default, float) or default is None:
            return float(text)
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
