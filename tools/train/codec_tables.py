"""Integer CDF tables for the range coder, as method.md specifies (CompressAI's
`pmf_to_quantized_cdf` with precision 16, per channel).

Used by export.py when the project's own table builder (tools/codec/) is not
importable; both must agree bit for bit.
"""

import numpy as np

PRECISION = 16


def _round_half_away(x):
    """std::round on a float: half away from zero."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def pmf_to_quantized_cdf(pmf, precision=PRECISION):
    """pmf: 1-D float32 probabilities (the last one the tail bin).
    Returns the int32 CDF of length len(pmf) + 1, first 0, last 2^precision,
    every bin at least 1."""
    pmf = np.asarray(pmf, dtype=np.float32)
    one = 1 << precision
    # round(p * 2^16) in float32 arithmetic, as the C++ lambda does
    freq = _round_half_away(pmf * np.float32(one)).astype(np.int64)
    cdf = np.zeros(pmf.size + 1, dtype=np.int64)
    cdf[1:] = freq
    total = int(cdf.sum())
    if total == 0:
        raise ValueError("pmf sums to zero")
    cdf = (one * cdf) // total
    cdf = np.cumsum(cdf)
    cdf[-1] = one
    n = cdf.size
    for i in range(n - 1):
        if cdf[i] == cdf[i + 1]:
            # take one count from the smallest bin that can spare one
            best_freq, best = None, -1
            for j in range(n - 1):
                f = cdf[j + 1] - cdf[j]
                if f > 1 and (best_freq is None or f < best_freq):
                    best_freq, best = f, j
            if best < 0:
                raise ValueError("cannot make every bin non-empty")
            if best < i:
                cdf[best + 1:i + 1] -= 1
            else:
                cdf[i + 1:best + 1] += 1
    return cdf.astype(np.int32)


def build_tables(medians, pmf, tail_mass, pmf_length, offset, precision=PRECISION):
    """Per-channel tables from the bottleneck's pmfs (EntropyBottleneck.pmfs()).

    Returns dict(quantized_cdf int32 [C, Lmax] zero-padded, cdf_length int32
    [C] = pmf_length + 2, offset int32 [C], medians float32 [C])."""
    c = len(pmf_length)
    max_len = int(np.max(pmf_length)) + 2
    qcdf = np.zeros((c, max_len), dtype=np.int32)
    for i in range(c):
        L = int(pmf_length[i])
        p = np.concatenate([pmf[i, :L], tail_mass[i:i + 1]]).astype(np.float32)
        cdf = pmf_to_quantized_cdf(p, precision)
        qcdf[i, :cdf.size] = cdf
    return dict(quantized_cdf=qcdf, cdf_length=(np.asarray(pmf_length) + 2).astype(np.int32),
                offset=np.asarray(offset, dtype=np.int32), medians=np.asarray(medians, dtype=np.float32))
