"""JAX's threefry hash lowered unrolled on the CPU (`rljax.core.keys`): the same bits."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.random import threefry_2x32

import rljax  # noqa: F401  (registers the lowering)
from rljax.core import keys

M32 = 0xFFFFFFFF


def numpy_threefry2x32(k0, k1, x0, x1):
    """Threefry-2x32-20 from Salmon et al. (2011), Python integers, one counter at a time."""
    rot = [13, 15, 26, 6, 17, 29, 16, 24]
    ks = [k0, k1, k0 ^ k1 ^ 0x1BD11BDA]
    x0, x1 = (x0 + ks[0]) & M32, (x1 + ks[1]) & M32
    for rnd in range(20):
        r = rot[rnd % 8]
        x0 = (x0 + x1) & M32
        x1 = ((x1 << r) | (x1 >> (32 - r))) & M32
        x1 ^= x0
        if rnd % 4 == 3:
            s = rnd // 4 + 1
            x0 = (x0 + ks[s % 3]) & M32
            x1 = (x1 + ks[(s + 1) % 3] + s) & M32
    return x0, x1


# Random123's known-answer vectors for threefry2x32_20: (key, counter) -> output.
KNOWN = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.mark.parametrize("key,count,expected", KNOWN)
def test_the_hash_gives_the_published_answers(key, count, expected):
    assert numpy_threefry2x32(*key, *count) == expected  # the reference itself
    u32 = [np.uint32(v) for v in (*key, *count)]
    got = jax.jit(keys.threefry2x32)(*u32)
    assert tuple(int(v) for v in got) == expected
    # and through JAX's own primitive, as every key on this CPU now lowers it
    got = jax.jit(threefry_2x32)(jnp.asarray(key, jnp.uint32), jnp.asarray(count, jnp.uint32))
    assert tuple(int(v) for v in got) == expected


def test_the_cpu_lowering_is_unrolled_and_equals_the_reference_on_random_inputs():
    assert keys.threefry_lowering() == "unrolled"
    rng = np.random.default_rng(0)
    key = rng.integers(0, 2**32, (2,), dtype=np.uint32)
    count = rng.integers(0, 2**32, (64,), dtype=np.uint32)
    f = jax.jit(threefry_2x32)
    assert "while" not in f.lower(key, count).as_text()  # JAX's own CPU lowering loops
    got = np.asarray(f(key, count))
    half = len(count) // 2
    for i in range(half):
        want = numpy_threefry2x32(int(key[0]), int(key[1]), int(count[i]), int(count[half + i]))
        assert (int(got[i]), int(got[half + i])) == want
    # vmapped over keys: the primitive's operands are broadcast against each other
    ks = rng.integers(0, 2**32, (3, 2), dtype=np.uint32)
    batched = np.asarray(jax.jit(jax.vmap(threefry_2x32, in_axes=(0, None)))(ks, count[:2]))
    for row, k in zip(batched, ks, strict=True):
        assert (int(row[0]), int(row[1])) == numpy_threefry2x32(
            int(k[0]), int(k[1]), int(count[0]), int(count[1])
        )


DRAWS = """
import hashlib, jax, jax.numpy as jnp, numpy as np
import rljax
from rljax.core import keys
def draws(key):
    k1, k2 = jax.random.split(key)
    return (jax.random.key_data(jax.random.split(k1, 5)), jax.random.key_data(
        jax.random.fold_in(k2, 7)), jax.random.uniform(k1, (3, 4)), jax.random.randint(k2, (9,),
        0, 10), jax.random.normal(k1, (5,)), jax.random.categorical(k2, jnp.zeros((4, 6))),
        jax.random.permutation(k1, 8), jax.random.bits(k2, (3,), jnp.uint8))
out = jax.jit(jax.vmap(draws))(jax.random.split(jax.random.key(3), 4))
digest = hashlib.sha256(b"".join(np.asarray(x).tobytes() for x in out)).hexdigest()
print(keys.threefry_lowering(), digest)
"""


def test_every_draw_equals_the_one_of_jaxs_own_lowering():
    """Split, fold_in and draws of each kind, vmapped and jitted, in a process with the
    unrolled lowering and in one with JAX's (`RLJAX_ROLLED_THREEFRY`): the same bits."""
    out = {}
    for rolled in ("", "1"):
        env = {**os.environ, "RLJAX_ROLLED_THREEFRY": rolled}
        proc = subprocess.run(
            [sys.executable, "-c", DRAWS], env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr
        lowering, digest = proc.stdout.split()
        out[lowering] = digest
    assert set(out) == {"unrolled", "jax"}
    assert out["unrolled"] == out["jax"]
