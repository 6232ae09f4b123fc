"""The package's layers and their dependency rule (docs/architecture.md), read from the
imports of every module; and validation that runs once, when a person builds a value."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rljax
from rljax import a2c, a3c, deep_sarsa, dp, dqn, reinforce, tabular
from rljax.envs.gridworld import GridWorldParams
from rljax.envs.pacman import PacmanParams

ROOT = Path(rljax.__file__).parent
COMPONENTS = ("losses", "nets", "optim", "replay", "exploration", "pending")

# layer -> the layers its modules may import (its own included).
ALLOWED = {
    "core": {"core"},
    "components": {"core", "components"},
    "envs": {"core", "envs"},
    "algos": {"core", "components", "algos"},
    "run": {"core", "components", "algos", "envs", "run"},
}


def _layer(module: str) -> str:
    """`rljax.a.b` -> its layer; the package root `rljax` is a layer of its own."""
    parts = module.split(".")
    if len(parts) == 1:
        return "root"
    top = parts[1]
    if top in COMPONENTS:
        return "components"
    if top in ("__main__",):
        return "root"
    return top


def _rljax_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rljax"):
            if node.module == "rljax":
                found.update(f"rljax.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("rljax"))
    return found


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def test_every_module_belongs_to_a_layer():
    layers = {_layer(m) for m, _ in _modules()}
    assert layers <= set(ALLOWED) | {"root"}, layers


@pytest.mark.parametrize("module", [m for m, _ in _modules() if _layer(m) != "root"])
def test_imports_point_down_the_layers(module):
    path = dict(_modules())[module]
    layer = _layer(module)
    for imported in _rljax_imports(path):
        target = _layer(imported)
        assert target in ALLOWED[layer], f"{module} ({layer}) imports {imported} ({target})"


def test_the_rule_catches_an_upward_import(tmp_path):
    # The checker itself: an algorithm importing the registry is reported.
    bad = tmp_path / "bad.py"
    bad.write_text("from rljax.run.registry import ALGOS\nimport rljax.core.types\n")
    layers = {_layer(m) for m in _rljax_imports(bad)}
    assert not layers <= ALLOWED["algos"]


# --- Validation once --------------------------------------------------------------------

VALIDATED = [
    dqn.DQNHParams,
    deep_sarsa.DeepSARSAHParams,
    reinforce.ReinforceHParams,
    a2c.A2CHParams,
    a3c.A3CHParams,
    tabular.TabularHParams,
    dp.DPHParams,
    GridWorldParams,
    PacmanParams,
]


@pytest.fixture
def validate_calls(monkeypatch):
    calls = []
    for cls in VALIDATED:
        original = cls.__post_init__  # what the constructor runs: validate()

        def counting(self, original=original):
            calls.append(type(self).__name__)
            return original(self)

        monkeypatch.setattr(cls, "__post_init__", counting)
    return calls


def test_validation_runs_once_per_construction_never_when_jax_rebuilds(validate_calls):
    hps = [cls() for cls in VALIDATED]
    assert len(validate_calls) == len(VALIDATED)
    validate_calls.clear()

    @jax.jit
    def touch(tree):
        return jax.tree.map(lambda x: x * 1, tree)

    for _ in range(3):
        for hp in hps:
            leaves, treedef = jax.tree.flatten(hp)
            jax.tree.unflatten(treedef, leaves)
            batched = rljax.tile_hparams(hp, 4)
            jax.vmap(lambda h: h)(batched)
            jax.block_until_ready(touch(batched))
    assert validate_calls == []
    # replace is a construction by a person: validated, and bad values named.
    hps[0].replace(gamma=0.5)
    assert validate_calls == ["DQNHParams"]
    with pytest.raises(ValueError, match=r"DQNHParams\.gamma .*got 2"):
        hps[0].replace(gamma=2.0)


def test_hyperparameters_are_traced_leaves_and_flags_are_booleans():
    hp = rljax.tile_hparams(dqn.DQNHParams(), 3)
    assert hp.huber.dtype == jnp.bool_ and hp.huber.shape == (3,)
    assert hp.gamma.shape == (3,)
    with pytest.raises(ValueError, match=r"DQNHParams\.huber must be True or False, got 0.5"):
        dqn.DQNHParams(huber=0.5)
    with pytest.raises(ValueError, match=r"must be a number"):
        dqn.DQNHParams(gamma=True)
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(hp)]
    fields = dataclasses.fields(dqn.DQNHParams)  # None (e.g. terminal_reward) has no leaf
    assert paths == [f".{f.name}" for f in fields if getattr(hp, f.name) is not None]
    np.testing.assert_array_equal(hp.huber, True)
