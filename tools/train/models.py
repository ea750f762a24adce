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

Mobile family (`arch="mb"`, compute-balanced): both sides are MobileNetV2
inverted-residual blocks (1x1 expand + ReLU6, depthwise 3x3 + ReLU6, linear
1x1 project, skip when the shape is kept), every convolution padded as
TensorFlow's SAME at 224 x 224 (a stride-2 3x3 pads 0 before and 1 after), so
the backbone's own weights fit them.  Encoder = the backbone's stem and
blocks 0-3 with block 3's projection widened to the latent's channels
(48 x 28 x 28; 93.1 MMAC, 31% of the backbone's 300.8 MMAC).  Decoder = a 1x1
latent -> 32 projection and inverted-residual blocks at 32 x 28 x 28, the
last two shaped as the backbone's blocks 4 and 5 (89.1 MMAC with expansions
12, 12, 12, 6, 6; the backbone up to its block 5 costs 113.3 MMAC).
`init_from_backbone` starts a fresh model as the backbone itself: the
latent's first 32 channels are block 3's output, the decoder's projection
passes them through, its first blocks add nothing and its last two are
blocks 4 and 5, so before training the only error is the latent's rounding.

Second backbone (`backbone="mnv1"`, MobileNetV1 0.75 at 224 x 224): the same
frozen `mb` encoder and entropy model feed a decoder of their own that
restores MobileNetV1's stride-8 feature (`conv5`, 192 x 28 x 28, ReLU6
output): a 1x1 latent -> 96 projection, inverted residuals at 96 x 28 x 28
(expansion 2 each by default), then three layers shaped as MobileNetV1's own
Conv2d_4_pointwise, Conv2d_5_depthwise and Conv2d_5_pointwise (ReLU6 each),
started from its weights (`init_v1_tail`), so the output has the feature's
range from the first step.  With two blocks 108.8 MMAC against the 118.1 of
MobileNetV1 up to conv5 at 224 x 224.
"""

import torch
import torch.nn as nn
import torch.nn.functional as Fn

from tools.train.entropy import EntropyBottleneck, lower_bound


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


def same_pads(k, stride, size=224):
    """TensorFlow SAME padding (top, left, bottom, right) of a k x k conv on
    a size x size input (static: the bundles' input is 224 x 224)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return (total // 2, total // 2, total - total // 2, total - total // 2)


class MBConv(nn.Module):
    """Conv2d with static (possibly asymmetric) padding, then ReLU6 or
    nothing; `size` is the input's side at 224 x 224."""

    def __init__(self, cin, cout, k=1, stride=1, groups=1, act=True, size=224):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, groups=groups, padding=0)
        self.pads = same_pads(k, stride, size)
        self.act = act

    def forward(self, x):
        t, l, b, r = self.pads
        if t or l or b or r:
            x = Fn.pad(x, (l, r, t, b))
        x = self.conv(x)
        return torch.clamp(x, 0.0, 6.0) if self.act else x


class InvRes(nn.Module):
    """MobileNetV2's inverted residual: [1x1 expand + ReLU6], depthwise 3x3
    (stride) + ReLU6, linear 1x1 project, + input when stride 1 and cin =
    cout."""

    def __init__(self, cin, cout, expand, stride=1, size=224):
        super().__init__()
        hid = cin * expand
        self.expand = MBConv(cin, hid, 1, size=size) if expand != 1 else None
        self.dw = MBConv(hid, hid, 3, stride=stride, groups=hid, size=size)
        self.project = MBConv(hid, cout, 1, act=False, size=-(-size // stride))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        h = self.expand(x) if self.expand is not None else x
        h = self.project(self.dw(h))
        return x + h if self.residual else h


class MobileEncoder(nn.Module):
    """The backbone's stem and blocks 0-3 (224 -> 28), block 3 projecting to
    the latent's channels."""

    def __init__(self, latent=48):
        super().__init__()
        self.stem = MBConv(3, 32, 3, stride=2, size=224)
        self.blocks = nn.Sequential(InvRes(32, 16, 1, size=112), InvRes(16, 24, 6, stride=2, size=112),
                                    InvRes(24, 24, 6, size=56), InvRes(24, latent, 6, stride=2, size=56))
        self.latent_channels = latent

    def forward(self, x):
        return self.blocks(self.stem(x))


class MobileDecoder(nn.Module):
    """1x1 latent -> `width`, then inverted residuals at `width` (one per
    entry of `expansions`), all at the split's 28 x 28; the last block's
    linear projection is the output."""

    def __init__(self, cin, cout=32, expansions=(12, 12, 12, 6, 6), size=28):
        super().__init__()
        self.inp = MBConv(cin, cout, 1, act=False, size=size)
        self.blocks = nn.Sequential(*[InvRes(cout, cout, e, size=size) for e in expansions])

    def forward(self, y):
        return self.blocks(self.inp(y))


class MobileV1Decoder(nn.Module):
    """Latent -> MobileNetV1's conv5 feature (see the module's doc)."""

    def __init__(self, cin, width=96, expansions=(2, 2), cout=192, size=28):
        super().__init__()
        self.inp = MBConv(cin, width, 1, act=False, size=size)
        self.blocks = nn.Sequential(*[InvRes(width, width, e, size=size) for e in expansions])
        self.out = nn.Sequential(MBConv(width, cout, 1, size=size),
                                 MBConv(cout, cout, 3, groups=cout, size=size),
                                 MBConv(cout, cout, 1, size=size))

    def forward(self, y):
        return self.out(self.blocks(self.inp(y)))


@torch.no_grad()
def init_v1_tail(decoder, teacher):
    """The decoder's last three layers = MobileNetV1's Conv2d_4_pointwise,
    Conv2d_5_depthwise and Conv2d_5_pointwise (the teacher's units 4 and 5:
    (depthwise, pointwise) pairs)."""
    srcs = [teacher.blocks[4][1], teacher.blocks[5][0], teacher.blocks[5][1]]
    for dst, src in zip(decoder.out, srcs):
        dst.conv.weight.copy_(src.conv.weight)
        dst.conv.bias.copy_(src.conv.bias)
    return "decoder's last three layers = MobileNetV1 Conv2d_4_pointwise, Conv2d_5_depthwise, Conv2d_5_pointwise"


@torch.no_grad()
def init_from_backbone(model, teacher, gain=1.0):
    """Start an `mb` model as the backbone (see the module's doc): encoder =
    stem and blocks 0-3, latent channels beyond the backbone's 32 small and
    random; decoder projection = identity on those 32 (zero on the rest),
    blocks before the last two adding nothing (project at zero), the last two
    = the backbone's blocks 4 and 5.  `gain` scales the latent (and the
    decoder's projection by its inverse), i.e. rounds block 3's output on a
    grid of 1 / gain: block 3's output has std 6.4, and on 20 val images a
    gain of 0.5 keeps every top-1 at about 3/4 of the bits of gain 1
    (empirical entropies 1.55 and 2.04 bpp).  Returns a one-line
    description."""
    def put(dst, src):
        dst.conv.weight.copy_(src.conv.weight)
        dst.conv.bias.copy_(src.conv.bias)

    def put_block(dst, src):
        if dst.expand is not None:
            put(dst.expand, src.expand)
        put(dst.dw, src.dw)
        put(dst.project, src.project)

    enc, dec = model.encoder, model.decoder
    put(enc.stem, teacher.stem)
    for k in range(3):
        put_block(enc.blocks[k], teacher.blocks[k])
    last, src = enc.blocks[3], teacher.blocks[3]
    put(last.expand, src.expand)
    put(last.dw, src.dw)
    n = src.project.conv.weight.shape[0]
    w = last.project.conv.weight
    w[n:] *= 0.1
    w[:n] = src.project.conv.weight * gain
    last.project.conv.bias[:n] = src.project.conv.bias * gain
    last.project.conv.bias[n:] = 0.0
    dec.inp.conv.weight.zero_()
    dec.inp.conv.bias.zero_()
    dec.inp.conv.weight[:n, :n, 0, 0] = torch.eye(n) / gain
    for blk in dec.blocks[:-2]:
        blk.project.conv.weight.zero_()
        blk.project.conv.bias.zero_()
    put_block(dec.blocks[-2], teacher.blocks[4])
    put_block(dec.blocks[-1], teacher.blocks[5])
    return ("encoder = backbone stem + blocks 0-3 (latent gain %g, %d extra latent channels small), "
            "decoder = inverse-gain projection, %d pass-through blocks, backbone blocks 4-5"
            % (gain, enc.latent_channels - n, len(dec.blocks) - 2))


def conv_macs(module, x):
    """Multiply-accumulates of every Conv2d in `module` for input x (one
    image), by forward hooks."""
    tot = [0]

    def hook(m, i, o):
        tot[0] += o[0].numel() * m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]

    hs = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        module(x)
    for h in hs:
        h.remove()
    return tot[0]


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

    def __init__(self, model, decay, copy_prefixes=()):
        import copy
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        # Tensors under `copy_prefixes` (a frozen encoder and entropy model)
        # are copied, not averaged: d e + (1 - d) e is not e in floating
        # point, and a shared encoder must stay bit-identical to its owner's.
        own = model.state_dict()
        self.pairs = [(e, own[k], not k.startswith(tuple(copy_prefixes)) if copy_prefixes else True)
                      for k, e in self.model.state_dict().items()]

    @torch.no_grad()
    def update(self, n):
        d = min(self.decay, (1.0 + n) / (10.0 + n))
        for e, p, avg in self.pairs:
            if avg and e.is_floating_point():
                e.mul_(d).add_(p, alpha=1.0 - d)
            else:
                e.copy_(p)


MB_EXPANSIONS = (12, 12, 12, 6, 6)
V1_EXPANSIONS = (2, 2)
# backbone id -> name in --backbone; split shapes of MobileNetV1 at 224 x 224
BACKBONES = {"mnv2": "mobilenet_v2_1.0_224", "mnv1": "mobilenet_v1_0.75_192"}
V1_SPLITS = {"conv5": (192, 28)}
V1_SPLIT_ALIASES = {"s28": "conv5"}


def build(arch, split, width=96, n_blocks=2, mid_act=False, es_decoder="igdn", enc_refine=0, latent=48,
          expansions=MB_EXPANSIONS, backbone="mnv2"):
    if backbone == "mnv1":
        split = V1_SPLIT_ALIASES.get(split, split)
        if arch != "mb" or split not in V1_SPLITS:
            raise ValueError("backbone mnv1: arch mb and split conv5 only")
        ch, hw = V1_SPLITS[split]
        return Compressor(MobileEncoder(latent), MobileV1Decoder(latent, width, tuple(expansions), ch, hw))
    if backbone != "mnv2":
        raise ValueError("unknown backbone %r (mnv2, mnv1)" % backbone)
    split = SPLIT_ALIASES.get(split, split)
    ch, hw = SPLITS[split]
    if arch == "mb":
        if split != "block5" or enc_refine:
            raise ValueError("arch mb: split block5 only, no encoder refinement blocks")
        return Compressor(MobileEncoder(latent), MobileDecoder(latent, ch, tuple(expansions), hw))
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
