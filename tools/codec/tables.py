"""Entropy tables for the factorized prior, as CompressAI 1.2.2 builds them.

Training and export import this module; the runtime only loads its output.

    EntropyBottleneck.update()  ->  build_tables(quantiles, logits_cumulative)
    pmf_to_quantized_cdf()      ->  pmf_to_quantized_cdf(pmf)

The table directory (save_tables / load_tables, read by
spw_codec_tables_load) holds four .npy files:

    quantized_cdf.npy  int32 (C, N)  row c: cdf_length[c] entries, then zeros
    cdf_length.npy     int32 (C,)
    offset.npy         int32 (C,)    symbol coded by bin 0 (= -minima)
    medians.npy        float32 (C,)  quantiles[:, 0, 1]

numpy only.
"""

import math
import os

import numpy as np

PRECISION = 16
TAIL_MASS = 1e-9


def pmf_to_quantized_cdf(pmf, precision=PRECISION):
    """CDF of len(pmf) + 1 integers from 0 to 2**precision, every bin >= 1.

    Same steps and rounding as CompressAI's C++ pmf_to_quantized_cdf: the pmf
    is float32, scaled and rounded half away from zero, rescaled with integer
    floor division to the total, prefix-summed with the last entry forced to
    the full scale, then each empty bin takes one count from the smallest bin
    that has more than one (first such bin on ties), scanning left to right.
    """
    pmf = np.asarray(pmf, dtype=np.float32)
    if pmf.ndim != 1 or pmf.size == 0:
        raise ValueError("pmf must be a non-empty 1-D array")
    if not np.all(np.isfinite(pmf)) or np.any(pmf < 0):
        raise ValueError("pmf entries must be finite and >= 0")
    scale = 1 << precision
    # float32 * 2^16 is exact; float64 then holds x + 0.5 exactly too.
    scaled = (pmf * np.float32(scale)).astype(np.float64)
    freq = [int(math.floor(x + 0.5)) for x in scaled]
    total = sum(freq)
    if total == 0:
        raise ValueError("pmf has no mass")
    cdf = [0] + [(scale * f) // total for f in freq]
    for i in range(1, len(cdf)):
        cdf[i] += cdf[i - 1]
    cdf[-1] = scale
    n = len(cdf)
    for i in range(n - 1):
        if cdf[i] != cdf[i + 1]:
            continue
        best_freq, best = None, -1
        for j in range(n - 1):
            f = cdf[j + 1] - cdf[j]
            if f > 1 and (best_freq is None or f < best_freq):
                best_freq, best = f, j
        if best < 0:
            raise ValueError("cannot give every bin a count: too many bins")
        if best < i:
            for j in range(best + 1, i + 1):
                cdf[j] -= 1
        else:
            for j in range(i + 1, best + 1):
                cdf[j] += 1
    if cdf[0] != 0 or cdf[-1] != scale or any(b <= a for a, b in zip(cdf, cdf[1:])):
        raise AssertionError("quantized cdf is not strictly increasing")
    return np.array(cdf, dtype=np.int64)


def tables_from_pmfs(pmfs, pmf_lengths, tail_masses, offsets, medians, precision=PRECISION):
    """Tables from per-channel pmfs (C, >= max pmf_length) and tail masses (C,).

    Channel c codes bins pmfs[c, :pmf_lengths[c]] plus one tail bin with
    tail_masses[c]; cdf_length = pmf_length + 2.
    """
    pmfs = np.asarray(pmfs, dtype=np.float32)
    pmf_lengths = np.asarray(pmf_lengths, dtype=np.int64).reshape(-1)
    tail = np.asarray(tail_masses, dtype=np.float32).reshape(-1)
    C = pmf_lengths.size
    if pmfs.shape[0] != C or tail.size != C:
        raise ValueError("pmfs, pmf_lengths and tail_masses disagree on channels")
    max_length = int(pmf_lengths.max())
    cdf = np.zeros((C, max_length + 2), dtype=np.int32)
    for c in range(C):
        n = int(pmf_lengths[c])
        prob = np.concatenate([pmfs[c, :n], tail[c : c + 1]])
        q = pmf_to_quantized_cdf(prob, precision)
        cdf[c, : q.size] = q
    return {
        "quantized_cdf": cdf,
        "cdf_length": (pmf_lengths + 2).astype(np.int32),
        "offset": np.asarray(offsets, dtype=np.int32).reshape(-1),
        "medians": np.asarray(medians, dtype=np.float32).reshape(-1),
    }


def _sigmoid(x):
    # tanh form: no overflow for large |x|.
    return (0.5 * (1.0 + np.tanh(0.5 * x.astype(np.float64)))).astype(np.float32)


def build_tables(quantiles, logits_cumulative, precision=PRECISION):
    """EntropyBottleneck.update(): tables from the learned quantiles.

    quantiles: (C, 1, 3) lower/median/upper. logits_cumulative(x) maps
    float32 samples (C, 1, L) to the cumulative logits c(x) of each channel.
    As in CompressAI the upper tail is read at the last of max_length samples
    for every channel, also those with a shorter pmf.
    """
    q = np.asarray(quantiles, dtype=np.float32)
    medians = q[:, 0, 1]
    minima = np.maximum(np.ceil(medians - q[:, 0, 0]).astype(np.int32), 0)
    maxima = np.maximum(np.ceil(q[:, 0, 2] - medians).astype(np.int32), 0)
    offset = -minima
    pmf_start = medians - minima.astype(np.float32)
    pmf_length = maxima + minima + 1
    max_length = int(pmf_length.max())
    samples = np.arange(max_length, dtype=np.float32)[None, :] + pmf_start[:, None]
    samples = samples[:, None, :]
    half = np.float32(0.5)
    lower = np.asarray(logits_cumulative(samples - half), dtype=np.float32)
    upper = np.asarray(logits_cumulative(samples + half), dtype=np.float32)
    sign = -np.sign(lower + upper)
    pmf = np.abs(_sigmoid(sign * upper) - _sigmoid(sign * lower))[:, 0, :]
    tail_mass = _sigmoid(lower[:, 0, :1]) + _sigmoid(-upper[:, 0, -1:])
    return tables_from_pmfs(pmf, pmf_length, tail_mass[:, 0], offset, medians, precision)


def logits_cumulative(params, x):
    """The density network c(x) of method.md, float32, per channel.

    params: dict with 'matrices' [5 arrays (C, out, in)], 'biases' [5 arrays
    (C, out, 1)], 'factors' [4 arrays (C, out, 1)]; x: (C, 1, L).
    """
    logits = np.asarray(x, dtype=np.float32)
    for i in range(len(params["matrices"])):
        m = np.log1p(np.exp(np.asarray(params["matrices"][i], dtype=np.float32)))
        logits = np.matmul(m, logits) + np.asarray(params["biases"][i], dtype=np.float32)
        if i < len(params["factors"]):
            f = np.tanh(np.asarray(params["factors"][i], dtype=np.float32))
            logits = logits + f * np.tanh(logits)
    return logits.astype(np.float32)


def quantile_target(tail_mass=TAIL_MASS):
    """t of the auxiliary loss: c(quantiles) -> [-t, 0, t]."""
    return math.log(2.0 / tail_mass - 1.0)


_FILES = {
    "quantized_cdf": np.int32,
    "cdf_length": np.int32,
    "offset": np.int32,
    "medians": np.float32,
}


def save_tables(directory, tables):
    os.makedirs(directory, exist_ok=True)
    for name, dtype in _FILES.items():
        np.save(os.path.join(directory, name + ".npy"), np.ascontiguousarray(tables[name], dtype=dtype))


def load_tables(directory):
    return {name: np.load(os.path.join(directory, name + ".npy")).astype(dtype)
            for name, dtype in _FILES.items()}


def check_tables(tables):
    """The checks the runtime makes at load, for early failure in Python."""
    cdf, lengths = tables["quantized_cdf"], tables["cdf_length"]
    for c, n in enumerate(lengths):
        row = cdf[c, :n].astype(np.int64)
        if n < 3 or row[0] != 0 or row[-1] != 1 << PRECISION or np.any(np.diff(row) < 1):
            raise ValueError("channel %d: invalid quantized cdf" % c)
    if not np.all(np.isfinite(tables["medians"])):
        raise ValueError("non-finite median")
