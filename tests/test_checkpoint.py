"""Checkpoints: round trip, atomic write, corrupt and mismatched files detected."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from rljax.run import checkpoint


def _tree(width=3):
    return {"w": jnp.arange(width * 2, dtype=jnp.float32).reshape(width, 2), "step": jnp.int32(7)}


def test_round_trip(tmp_path):
    path = checkpoint.save(tmp_path / "sub" / "params.ckpt", _tree())
    back = checkpoint.load(path, _tree())
    np.testing.assert_array_equal(back["w"], _tree()["w"])
    assert int(back["step"]) == 7
    assert [p.name for p in path.parent.iterdir()] == ["params.ckpt"]  # no temporary left


def test_truncated_and_garbled_files_are_detected(tmp_path):
    path = checkpoint.save(tmp_path / "p.ckpt", _tree())
    blob = path.read_bytes()
    path.write_bytes(blob[:-5])
    with pytest.raises(checkpoint.CheckpointError, match="truncated or corrupt"):
        checkpoint.load(path, _tree())
    garbled = bytearray(blob)
    garbled[-3] ^= 0xFF
    path.write_bytes(bytes(garbled))
    with pytest.raises(checkpoint.CheckpointError, match="checksum"):
        checkpoint.load(path, _tree())
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError, match="bad header"):
        checkpoint.load(path, _tree())
    with pytest.raises(checkpoint.CheckpointError, match="cannot read"):
        checkpoint.load(tmp_path / "missing.ckpt", _tree())


def test_other_configuration_is_refused(tmp_path):
    path = checkpoint.save(tmp_path / "p.ckpt", _tree(width=3))
    with pytest.raises(checkpoint.CheckpointError, match="with shape"):
        checkpoint.load(path, _tree(width=4))
    with pytest.raises(checkpoint.CheckpointError, match="structure"):
        checkpoint.load(path, {"other": jnp.zeros(2)})


def test_only_retired_leaves_of_an_older_file_are_dropped(tmp_path):
    # A leaf an older rljax saved and the template no longer has (its path ends with a
    # retired name) is dropped; any other extra leaf is still another configuration.
    old = {**_tree(), "hparams": {"double_dqn": jnp.zeros(2, bool)}}
    path = checkpoint.save(tmp_path / "p.ckpt", old)
    back = checkpoint.load(path, _tree(), retired=("['double_dqn']",))
    np.testing.assert_array_equal(back["w"], _tree()["w"])
    with pytest.raises(checkpoint.CheckpointError, match="structure"):
        checkpoint.load(path, _tree())
    with pytest.raises(checkpoint.CheckpointError, match="structure"):
        checkpoint.load(path, _tree(), retired=(".huber",))
