"""MobileNetV1 0.75 (TFLite uint8 model, dequantised) as a PyTorch module.

The same reader and dequantisation as the ONNX import, and the same calls as
mobilenet_v2.MobileNetV2, so the training tools take either as the teacher:

    net = MobileNetV1.from_tflite()            # frozen, eval mode
    f = net.head(x, "conv5")                   # N x 192 x 28 x 28 at 224 x 224
    logits = net.tail(f, "conv5")              # N x 1001, 0 = background

Units ("blocks"): 0 = the stem Conv2d_0, k = 1..13 = the depthwise-separable
pair Conv2d_k_depthwise + Conv2d_k_pointwise (ReLU6 after each).  Split
points are unit outputs, named "conv<k>"; "s28" = conv5, the end of the
stride-8 stage (192 channels, 28 x 28 at 224 x 224 input, 24 x 24 at the
model's native 192).  The network is convolutional up to a global mean pool,
so it takes any input size; TensorFlow's SAME padding is computed from the
actual size.

Input convention as MobileNetV2's: x = (q - 128) / 128 for uint8 RGB q.
"""

import torch
import torch.nn as nn

from tools.models import tflite_import
from tools.models.mobilenet_v2 import _conv_from_layer, from_unit  # noqa: F401

TFLITE_NAME = "mobilenet_v1_0.75_192_quant.tflite"
SPLIT_ALIASES = {"s28": "conv5", "s14": "conv11"}


def default_tflite():
    import os
    return os.path.join(tflite_import.shared_dir(), "models", "pretrained", TFLITE_NAME)


class MobileNetV1(nn.Module):
    def __init__(self, blocks, classifier):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.classifier = classifier

    @classmethod
    def from_tflite(cls, path=None, frozen=True):
        _, layers, _ = tflite_import.read_layers(path or default_tflite())
        convs = [L for L in layers if L["kind"] == "conv"]
        # stem, 13 (depthwise, pointwise) pairs, the 1x1 classifier
        if len(convs) != 28 or convs[0]["group"] != 1 or any(
                convs[i]["group"] == 1 for i in range(1, 27, 2)):
            raise ValueError("not a MobileNetV1 layer structure (%d convs)" % len(convs))
        blocks = [_conv_from_layer(convs[0])]
        for k in range(13):
            blocks.append(nn.Sequential(_conv_from_layer(convs[1 + 2 * k]), _conv_from_layer(convs[2 + 2 * k])))
        net = cls(blocks, _conv_from_layer(convs[27]))
        if frozen:
            net.eval()
            net.requires_grad_(False)
        return net

    @staticmethod
    def split_index(split):
        if isinstance(split, int):
            return split
        split = SPLIT_ALIASES.get(split, split)
        if not split.startswith("conv"):
            raise ValueError("unknown MobileNetV1 split %r (conv0..conv13)" % split)
        return int(split[4:])

    def head(self, x, split):
        """Input -> output of unit `split`."""
        for b in self.blocks[:self.split_index(split) + 1]:
            x = b(x)
        return x

    def tail(self, f, split):
        """Output of unit `split` -> logits (N x 1001)."""
        return self.tail_taps(f, split, ())[0]

    def tail_taps(self, f, split, taps):
        """tail() that also returns activations on the way; a tap is a unit
        index after the split or "last" (the last unit's output, before the
        pool)."""
        want = set(taps)
        got = []
        for i in range(self.split_index(split) + 1, len(self.blocks)):
            f = self.blocks[i](f)
            if i in want:
                got.append(f)
        if "last" in want:
            got.append(f)
        f = f.mean(dim=(2, 3), keepdim=True)
        return torch.flatten(self.classifier(f), 1), got

    def forward(self, x):
        return self.tail(self.head(x, 0), 0)

    def split_shape(self, split, hw=224):
        with torch.no_grad():
            return tuple(self.head(torch.zeros(1, 3, hw, hw), split).shape[1:])
