"""Spread a batch of runs (seeds, hyperparameter settings) across devices.

`jax.jit(jax.vmap(train))` takes the placement of its inputs: put the keys `[S]` and the
hyperparameters (leaves `[S, ...]`) with their leading axis split across the devices
(`shard_runs`) and XLA runs each device's runs on that device. The runs are independent,
so nothing crosses devices except the stopping rule's "has every run stopped?" of a
`while_loop`. Results equal the single-device ones (tested on 4 CPU devices).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def runs_sharding(num_runs: int, devices: Sequence[Any] | None = None) -> NamedSharding:
    """A sharding that splits a leading axis of `num_runs` evenly across `devices` (all
    of JAX's devices by default); `ValueError` if it does not divide evenly."""
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("runs_sharding needs at least one device")
    if num_runs % len(devices):
        raise ValueError(
            f"{num_runs} runs cannot be split evenly across {len(devices)} devices; "
            f"use a multiple of {len(devices)}"
        )
    return NamedSharding(Mesh(np.asarray(devices), ("runs",)), PartitionSpec("runs"))


def shard_runs(tree: Any, devices: Sequence[Any] | None = None) -> Any:
    """Place every leaf of `tree` (keys `[S]`, hyperparameters `[S, ...]`) with its leading
    axis split across `devices`. All leaves must share the same leading size `S`."""
    leaves = jax.tree.leaves(tree)
    sizes = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(
            f"shard_runs needs every leaf to have the same leading (runs) axis, got sizes {sizes}"
        )
    return jax.device_put(tree, runs_sharding(sizes.pop(), devices))


def resolve_devices(devices: Any = "auto", num_runs: int | None = None) -> list | None:
    """The devices a batch of `num_runs` runs is split across, from what a caller asked:

    - `"auto"` (the default of `run_batch`, run folders, sweeps and the command line): every
      CPU device when JAX's default backend is the CPU and has several (one per core,
      `rljax.use_cpu_cores`) and the batch has at least 2 runs; otherwise None. Accelerators
      are used one at a time unless named: pass `"all"` to split across every GPU or TPU.
    - None: no split; the default device computes the whole batch.
    - `"all"`: `jax.devices()`; an int `K`: the first `K` of them; a sequence: those devices.

    `ValueError` names a count out of range or an unknown word.
    """
    if devices is None:
        return None
    everything = jax.devices()
    if isinstance(devices, str):
        if devices == "auto":
            cpu = everything[0].platform == "cpu" and len(everything) > 1
            several = num_runs is None or num_runs >= 2
            return everything if cpu and several and jax.process_count() == 1 else None
        if devices == "all":
            return everything
        raise ValueError(f"devices must be 'auto', 'all', a count or a list, got {devices!r}")
    if isinstance(devices, int) and not isinstance(devices, bool):
        if not 1 <= devices <= len(everything):
            raise ValueError(f"devices must be 1 to {len(everything)}, got {devices}")
        return everything[:devices]
    devices = list(devices)
    if not devices:
        raise ValueError("devices is an empty list; give None for the default device")
    return devices
