"""A tiny ONNX interpreter on PyTorch ops, for checking the graphs these tools
write (there is no ONNX runtime in the Debian archive).  Covers the ops the
tools emit: Conv, Clip, Relu, LeakyRelu, Add, Mul, GlobalAveragePool, Flatten,
Identity, ai.splitwire GDN and the ai.splitwire Quantize/Dequantize pair (Quantize returns the
int32 symbols rint(y - median); Dequantize adds the median back)."""

import numpy as np
import onnx
import torch
import torch.nn.functional as Fn
from onnx import numpy_helper


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def run(model, feeds):
    """feeds: {input name: numpy array}.  Returns {output name: numpy array}."""
    if isinstance(model, str):
        model = onnx.load(model)
    g = model.graph
    env = {}
    for t in g.initializer:
        a = numpy_helper.to_array(t)
        if a.dtype == np.float16:
            a = a.astype(np.float32)
        env[t.name] = torch.from_numpy(np.array(a))
    for k, v in feeds.items():
        env[k] = torch.from_numpy(np.asarray(v))
    with torch.no_grad():
        for n in g.node:
            x = [env[i] if i else None for i in n.input]
            a = _attrs(n)
            op = (n.domain or "", n.op_type)
            if op == ("", "Conv"):
                p = a.get("pads", [0, 0, 0, 0])
                xi = x[0]
                if p[0] != p[2] or p[1] != p[3]:
                    xi = Fn.pad(xi, (p[1], p[3], p[0], p[2]))
                    pad = 0
                else:
                    pad = (p[0], p[1])
                y = Fn.conv2d(xi, x[1], x[2] if len(x) > 2 else None, tuple(a.get("strides", [1, 1])),
                              pad, tuple(a.get("dilations", [1, 1])), a.get("group", 1))
            elif op == ("", "Clip"):
                lo = x[1].item() if len(x) > 1 and x[1] is not None else -np.inf
                hi = x[2].item() if len(x) > 2 and x[2] is not None else np.inf
                y = torch.clamp(x[0], lo, hi)
            elif op == ("", "Relu"):
                y = torch.relu(x[0])
            elif op == ("", "LeakyRelu"):
                y = Fn.leaky_relu(x[0], a.get("alpha", 0.01))
            elif op == ("", "Add"):
                y = x[0] + x[1]
            elif op == ("", "Mul"):
                y = x[0] * x[1]
            elif op == ("", "GlobalAveragePool"):
                y = x[0].mean(dim=(2, 3), keepdim=True)
            elif op == ("", "Flatten"):
                y = torch.flatten(x[0], a.get("axis", 1))
            elif op == ("", "Identity"):
                y = x[0]
            elif op == ("ai.splitwire", "GDN"):
                c = x[0].shape[1]
                norm = torch.sqrt(Fn.conv2d(x[0] * x[0], x[2].view(c, c, 1, 1), x[1]))
                y = x[0] * norm if a.get("inverse", 0) else x[0] / norm
            elif op == ("ai.splitwire", "Quantize"):
                med = x[1].reshape(1, -1, 1, 1)
                y = torch.round(x[0] - med).to(torch.int32)
            elif op == ("ai.splitwire", "Dequantize"):
                med = x[1].reshape(1, -1, 1, 1)
                y = x[0].to(torch.float32) + med
            else:
                raise NotImplementedError("onnx_eval: %s::%s" % op)
            env[n.output[0]] = y
    return {o.name: env[o.name].numpy() for o in g.output}
