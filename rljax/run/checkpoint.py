"""Saving and loading pytrees (parameters, whole training states) safely.

A file is `MAGIC`, a SHA-256 of the payload, then the payload: the tree's leaves as a
msgpack map from each leaf's path (`jax.tree_util.keystr`) to its array, so any pytree
(NamedTuples, dataclasses, registered classes) saves without a serialization registry.
Writes go to a temporary file in the same folder, are flushed to disk, then renamed over the
target, so a file that `save` reported saved is complete, and a crash mid-write leaves the
old one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

MAGIC = b"RLJAXCK2"
_DIGEST = 32


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupt, or does not fit the template."""


def save(path: str | os.PathLike, tree: Any) -> Path:
    """Atomically write `tree` (any pytree of arrays) to `path`; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    leaves = jax.tree_util.tree_leaves_with_path(jax.device_get(tree))
    payload = serialization.msgpack_serialize(
        {jax.tree_util.keystr(p): np.asarray(leaf) for p, leaf in leaves}
    )
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + hashlib.sha256(payload).digest() + payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike, template: Any, retired: tuple[str, ...] = ()) -> Any:
    """Read a pytree saved by `save`, with the structure, shapes and dtypes of `template`.

    Raises `CheckpointError` naming the file when it is missing, truncated, corrupt, or holds
    a tree of another structure or shape (e.g. a different network size). A leaf of the file
    whose path ends with one of `retired` and that `template` lacks is dropped: a leaf that
    an older rljax saved and this one no longer has (e.g. a setting that became static).
    """
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    head = len(MAGIC) + _DIGEST
    if len(blob) < head or blob[: len(MAGIC)] != MAGIC:
        raise CheckpointError(f"{path} is not an rljax checkpoint (bad header)")
    digest, payload = blob[len(MAGIC) : head], blob[head:]
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(f"{path} is truncated or corrupt (checksum mismatch)")
    try:
        stored = serialization.msgpack_restore(payload)
    except Exception as e:  # msgpack raises several types for a garbled payload
        raise CheckpointError(f"{path} cannot be decoded: {e}") from e
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    names = [jax.tree_util.keystr(p) for p, _ in paths]
    if isinstance(stored, dict) and retired:
        known = set(names)
        stored = {k: v for k, v in stored.items() if k in known or not k.endswith(retired)}
    if not isinstance(stored, dict) or sorted(stored) != sorted(names):
        raise CheckpointError(
            f"{path} does not match the expected structure (was it saved with another "
            "configuration or algorithm?)"
        )
    leaves = []
    for name, (_, like) in zip(names, paths, strict=True):
        got, want = np.asarray(stored[name]), np.asarray(like)
        if got.shape != want.shape or got.dtype != want.dtype:
            raise CheckpointError(
                f"{path} holds {name} with shape {got.shape} {got.dtype}, expected "
                f"{want.shape} {want.dtype} (was it saved with another configuration?)"
            )
        leaves.append(got)
    return jax.tree_util.tree_unflatten(treedef, leaves)
