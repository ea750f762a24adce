"""Reference rANS coder, written for clarity, for making test vectors.

It produces the stream of CompressAI 1.2.2's RansEncoder.encode_with_indexes
with indexes = channel (see docs/CODEC.md): 64-bit state, L = 2^31, 32-bit
words, 16-bit precision, 4-bit bypass for values outside a channel's table.
It also writes and reads the splitwire tiled format.
"""

import struct

import numpy as np

L = 1 << 31
PREC = 16
BYPASS_BITS = 4
BYPASS_MAX = (1 << BYPASS_BITS) - 1
MASK64 = (1 << 64) - 1


def _ops_for_symbol(cdf, maxv, offset, s):
    """The (start, freq) puts and raw nibble puts for one symbol, in the order
    the decoder consumes them. ("sym", start, freq) or ("bits", value)."""
    v = int(s) - int(offset)
    if 0 <= v < maxv:
        return [("sym", int(cdf[v]), int(cdf[v + 1] - cdf[v]))]
    raw = -2 * v - 1 if v < 0 else 2 * (v - maxv)
    if raw >= 1 << 32:
        raise ValueError("symbol %d too far from its table" % s)
    ops = [("sym", int(cdf[maxv]), int(cdf[maxv + 1] - cdf[maxv]))]
    nib = 0
    while raw >> (BYPASS_BITS * nib):
        nib += 1
    rest = nib
    while rest >= BYPASS_MAX:
        ops.append(("bits", BYPASS_MAX))
        rest -= BYPASS_MAX
    ops.append(("bits", rest))
    for j in range(nib):
        ops.append(("bits", (raw >> (BYPASS_BITS * j)) & BYPASS_MAX))
    return ops


def encode_block(symbols, tables):
    """symbols: int array (C, n) -> bytes, one rANS stream."""
    cdfs, lengths, offsets = tables["quantized_cdf"], tables["cdf_length"], tables["offset"]
    ops = []
    for c in range(symbols.shape[0]):
        maxv = int(lengths[c]) - 2
        for s in symbols[c]:
            ops.extend(_ops_for_symbol(cdfs[c], maxv, offsets[c], s))
    x = L
    words = []  # emitted back to front
    for op in reversed(ops):
        if op[0] == "sym":
            _, start, freq = op
            if x >= ((L >> PREC) << 32) * freq:
                words.append(x & 0xFFFFFFFF)
                x >>= 32
            x = ((x // freq) << PREC) + (x % freq) + start
        else:
            if x >= ((L >> BYPASS_BITS) << 32):
                words.append(x & 0xFFFFFFFF)
                x >>= 32
            x = (x << BYPASS_BITS) | op[1]
    words.append(x >> 32)
    words.append(x & 0xFFFFFFFF)
    words.reverse()
    return struct.pack("<%dI" % len(words), *words)


def encode(symbols, tables):
    """symbols: int array (C, H, W) -> plain stream bytes."""
    s = np.asarray(symbols)
    return encode_block(s.reshape(s.shape[0], -1), tables)


class _Reader:
    def __init__(self, data):
        if len(data) % 4:
            raise ValueError("stream is not whole words")
        self.words = struct.unpack("<%dI" % (len(data) // 4), data)
        self.i = 0

    def word(self):
        if self.i >= len(self.words):
            raise ValueError("truncated stream")
        w = self.words[self.i]
        self.i += 1
        return w


def decode_block(data, tables, C, n):
    cdfs, lengths, offsets = tables["quantized_cdf"], tables["cdf_length"], tables["offset"]
    r = _Reader(data)
    x = r.word() | (r.word() << 32)
    out = np.zeros((C, n), dtype=np.int64)

    def get_bits():
        nonlocal x
        val = x & BYPASS_MAX
        x >>= BYPASS_BITS
        if x < L:
            x = (x << 32) | r.word()
        return val

    for c in range(C):
        cdf = [int(v) for v in cdfs[c, : lengths[c]]]
        maxv = int(lengths[c]) - 2
        for k in range(n):
            cum = x & ((1 << PREC) - 1)
            s = max(i for i in range(maxv + 1) if cdf[i] <= cum)
            x = (cdf[s + 1] - cdf[s]) * (x >> PREC) + cum - cdf[s]
            if x < L:
                x = (x << 32) | r.word()
            v = s
            if s == maxv:
                val = get_bits()
                nib = val
                while val == BYPASS_MAX:
                    val = get_bits()
                    nib += val
                raw = 0
                for j in range(nib):
                    raw |= get_bits() << (BYPASS_BITS * j)
                v = -(raw >> 1) - 1 if raw & 1 else (raw >> 1) + maxv
            out[c, k] = v + int(offsets[c])
    if x != L or r.i != len(r.words):
        raise ValueError("stream does not end cleanly")
    return out


def decode(data, tables, shape):
    C, H, W = shape
    return decode_block(data, tables, C, H * W).reshape(C, H, W)


# ---- tiled format (docs/CODEC.md) ------------------------------------------------


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def _header(idx, rows, payload, shape):
    C, H, W = shape
    h = bytearray(struct.pack("<BBHHHII", ord("S"), 1, idx, rows, 0, len(payload), crc32c(payload)))
    check = crc32c(bytes(h[8:16]), crc32c(bytes(h[0:6]), crc32c(struct.pack("<III", C, H, W))))
    struct.pack_into("<H", h, 6, check & 0xFFFF)
    return bytes(h)


def encode_tiled(symbols, tables, rows):
    s = np.asarray(symbols)
    C, H, W = s.shape
    out = b""
    for idx, r0 in enumerate(range(0, H, rows)):
        band = s[:, r0 : r0 + rows, :].reshape(C, -1)
        payload = encode_block(band, tables)
        out += _header(idx, rows, payload, s.shape) + payload
    return out
