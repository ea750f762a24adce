"""Client encoders and server decoders for MobileNetV2 split points.

SVBI reference encoder (method.md): three residual down-sampling blocks,
3 -> 48 -> 64 -> 48, latent 48 x 28 x 28 for a 224 x 224 input.  One block:
main = conv3x3 s2 -> conv3x3 s1 -> ReLU, shortcut = conv1x1 s2, out = main +
shortcut.  The reference code puts no activation between the two 3x3 convs;
`mid_act=False` (the default here) keeps that, so checkpoints of the
reference layout load unchanged.  `mid_act=True` inserts a ReLU there.
`refine=K` appends K stride-1 residual blocks at the latent's resolution
(x + conv3x3(relu(conv3x3(x))), no activation after the sum, so a block whose
second conv is zero passes the latent through unchanged): more encoder
nonlinearity for about 33 MMAC (6%) per block at 224 x 224.

Decoder g_s: conv3x3 to `width`, residual conv blocks with LeakyReLU(0.01),
then a 1x1 projection to the split's channels.  A latent at twice the
split's resolution (48x28x28 -> 14x14 split) gets a stride-2 conv stage first.
MobileNetV2's block outputs are linear bottlenecks (no ReLU), so the decoder
ends without an activation.

Entropic Student baseline (method.md, adapted to this backbone): encoder
conv5x5 s2 3->96 (no bias) + GDN, conv5x5 s2 96->48 + GDN, conv2x2 s1 48->24
(latent 24x55x55); decoder conv3x3 24->96 + inverse GDN, conv3x3 s2 96->64
(55 -> 28) + inverse GDN, [conv3x3 s2 64->64 + inverse GDN for a 14x14
split], conv1x1 -> split channels.  The original decoder targets ResNet-50's
layer 1; this one targets the MobileNetV2 split used by the SVBI models.
`es_decoder="res"` gives the baseline the SVBI decoder instead (a stride-2
stage 55 -> 28 first), so the two encoders compare on equal decoders.
"""

import torch
import torch.nn as nn
import torch.nn.functional as Fn

from entropy import EntropyBottleneck, lower_bound


class ResDown(nn.Module):
    def __init__(self, cin, cout, mid_act=False):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, stride=2)
        self.mid_act = mid_act

    def forward(self, x):
        h = self.conv1(x)
        if self.mid_act:
            h = torch.relu(h)
        h = torch.relu(self.conv2(h))
        return h + self.skip(x)


class EncRefine(nn.Module):
    """x + conv3x3(relu(conv3x3(x))): the encoder's stride-1 residual block.
    Unlike ResBlock (decoder) nothing follows the sum, since the latent is
    signed; with conv2 at zero the block is the identity."""

    def __init__(self, ch):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(torch.relu(self.conv1(x)))


class SVBIEncoder(nn.Module):
    def __init__(self, channels=(3, 48, 64, 48), mid_act=False, refine=0):
        super().__init__()
        self.blocks = nn.Sequential(*[ResDown(channels[i], channels[i + 1], mid_act)
                                      for i in range(len(channels) - 1)])
        self.refine = nn.Sequential(*[EncRefine(channels[-1]) for _ in range(refine)])
        self.latent_channels = channels[-1]

    def forward(self, x):
        return self.refine(self.blocks(x))


class ResBlock(nn.Module):
    """x + conv3x3(lrelu(conv3x3(x))), then LeakyReLU(0.01)."""

    def __init__(self, ch, slope=0.01):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.slope = slope

    def forward(self, x):
        h = Fn.leaky_relu(self.conv1(x), self.slope)
        h = self.conv2(h)
        return Fn.leaky_relu(x + h, self.slope)


class ConvAct(nn.Module):
    def __init__(self, cin, cout, k, stride=1, slope=0.01):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)
        self.slope = slope

    def forward(self, x):
        return Fn.leaky_relu(self.conv(x), self.slope)


class ResDecoder(nn.Module):
    def __init__(self, cin, cout, width=96, n_blocks=2, downsample=0):
        super().__init__()
        layers = [ConvAct(cin, width, 3)]
        for _ in range(downsample):
            layers.append(ConvAct(width, width, 3, stride=2))
        layers += [ResBlock(width) for _ in range(n_blocks)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(width, cout, 1)

    def forward(self, y):
        return self.out(self.body(y))


class GDN(nn.Module):
    """Generalized divisive normalisation, y_i = x_i / sqrt(beta_i + sum_j
    gamma_ij x_j^2) (inverse: times the root).  beta and gamma are kept
    non-negative by storing sqrt(value + pedestal) and bounding it, the usual
    reparametrisation."""

    def __init__(self, ch, inverse=False, beta_min=1e-6, gamma_init=0.1, reparam_offset=2 ** -18):
        super().__init__()
        self.inverse = inverse
        self.pedestal = reparam_offset ** 2
        self.beta_bound = (beta_min + self.pedestal) ** 0.5
        self.gamma_bound = reparam_offset
        self.beta = nn.Parameter(torch.sqrt(torch.ones(ch) + self.pedestal))
        self.gamma = nn.Parameter(torch.sqrt(gamma_init * torch.eye(ch) + self.pedestal))

    def effective(self):
        beta = lower_bound(self.beta, self.beta_bound) ** 2 - self.pedestal
        gamma = lower_bound(self.gamma, self.gamma_bound) ** 2 - self.pedestal
        return beta, gamma

    def forward(self, x):
        beta, gamma = self.effective()
        c = x.shape[1]
        norm = Fn.conv2d(x * x, gamma.view(c, c, 1, 1), beta)
        norm = torch.sqrt(norm)
        return x * norm if self.inverse else x / norm


class ESEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 96, 5, stride=2, padding=2, bias=False)
        self.gdn1 = GDN(96)
        self.conv2 = nn.Conv2d(96, 48, 5, stride=2, padding=2)
        self.gdn2 = GDN(48)
        self.conv3 = nn.Conv2d(48, 24, 2, stride=1, padding=0)
        self.latent_channels = 24

    def forward(self, x):
        return self.conv3(self.gdn2(self.conv2(self.gdn1(self.conv1(x)))))


class ESDecoder(nn.Module):
    def __init__(self, cout, downsample=0):
        super().__init__()
        layers = [nn.Conv2d(24, 96, 3, padding=1), GDN(96, inverse=True),
                  nn.Conv2d(96, 64, 3, stride=2, padding=1), GDN(64, inverse=True)]
        for _ in range(downsample):
            layers += [nn.Conv2d(64, 64, 3, stride=2, padding=1), GDN(64, inverse=True)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(64, cout, 1)

    def forward(self, y):
        return self.out(self.body(y))


class Compressor(nn.Module):
    """encoder -> entropy bottleneck -> decoder."""

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.bottleneck = EntropyBottleneck(encoder.latent_channels)
        self.decoder = decoder
        # Straight-through rounding for the decoder's input in training: the
        # rate keeps the noisy proxy, the decoder sees the latent the coder
        # sends (train.py --ste).
        self.ste = False

    def forward(self, x):
        y = self.encoder(x)
        y_hat, lik = self.bottleneck(y)
        if self.ste and self.bottleneck.training:
            y_hat = y + (self.bottleneck.rounded(y) - y).detach()
        return self.decoder(y_hat), lik, y


# split name -> (channels, spatial size) for MobileNetV2 at 224 x 224
SPLITS = {"block5": (32, 28), "block12": (96, 14), "block9": (64, 14), "block2": (24, 56)}
SPLIT_ALIASES = {"s28": "block5", "s14": "block12"}


def load_checkpoint(path):
    """A checkpoint written by train.py or keep.py, on the CPU.  They hold the
    run's args and optimizer state (plain Python and numpy values), which
    torch >= 2.6 refuses to unpickle unless weights_only=False; these files
    are the project's own."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except TypeError:  # torch < 1.13 has no weights_only
        return torch.load(path, map_location="cpu")


def checkpoint_weights(ck, which="auto"):
    """(state dict, label) of a checkpoint: "live" = the optimizer's weights,
    "ema" = their exponential moving average (runs with --ema), "auto" = the
    average where the run kept one."""
    if which not in ("auto", "live", "ema"):
        raise ValueError("weights %r: auto, live or ema" % which)
    if which == "ema" and "ema" not in ck:
        raise ValueError("the checkpoint has no EMA weights (trained without --ema)")
    if which != "live" and "ema" in ck:
        return ck["ema"], "ema"
    return ck["model"], "live"


class EMA:
    """Exponential moving average of a model's floating-point state (weights
    and the bottleneck's quantiles); integer state is copied.  The decay is
    min(decay, (1 + n) / (10 + n)) at update n, so an average that starts from
    fresh weights is not dominated by them."""

    def __init__(self, model, decay):
        import copy
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.pairs = list(zip(self.model.state_dict().values(), model.state_dict().values()))

    @torch.no_grad()
    def update(self, n):
        d = min(self.decay, (1.0 + n) / (10.0 + n))
        for e, p in self.pairs:
            if e.is_floating_point():
                e.mul_(d).add_(p, alpha=1.0 - d)
            else:
                e.copy_(p)


def build(arch, split, width=96, n_blocks=2, mid_act=False, es_decoder="igdn", enc_refine=0):
    split = SPLIT_ALIASES.get(split, split)
    ch, hw = SPLITS[split]
    if arch == "svbi":
        down = {28: 0, 14: 1}[hw]
        return Compressor(SVBIEncoder(mid_act=mid_act, refine=enc_refine),
                          ResDecoder(48, ch, width=width, n_blocks=n_blocks, downsample=down))
    if enc_refine:
        raise ValueError("encoder refinement blocks are an option of the svbi encoder")
    if arch == "es":
        down = {28: 0, 14: 1}[hw]
        if es_decoder == "res":
            # The SVBI decoder family (width, blocks) behind a stride-2 stage
            # for the 55x55 latent: compares the encoders on equal decoders.
            return Compressor(ESEncoder(), ResDecoder(24, ch, width=width, n_blocks=n_blocks,
                                                      downsample=down + 1))
        return Compressor(ESEncoder(), ESDecoder(ch, downsample=down))
    raise ValueError("unknown arch %r" % arch)
