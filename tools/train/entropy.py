"""Factorized entropy bottleneck (Balle et al. 2018), as method.md specifies.

One univariate density per channel, given by its cumulative c(x): a small
monotone network with filters (3, 3, 3, 3), i.e. per channel matrices of
shapes (3,1), (3,3), (3,3), (3,3), (1,3), biases of matching height, and
factors for the first four layers:

    l = softplus(M_i) @ l + b_i;   for i < 4:  l += tanh(f_i) * tanh(l)

Likelihood of integer q: sigmoid(c(q+.5)) - sigmoid(c(q-.5)), evaluated as
|sigmoid(s*upper) - sigmoid(s*lower)| with s = -sign(lower+upper) (keeps the
subtraction away from 1 - 1), bounded below by 1e-9.

Quantiles (lower, median, upper) per channel are parameters trained only by
the auxiliary loss sum |c(quantiles) - [-t, 0, t]|, t = ln(2/tail_mass - 1),
with the network's own parameters detached; they get their own optimizer.

Training adds U(-0.5, 0.5) noise; evaluation uses rint(y - median) + median.
`pmfs()` gives what tools/codec/tables.py turns into the coder's integer CDFs.
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as Fn


class _LowerBound(torch.autograd.Function):
    """max(x, bound) whose gradient still flows when it would raise x."""

    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x)
        ctx.bound = bound
        return torch.clamp(x, min=bound)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        pass_through = (x >= ctx.bound) | (g < 0)
        return pass_through.type_as(g) * g, None


def lower_bound(x, bound):
    return _LowerBound.apply(x, bound)


class EntropyBottleneck(nn.Module):
    def __init__(self, channels, filters=(3, 3, 3, 3), init_scale=10.0, tail_mass=1e-9,
                 likelihood_bound=1e-9):
        super().__init__()
        self.channels = int(channels)
        self.filters = tuple(int(f) for f in filters)
        self.tail_mass = float(tail_mass)
        self.likelihood_bound = float(likelihood_bound)
        dims = (1,) + self.filters + (1,)
        scale = init_scale ** (1.0 / (len(self.filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(self.filters) + 1):
            # softplus(init) = 1 / scale / fan_out: the initial cumulative is a
            # wide logistic, about init_scale across.
            init = math.log(math.expm1(1.0 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.empty(channels, dims[i + 1], 1).uniform_(-0.5, 0.5)))
            if i < len(self.filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))
        q = torch.tensor([-init_scale, 0.0, init_scale]).repeat(channels, 1, 1)
        self.quantiles = nn.Parameter(q)  # (C, 1, 3)
        t = math.log(2.0 / self.tail_mass - 1.0)
        self.register_buffer("target", torch.tensor([-t, 0.0, t]))

    # -- the density ---------------------------------------------------------
    def logits_cumulative(self, x, stop_gradient=False):
        """c(x) for x of shape (C, 1, N) -> (C, 1, N)."""
        l = x
        n = len(self.filters) + 1
        for i in range(n):
            m = self.matrices[i]
            b = self.biases[i]
            if stop_gradient:
                m, b = m.detach(), b.detach()
            l = torch.baddbmm(b, Fn.softplus(m), l)
            if i < n - 1:
                f = self.factors[i]
                if stop_gradient:
                    f = f.detach()
                l = torch.addcmul(l, torch.tanh(f), torch.tanh(l))
        return l

    def _likelihood(self, v):
        # one pass over [v - 0.5, v + 0.5] instead of two
        n = v.shape[-1]
        both = self.logits_cumulative(torch.cat([v - 0.5, v + 0.5], dim=-1))
        lower, upper = both[..., :n], both[..., n:]
        s = -torch.sign(lower + upper).detach()
        return torch.abs(torch.sigmoid(s * upper) - torch.sigmoid(s * lower))

    def medians(self):
        return self.quantiles[:, 0, 1]

    def aux_loss(self):
        c = self.logits_cumulative(self.quantiles, stop_gradient=True)
        return torch.abs(c - self.target).sum()

    # -- forward -------------------------------------------------------------
    def forward(self, y, training=None):
        """y: (N, C, H, W) -> (y_hat, likelihoods), both (N, C, H, W)."""
        training = self.training if training is None else training
        y_hat = y + torch.empty_like(y).uniform_(-0.5, 0.5) if training else self.rounded(y)
        n, c, h, w = y_hat.shape
        v = y_hat.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lik = self._likelihood(v).reshape(c, n, h, w).permute(1, 0, 2, 3)
        if self.likelihood_bound > 0:
            lik = lower_bound(lik, self.likelihood_bound)
        return y_hat, lik

    def rounded(self, y):
        """y on the medians' integer grid, as the coder sends it."""
        med = self.medians().detach().view(1, -1, 1, 1)
        return torch.round(y - med) + med

    def symbols(self, y):
        """Integer symbols rint(y - median) (torch.round = half to even)."""
        med = self.medians().detach().view(1, -1, 1, 1)
        return torch.round(y - med).to(torch.int32)

    # -- coder tables (CompressAI's update()) --------------------------------
    @torch.no_grad()
    def pmfs(self):
        """Per-channel pmf over the quantile range, tail mass and bookkeeping
        exactly as CompressAI's EntropyBottleneck.update() computes them."""
        med = self.quantiles[:, 0, 1]
        minima = torch.clamp(torch.ceil(med - self.quantiles[:, 0, 0]).int(), min=0)
        maxima = torch.clamp(torch.ceil(self.quantiles[:, 0, 2] - med).int(), min=0)
        offset = -minima
        pmf_start = med - minima
        pmf_length = maxima + minima + 1
        max_length = int(pmf_length.max())
        samples = torch.arange(max_length, dtype=med.dtype, device=med.device)
        samples = samples[None, :] + pmf_start[:, None, None]  # (C, 1, L)
        lower = self.logits_cumulative(samples - 0.5, stop_gradient=True)
        upper = self.logits_cumulative(samples + 0.5, stop_gradient=True)
        s = -torch.sign(lower + upper)
        pmf = torch.abs(torch.sigmoid(s * upper) - torch.sigmoid(s * lower))[:, 0, :]
        # CompressAI takes the upper tail at the last sample of the padded
        # range (index max_length - 1) for every channel; kept as is so the
        # tables match its bit for bit.
        tail = torch.sigmoid(lower[:, 0, :1]) + torch.sigmoid(-upper[:, 0, -1:])
        return dict(medians=med.float().numpy().astype(np.float32),
                    pmf=pmf.float().numpy().astype(np.float32),
                    tail_mass=tail[:, 0].float().numpy().astype(np.float32),
                    pmf_length=pmf_length.numpy().astype(np.int32),
                    offset=offset.numpy().astype(np.int32))
