"""MobileNetV2 1.0 (TFLite uint8 model, dequantised) as a PyTorch module.

The weights come from the same reader and dequantisation as the ONNX import
(tflite_import.read_layers), so the two graphs hold identical numbers.  The
module can stop at a split point and run the rest from there:

    net = MobileNetV2.from_tflite()            # frozen, eval mode
    f = net.head(x, "block5")                  # N x 32 x 28 x 28
    logits = net.tail(f, "block5")             # N x 1001, 0 = background

Split points are the inverted-residual block outputs "block0".."block16"
(TensorFlow scopes expanded_conv, expanded_conv_1, ...); aliases: "s28" =
block5 (end of the 28x28 stage, 32 channels), "s14" = block12 (end of the
14x14 stage, 96 channels).

Input convention: x = (q - 128) / 128 for uint8 RGB pixels q, NCHW;
`from_unit(x01)` converts a [0, 1] image tensor.
"""

import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as Fn

from tools.models import tflite_fb as F  # noqa: E402
from tools.models import tflite_import  # noqa: E402

SPLIT_ALIASES = {"s28": "block5", "s14": "block12"}
INPUT_ZERO_POINT = 128
INPUT_SCALE = 1.0 / 128.0


def from_unit(x01):
    """[0, 1] RGB -> the model's input, (255 x - 128) / 128."""
    return (x01 * 255.0 - INPUT_ZERO_POINT) * INPUT_SCALE


def _same_pad(n, k, s, d):
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


class TFConv(nn.Module):
    """Conv2d with TensorFlow SAME/VALID padding and a fused activation."""

    def __init__(self, cin, cout, k, stride, group, act, padding="same", dilation=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, groups=group, bias=True,
                              padding=0, dilation=dilation)
        self.padding = padding
        self.act = act

    def forward(self, x):
        if self.padding == "same":
            k, s, d = self.conv.kernel_size, self.conv.stride, self.conv.dilation
            t, b = _same_pad(x.shape[2], k[0], s[0], d[0])
            l, r = _same_pad(x.shape[3], k[1], s[1], d[1])
            if t == b and l == r:
                x = Fn.conv2d(x, self.conv.weight, self.conv.bias, s, (t, l), d, self.conv.groups)
            else:
                x = Fn.conv2d(Fn.pad(x, (l, r, t, b)), self.conv.weight, self.conv.bias, s, 0, d,
                              self.conv.groups)
        else:
            x = self.conv(x)
        if self.act == F.ACT_RELU6:
            x = torch.clamp(x, 0.0, 6.0)
        elif self.act == F.ACT_RELU:
            x = torch.relu(x)
        return x


class InvertedResidual(nn.Module):
    def __init__(self, expand, dw, project, residual):
        super().__init__()
        self.expand = expand  # may be None (block 0, t = 1)
        self.dw = dw
        self.project = project
        self.residual = residual

    def forward(self, x):
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.dw(y))
        return x + y if self.residual else y


def _conv_from_layer(L):
    w = L["weight"]
    cout, cin_g, kh, kw = w.shape
    m = TFConv(cin_g * L["group"], cout, (kh, kw), tuple(L["stride"]), L["group"], L["act"],
               L["padding"], tuple(L["dilation"]))
    with torch.no_grad():
        m.conv.weight.copy_(torch.from_numpy(w))
        m.conv.bias.copy_(torch.from_numpy(L["bias"]))
    return m


class MobileNetV2(nn.Module):
    def __init__(self, stem, blocks, last_conv, classifier):
        super().__init__()
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.last_conv = last_conv
        self.classifier = classifier

    @classmethod
    def from_tflite(cls, path=None, frozen=True):
        path = path or tflite_import.default_tflite()
        m, layers, _ = tflite_import.read_layers(path)
        by_scope = {}
        order = []
        for L in layers:
            scope = L["name"].split("/")[0]
            if scope not in by_scope:
                by_scope[scope] = []
                order.append(scope)
            by_scope[scope].append(L)
        stem = _conv_from_layer(by_scope["Conv"][0])
        blocks = []
        k = 0
        while True:
            scope = "expanded_conv" if k == 0 else "expanded_conv_%d" % k
            if scope not in by_scope:
                break
            parts = {L["name"].split("/")[1]: L for L in by_scope[scope]}
            expand = _conv_from_layer(parts["expand"]) if "expand" in parts else None
            blocks.append(InvertedResidual(expand, _conv_from_layer(parts["depthwise"]),
                                           _conv_from_layer(parts["project"]), "add" in parts))
            k += 1
        last_conv = _conv_from_layer(by_scope["Conv_1"][0])
        logits = [L for L in by_scope["Logits"] if L["kind"] == "conv"]
        classifier = _conv_from_layer(logits[0])
        n_conv = sum(1 for L in layers if L["kind"] == "conv")
        n_used = 1 + sum(2 + (b.expand is not None) for b in blocks) + 2
        if n_conv != n_used:
            raise ValueError("unexpected layer structure: %d convs, %d placed" % (n_conv, n_used))
        net = cls(stem, blocks, last_conv, classifier)
        if frozen:
            net.eval()
            net.requires_grad_(False)
        return net

    @staticmethod
    def split_index(split):
        if isinstance(split, int):
            return split
        split = SPLIT_ALIASES.get(split, split)
        if not split.startswith("block"):
            raise ValueError("unknown split %r" % split)
        return int(split[5:])

    def head(self, x, split):
        """Input -> output of block `split`."""
        k = self.split_index(split)
        x = self.stem(x)
        for b in self.blocks[:k + 1]:
            x = b(x)
        return x

    def tail(self, f, split):
        """Output of block `split` -> logits (N x 1001)."""
        return self.tail_taps(f, split, ())[0]

    def tail_taps(self, f, split, taps):
        """tail() that also returns activations on the way: (logits, [the
        activations after each of `taps` in order]); a tap is a block index
        after the split or "last", the 1280-channel conv before the pool."""
        k = self.split_index(split)
        want = set(taps)
        got = []
        for i in range(k + 1, len(self.blocks)):
            f = self.blocks[i](f)
            if i in want:
                got.append(f)
        f = self.last_conv(f)
        if "last" in want:
            got.append(f)
        f = f.mean(dim=(2, 3), keepdim=True)
        return torch.flatten(self.classifier(f), 1), got

    def forward(self, x):
        return self.tail(self.head(x, 0), 0)

    def split_shape(self, split, hw=224):
        with torch.no_grad():
            return tuple(self.head(torch.zeros(1, 3, hw, hw), split).shape[1:])
