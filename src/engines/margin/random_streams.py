"""Counter-based random numbers for the avalanche simulation: Philox4x32-10, usable from a CPU `njit` kernel, a
CUDA device function and plain Python alike, so that the CPU and CUDA kernels draw the very same numbers.

A counter-based generator has no state to carry: the draw is a pure function of ``(seed, path, step, stream,
index)``. Any path can therefore be simulated alone, in any order, on any worker or device, and a run split
into path ranges gives exactly the numbers of the unsplit run; the simulation's chunking relies on it.

Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011) maps a
128-bit counter and a 64-bit key through ten rounds of 32-bit multiply-xor; `philox4x32` reproduces the
known-answer vectors of the authors' Random123 library. Counter layout used here:
``(index, step, path, stream)`` with the 64-bit seed as key (low and high 32-bit words).

Every 32-bit word is held in a ``uint64`` and every product is of two 32-bit values, which never overflows 64
bits: numba compiles the code with plain integer arithmetic on both targets, and numpy scalars (which the CUDA
simulator uses) raise no overflow warning. Constants are typed ``np.uint64`` explicitly, because numba turns a
mix of signed and unsigned 64-bit integers into floats.

One Philox block gives two 53-bit uniforms in (0, 1) (never 0 or 1) and, by the Box–Muller transform, two
independent standard normals (`normal_pair`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

STREAM_DIFFUSION = 0
"""Normals of the principal components, one pair per Philox block."""
STREAM_JUMP = 1
"""Jump arrival (uniform) and sizes (normals)."""
STREAM_IMPACT = 2
"""Normals of the extra volatility that forced sales leave on the factors they moved."""


def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of counter (c0, c1, c2, c3) and key (k0, k1), all 32-bit values held in uint64."""
    mask = np.uint64(0xFFFFFFFF)
    m0 = np.uint64(0xD2511F53)
    m1 = np.uint64(0xCD9E8D57)
    w0 = np.uint64(0x9E3779B9)
    w1 = np.uint64(0xBB67AE85)
    s32 = np.uint64(32)
    for r in range(10):
        p0 = m0 * c0
        p1 = m1 * c2
        n0 = (p1 >> s32) ^ c1 ^ k0
        n2 = (p0 >> s32) ^ c3 ^ k1
        c1 = p1 & mask
        c3 = p0 & mask
        c0 = n0
        c2 = n2
        if r < 9:
            k0 = (k0 + w0) & mask
            k1 = (k1 + w1) & mask
    return c0, c1, c2, c3


def uniform_pair(seed, path, step, stream, index):
    """Two independent uniforms in (0, 1) with 53 random bits each, for one counter."""
    mask = np.uint64(0xFFFFFFFF)
    s = np.uint64(seed)
    x0, x1, x2, x3 = philox4x32(
        np.uint64(index) & mask,
        np.uint64(step) & mask,
        np.uint64(path) & mask,
        np.uint64(stream) & mask,
        s & mask,
        (s >> np.uint64(32)) & mask,
    )
    scale = 1.0 / 9007199254740992.0  # 2**-53
    u1 = (np.float64((x0 << np.uint64(21)) | (x1 >> np.uint64(11))) + 0.5) * scale
    u2 = (np.float64((x2 << np.uint64(21)) | (x3 >> np.uint64(11))) + 0.5) * scale
    return u1, u2


def normal_pair(seed, path, step, stream, index):
    """Two independent standard normals (Box–Muller of `uniform_pair`)."""
    u1, u2 = uniform_pair(seed, path, step, stream, index)
    r = math.sqrt(-2.0 * math.log(u1))
    theta = 6.283185307179586 * u2
    return r * math.cos(theta), r * math.sin(theta)


philox4x32 = njit(cache=True, inline="always")(philox4x32)
uniform_pair = njit(cache=True, inline="always")(uniform_pair)
normal_pair = njit(cache=True, inline="always")(normal_pair)


@njit(cache=True)
def normals(seed, path, step, stream, n):
    """``n`` standard normals of one (seed, path, step, stream): pair j gives normals 2j and 2j + 1."""
    out = np.empty(n)
    for j in range((n + 1) // 2):
        z1, z2 = normal_pair(seed, path, step, stream, j)
        out[2 * j] = z1
        if 2 * j + 1 < n:
            out[2 * j + 1] = z2
    return out
