#!/usr/bin/python3
"""Writes the ONNX test vectors the runtime is checked against.

Default mode: one small case per op and per op variant, plus composite models,
into tests/vectors/ops/:
    <case>.onnx, <case>_in0.npy [, <case>_in1.npy ...], <case>_out0.npy

Cases are PyTorch modules exported with torch.onnx.export (opset 13) wherever
the exporter emits the plain op; where it cannot (asymmetric pads, HardSwish
at opset 13, Pad, the ai.splitwire ops) the node is built with onnx.helper
from torch-made weights and the expected output is computed with torch
functional code. Expected outputs are evaluated in float64 from the same
float32 weights and inputs, then rounded to float32, so they are the most
accurate side of every comparison.

--sample mode: writes models/sample/ (the SVBI reference encoder at 224x224
with fixed-seed untrained weights, an input and a README).

Run with /usr/bin/python3 (PyTorch 1.13, numpy, onnx). Deterministic: fixed
seeds, single-threaded-friendly sizes.
"""

import argparse
import copy
import io
import os
import sys
import warnings
import zlib

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPSET = 13
SPW_DOMAIN = "ai.splitwire"

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


# ---------------------------------------------------------------- helpers

def seed_for(name):
    """A fixed seed per case, so adding a case never changes the others."""
    torch.manual_seed(zlib.crc32(name.encode()) & 0x7FFFFFFF)


def randn(*shape, scale=1.0):
    return torch.randn(shape) * scale


def rand(*shape, lo=0.0, hi=1.0):
    return torch.rand(shape) * (hi - lo) + lo


def np32(t):
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu().numpy()
    return np.ascontiguousarray(t)


def to_double(m):
    return copy.deepcopy(m).double().eval()


class Writer:
    """Collects cases into one directory."""

    def __init__(self, outdir):
        self.outdir = outdir
        self.names = []
        os.makedirs(outdir, exist_ok=True)
        # Start clean so a renamed or removed case leaves no stale files.
        for f in os.listdir(outdir):
            if f.endswith((".onnx", ".npy")):
                os.remove(os.path.join(outdir, f))

    def save(self, name, model, inputs, outputs):
        assert name not in self.names, name
        self.names.append(name)
        data = model.SerializeToString()
        with open(os.path.join(self.outdir, name + ".onnx"), "wb") as f:
            f.write(data)
        for i, a in enumerate(inputs):
            np.save(os.path.join(self.outdir, "%s_in%d.npy" % (name, i)), np32(a))
        for i, a in enumerate(outputs):
            a = np32(a)
            if a.dtype == np.float64:
                a = a.astype(np.float32)
            np.save(os.path.join(self.outdir, "%s_out%d.npy" % (name, i)), a)


def strip_const_identity(model):
    """Removes Identity nodes whose input is an initializer (the exporter adds
    them in PRESERVE mode), so BatchNormalization reads its constants directly
    and the planner's BN folding sees them."""
    g = model.graph
    inits = {t.name for t in g.initializer}
    alias = {}
    keep = []
    for n in g.node:
        if n.op_type == "Identity" and n.input[0] in inits:
            alias[n.output[0]] = n.input[0]
        else:
            keep.append(n)
    for n in keep:
        for i, name in enumerate(n.input):
            if name in alias:
                n.input[i] = alias[name]
    del g.node[:]
    g.node.extend(keep)
    return model


def export(w, name, module, inputs, dynamic_batch=False, preserve=False):
    """Exports module (eval mode) and saves it with its float64-evaluated output."""
    module = module.eval()
    in_names = ["in%d" % i for i in range(len(inputs))]
    dyn = None
    if dynamic_batch:
        dyn = {n: {0: "N"} for n in in_names}
        dyn["out0"] = {0: "N"}
    f = io.BytesIO()
    kw = {}
    if preserve:
        kw["training"] = torch.onnx.TrainingMode.PRESERVE
    with torch.no_grad(), warnings.catch_warnings():
        # PRESERVE warns about constant folding in training mode; the module is
        # in eval mode, where folding is what we want.
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(module, tuple(inputs), f, opset_version=OPSET,
                          input_names=in_names, output_names=["out0"],
                          dynamic_axes=dyn, do_constant_folding=True, **kw)
    model = onnx.load_from_string(f.getvalue())
    if preserve:
        strip_const_identity(model)
    onnx.checker.check_model(model)
    with torch.no_grad():
        out = to_double(module)(*[x.double() for x in inputs])
    w.save(name, model, inputs, [out])
    return model


class Graph:
    """A hand-built ONNX graph: for nodes torch cannot export as we need them."""

    def __init__(self, opset=OPSET):
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self.opset = opset
        self.count = 0
        self.custom = False

    def _name(self, prefix):
        self.count += 1
        return "%s_%d" % (prefix, self.count)

    def input(self, arr, dynamic_batch=False):
        name = "in%d" % len(self.inputs)
        a = np32(arr)
        shape = list(a.shape)
        if dynamic_batch:
            shape[0] = "N"
        self.inputs.append(helper.make_tensor_value_info(
            name, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[a.dtype], shape))
        return name

    def const(self, arr, prefix="w"):
        name = self._name(prefix)
        self.inits.append(numpy_helper.from_array(np32(arr), name))
        return name

    def node(self, op, inputs, domain="", **attrs):
        out = self._name(op.lower())
        if domain:
            self.custom = True
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, domain=domain, **attrs))
        return out

    def output(self, name, arr, dynamic_batch=False):
        """Renames the value `name` to out0 (the last node writes it)."""
        a = np32(arr)
        shape = list(a.shape)
        if dynamic_batch:
            shape[0] = "N"
        for n in self.nodes:
            for i, v in enumerate(n.output):
                if v == name:
                    n.output[i] = "out0"
            for i, v in enumerate(n.input):
                if v == name:
                    n.input[i] = "out0"
        dt = TensorProto.INT32 if a.dtype == np.int32 else TensorProto.FLOAT
        self.outputs.append(helper.make_tensor_value_info("out0", dt, shape))

    def model(self):
        g = helper.make_graph(self.nodes, "case", self.inputs, self.outputs, self.inits)
        opsets = [helper.make_opsetid("", self.opset)]
        if self.custom:
            opsets.append(helper.make_opsetid(SPW_DOMAIN, 1))
        m = helper.make_model(g, opset_imports=opsets, producer_name="gen_vectors")
        m.ir_version = 8
        if not self.custom:
            onnx.checker.check_model(m)
        return m


def helper_case(w, name, build, inputs, dynamic_batch=False, opset=OPSET):
    """build(g, input_names) -> (last value name, expected tensor)."""
    g = Graph(opset)
    names = [g.input(x, dynamic_batch) for x in inputs]
    last, expected = build(g, names)
    g.output(last, expected, dynamic_batch)
    w.save(name, g.model(), inputs, [expected])


# -------------------------------------------------------------- references

def gdn_ref(x, beta, gamma, inverse):
    """y_c = x_c / sqrt(beta_c + sum_j gamma[c][j] x_j^2); inverse multiplies."""
    c = x.shape[1]
    norm = torch.sqrt(F.conv2d(x * x, gamma.reshape(c, c, 1, 1), beta))
    return x * norm if inverse else x / norm


def gdn_params(c, gen_scale=0.1):
    beta = rand(c, lo=0.5, hi=1.5)
    gamma = rand(c, c, lo=0.0, hi=gen_scale) + torch.eye(c) * 0.1
    return beta, gamma


def conv_out(n, k, s, pb, pe, d=1, ceil=False):
    span = n + pb + pe - ((k - 1) * d + 1)
    return (-(-span // s) if ceil else span // s) + 1


def check_pool_shape(n, k, s, p, d, ceil):
    """Keeps the cases where the ONNX ceil_mode formula and PyTorch agree (PyTorch
    drops a last window that would start inside the end padding)."""
    o = conv_out(n, k, s, p, p, d, ceil)
    if ceil and (o - 1) * s >= n + p:
        raise AssertionError("pool shape where ONNX and PyTorch differ")


# -------------------------------------------------------------- op cases

class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


class WithConst(nn.Module):
    """fn(x, c) with c a constant baked into the graph."""

    def __init__(self, fn, c):
        super().__init__()
        self.fn = fn
        self.register_buffer("c", c)

    def forward(self, x):
        return self.fn(x, self.c)


def conv_cases(w):
    seed_for("conv")
    export(w, "conv_basic", nn.Conv2d(3, 5, 3, padding=1), [randn(1, 3, 7, 11)])
    seed_for("conv_stride_dil")
    export(w, "conv_stride_dil", nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2),
           [randn(2, 4, 13, 11)])
    seed_for("conv_groups")
    export(w, "conv_groups",
           nn.Conv2d(6, 9, (3, 5), stride=(2, 1), padding=(1, 2), groups=3, bias=False),
           [randn(1, 6, 7, 13)])
    seed_for("conv_depthwise")
    export(w, "conv_depthwise", nn.Conv2d(5, 5, 3, stride=2, padding=1, groups=5),
           [randn(1, 5, 11, 13)])
    seed_for("conv_1x1_s2")
    export(w, "conv_1x1_s2", nn.Conv2d(7, 5, 1, stride=2), [randn(1, 7, 13, 11)])

    # Asymmetric pads: ONNX order top, left, bottom, right; torch pads first.
    for name, cin, cout, k, stride, dil, group, pads, shape in [
        ("conv_asym_pads", 3, 4, (3, 3), (2, 2), (1, 1), 1, [0, 1, 2, 1], (1, 3, 13, 11)),
        ("conv_asym_pads_dw", 5, 5, (3, 5), (1, 2), (2, 1), 5, [2, 0, 1, 3], (1, 5, 7, 11)),
    ]:
        seed_for(name)
        x = randn(*shape)
        wt = randn(cout, cin // group, *k, scale=0.3)
        b = randn(cout, scale=0.1)

        def build(g, ins, x=x, wt=wt, b=b, k=k, stride=stride, dil=dil, group=group,
                  pads=pads):
            y = g.node("Conv", [ins[0], g.const(wt), g.const(b)], kernel_shape=list(k),
                       strides=list(stride), dilations=list(dil), group=group, pads=pads)
            xp = F.pad(x.double(), (pads[1], pads[3], pads[0], pads[2]))
            ref = F.conv2d(xp, wt.double(), b.double(), stride=stride, dilation=dil,
                           groups=group)
            return y, ref
        helper_case(w, name, build, [x])


def conv_transpose_cases(w):
    seed_for("convt_basic")
    export(w, "convt_basic", nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1),
           [randn(1, 4, 5, 7)])
    seed_for("convt_groups_dil")
    export(w, "convt_groups_dil",
           nn.ConvTranspose2d(6, 4, (3, 2), stride=(2, 3), padding=(1, 0),
                              output_padding=(1, 2), groups=2, dilation=(2, 1)),
           [randn(1, 6, 5, 7)])
    seed_for("convt_depthwise")
    export(w, "convt_depthwise", nn.ConvTranspose2d(5, 5, 3, stride=2, groups=5, bias=False),
           [randn(2, 5, 7, 5)])

    # Asymmetric pads with output_padding: ONNX out[o] = full[o + pad_begin].
    name = "convt_asym_pads"
    seed_for(name)
    x = randn(1, 4, 5, 7)
    wt = randn(4, 3, 3, 3, scale=0.3)
    b = randn(3, scale=0.1)
    pads, stride, opad = [1, 0, 0, 2], (2, 2), (1, 0)

    def build(g, ins):
        y = g.node("ConvTranspose", [ins[0], g.const(wt), g.const(b)], kernel_shape=[3, 3],
                   strides=list(stride), pads=pads, output_padding=list(opad))
        full = F.conv_transpose2d(x.double(), wt.double(), b.double(), stride=stride,
                                  output_padding=opad)
        hf, wf = full.shape[2], full.shape[3]
        ref = full[:, :, pads[0]:hf - pads[2], pads[1]:wf - pads[3]]
        return y, ref
    helper_case(w, name, build, [x])


def activation_cases(w):
    seed_for("relu")
    export(w, "relu", nn.ReLU(), [randn(2, 3, 5, 7)])
    seed_for("clip")
    export(w, "clip", Lambda(lambda x: torch.clamp(x, -0.5, 2.0)), [randn(1, 3, 7, 5, scale=2)])
    seed_for("relu6")
    export(w, "relu6", nn.ReLU6(), [randn(1, 5, 7, scale=5)])
    seed_for("leaky_relu")
    export(w, "leaky_relu", nn.LeakyReLU(0.01), [randn(1, 3, 5, 7)])
    seed_for("leaky_relu_02")
    export(w, "leaky_relu_02", nn.LeakyReLU(0.2), [randn(11, 13)])
    seed_for("sigmoid")
    export(w, "sigmoid", nn.Sigmoid(), [randn(1, 3, 5, 7, scale=30)])

    # HardSwish is an opset 14 op; the exporter lowers it to HardSigmoid * x below that.
    name = "hardswish"
    seed_for(name)
    x = randn(1, 3, 7, 5, scale=4)

    def build(g, ins):
        return g.node("HardSwish", [ins[0]]), F.hardswish(x.double())
    helper_case(w, name, build, [x], opset=14)


def binary_cases(w):
    for name, fn, sa, sb in [
        ("add_same", torch.add, (2, 3, 5, 7), (2, 3, 5, 7)),
        ("add_bcast", torch.add, (2, 3, 5, 7), (3, 1, 7)),
        ("add_bcast_both", torch.add, (5, 1, 7), (4, 1)),
        ("mul_bcast", torch.mul, (1, 3, 1, 7), (2, 1, 5, 1)),
        ("mul_rank6", torch.mul, (2, 1, 3, 1, 5, 1), (1, 4, 1, 2, 1, 3)),
        ("mul_bcast_row", torch.mul, (5, 7), (7,)),
    ]:
        seed_for(name)
        export(w, name, Lambda(fn), [randn(*sa), randn(*sb)])
    seed_for("add_const_channel")
    export(w, "add_const_channel", WithConst(torch.add, randn(1, 5, 1, 1)), [randn(2, 5, 7, 3)])
    seed_for("mul_const_scalar")
    export(w, "mul_const_scalar", Lambda(lambda x: x * 2.5), [randn(1, 3, 5, 7)])
    seed_for("add_const_first")
    # Constant on the left, broadcasting up to the input.
    export(w, "add_const_first", WithConst(lambda x, c: c + x, randn(7)), [randn(2, 3, 5, 7)])


def concat_cases(w):
    seed_for("concat")
    export(w, "concat_axis1", Lambda(lambda a, b, c: torch.cat([a, b, c], 1)),
           [randn(1, 2, 5, 7), randn(1, 3, 5, 7), randn(1, 1, 5, 7)])
    export(w, "concat_axis3", Lambda(lambda a, b: torch.cat([a, b], 3)),
           [randn(2, 3, 5, 7), randn(2, 3, 5, 4)])
    export(w, "concat_axis0_neg", Lambda(lambda a, b: torch.cat([a, b], -3)),
           [randn(2, 5, 7), randn(3, 5, 7)])
    export(w, "concat_const", WithConst(lambda x, c: torch.cat([c, x], 1), randn(2, 4, 5)),
           [randn(2, 3, 5)])


def pool_cases(w):
    seed_for("pool")
    export(w, "global_avg_pool", nn.AdaptiveAvgPool2d(1), [randn(2, 5, 7, 11)])

    check_pool_shape(11, 3, 2, 1, 1, False)
    export(w, "avg_pool", nn.AvgPool2d(3, 2, 1, count_include_pad=False),
           [randn(1, 3, 11, 13)])
    check_pool_shape(11, 2, 2, 0, 1, True)
    check_pool_shape(13, 2, 2, 0, 1, True)
    export(w, "avg_pool_ceil", nn.AvgPool2d(2, 2, 0, ceil_mode=True, count_include_pad=False),
           [randn(1, 3, 11, 13)])
    export(w, "max_pool", nn.MaxPool2d(3, 2, 1), [randn(1, 4, 11, 13)])
    check_pool_shape(12, 3, 2, 1, 2, True)
    check_pool_shape(13, 3, 2, 1, 2, True)
    export(w, "max_pool_dil_ceil", nn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True),
           [randn(1, 3, 12, 13)])
    export(w, "max_pool_2x2", nn.MaxPool2d(2), [randn(2, 3, 7, 11)])

    # count_include_pad=1 with ceil_mode: the exporter turns it into Pad + pool,
    # so the attribute path is built by hand. Windows running past the end pad
    # (ceil_mode) count only up to the pad, as in PyTorch.
    name = "avg_pool_cip_ceil"
    seed_for(name)
    x = randn(1, 3, 12, 11)
    check_pool_shape(12, 3, 2, 1, 1, True)
    check_pool_shape(11, 3, 2, 1, 1, True)

    def build_cip(g, ins):
        y = g.node("AveragePool", [ins[0]], kernel_shape=[3, 3], strides=[2, 2],
                   pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1)
        ref = F.avg_pool2d(x.double(), 3, 2, 1, ceil_mode=True, count_include_pad=True)
        return y, ref
    helper_case(w, name, build_cip, [x])

    # Asymmetric pads: pooled sum over a zero-padded input divided by the
    # count of real elements (avg) / max over a -inf padded input.
    name = "avg_pool_asym"
    seed_for(name)
    x = randn(1, 2, 7, 11)
    pads = [0, 1, 2, 0]

    def build_avg(g, ins):
        y = g.node("AveragePool", [ins[0]], kernel_shape=[3, 2], strides=[2, 1], pads=pads)
        tp = (pads[1], pads[3], pads[0], pads[2])
        xs = F.pad(x.double(), tp)
        ones = F.pad(torch.ones_like(x, dtype=torch.float64), tp)
        s = F.avg_pool2d(xs, (3, 2), (2, 1), divisor_override=1)
        n = F.avg_pool2d(ones, (3, 2), (2, 1), divisor_override=1)
        return y, s / n
    helper_case(w, name, build_avg, [x])

    name = "max_pool_asym"
    seed_for(name)
    x = randn(1, 2, 11, 7)
    pads = [2, 0, 1, 1]

    def build_max(g, ins):
        y = g.node("MaxPool", [ins[0]], kernel_shape=[3, 3], strides=[2, 2], pads=pads)
        xp = F.pad(x.double(), (pads[1], pads[3], pads[0], pads[2]), value=-float("inf"))
        return y, F.max_pool2d(xp, 3, 2)
    helper_case(w, name, build_max, [x])


def linear_cases(w):
    seed_for("gemm_linear")
    export(w, "gemm_linear", nn.Linear(13, 5), [randn(7, 13)])

    # Hand-built Gemm variants: alpha, beta, transA/transB and every C shape.
    M, K, N = 7, 11, 5
    for name, ta, tb, cshape, alpha, beta in [
        ("gemm_ta_cm1", 1, 0, (M, 1), 0.5, 2.0),
        ("gemm_tb_c1n", 0, 1, (1, N), 1.5, -1.0),
        ("gemm_tab_cmn", 1, 1, (M, N), 1.0, 0.25),
        ("gemm_c_scalar", 0, 0, (), 2.0, 1.0),
        ("gemm_c_vec", 0, 1, (N,), 1.0, 1.0),
        ("gemm_no_c", 1, 0, None, 0.75, 1.0),
    ]:
        seed_for(name)
        a = randn(K, M) if ta else randn(M, K)
        b = randn(N, K) if tb else randn(K, N)
        c = randn(*cshape) if cshape is not None else None

        def build(g, ins, a=a, b=b, c=c, ta=ta, tb=tb, alpha=alpha, beta=beta):
            args = [ins[0], g.const(b)] + ([g.const(c)] if c is not None else [])
            y = g.node("Gemm", args, alpha=alpha, beta=beta, transA=ta, transB=tb)
            ad = a.double().t() if ta else a.double()
            bd = b.double().t() if tb else b.double()
            ref = alpha * (ad @ bd)
            if c is not None:
                ref = ref + beta * c.double()
            return y, ref
        helper_case(w, name, build, [a])

    for name, sa, sb in [
        ("matmul_batched", (2, 1, 5, 7), (3, 7, 4)),
        ("matmul_vec_left", (7,), (2, 7, 5)),
        ("matmul_vec_right", (3, 5, 7), (7,)),
        ("matmul_2d", (5, 7), (7, 11)),
    ]:
        seed_for(name)
        export(w, name, Lambda(torch.matmul), [randn(*sa), randn(*sb)])
    seed_for("matmul_const")
    export(w, "matmul_const", WithConst(torch.matmul, randn(13, 3)), [randn(2, 5, 13)])


def shape_cases(w):
    seed_for("shape")
    export(w, "flatten", Lambda(lambda x: torch.flatten(x, 1)), [randn(2, 3, 5, 7)])
    export(w, "reshape", Lambda(lambda x: x.reshape(3, -1, 11)), [randn(1, 3, 11, 13)])
    export(w, "transpose4", Lambda(lambda x: x.permute(0, 2, 3, 1)), [randn(2, 3, 5, 7)])
    export(w, "transpose5", Lambda(lambda x: x.permute(4, 0, 2, 1, 3)), [randn(2, 3, 5, 7, 4)])
    export(w, "transpose6", Lambda(lambda x: x.permute(5, 3, 1, 0, 2, 4)),
           [randn(2, 1, 3, 2, 5, 3)])

    for name, axis, shape in [("flatten_axis0", 0, (2, 3, 5)), ("flatten_axis2", 2, (2, 3, 5, 7))]:
        seed_for(name)
        x = randn(*shape)

        def build(g, ins, x=x, axis=axis):
            lead = int(np.prod(x.shape[:axis])) if axis else 1
            return g.node("Flatten", [ins[0]], axis=axis), x.double().reshape(lead, -1)
        helper_case(w, name, build, [x])

    name = "reshape_zero"
    seed_for(name)
    x = randn(2, 3, 5, 7)

    def build_rz(g, ins):
        shape = g.const(np.array([0, -1, 7], dtype=np.int64), "shape")
        return g.node("Reshape", [ins[0], shape]), x.double().reshape(2, -1, 7)
    helper_case(w, name, build_rz, [x])

    name = "identity"
    seed_for(name)
    x = randn(1, 3, 5, 7)
    helper_case(w, name, lambda g, ins: (g.node("Identity", [ins[0]]), x.double()), [x])


def norm_cases(w):
    name = "batchnorm"
    seed_for(name)
    bn = nn.BatchNorm2d(5)
    bn.running_mean.copy_(randn(5))
    bn.running_var.copy_(rand(5, lo=0.5, hi=2.0))
    bn.weight.data.copy_(randn(5))
    bn.bias.data.copy_(randn(5))
    export(w, name, bn, [randn(2, 5, 7, 11)])

    name = "batchnorm_1d"
    seed_for(name)
    bn = nn.BatchNorm1d(3, eps=1e-3)
    bn.running_mean.copy_(randn(3))
    bn.running_var.copy_(rand(3, lo=0.5, hi=2.0))
    bn.weight.data.copy_(randn(3))
    bn.bias.data.copy_(randn(3))
    export(w, name, bn, [randn(2, 3, 13)])

    seed_for("softmax")
    export(w, "softmax_axis1", nn.Softmax(dim=1), [randn(2, 5, 7, scale=50)])
    export(w, "softmax_last_large", nn.Softmax(dim=-1), [randn(3, 11, scale=10) + 1000])
    export(w, "softmax_axis0", nn.Softmax(dim=0), [randn(5, 3, 2, scale=3)])


def pad_cases(w):
    # Pad reads its pads from a constant input (opset 11+); the exporter emits a
    # shape-computing subgraph for F.pad, so the node is built by hand. numpy's
    # pad has exactly the ONNX semantics, including negative (cropping) pads.
    for name, mode, shape, pads, value in [
        ("pad_constant", "constant", (1, 3, 5, 7), [0, 1, 2, 0, 0, 0, 1, 3], 0.5),
        ("pad_reflect", "reflect", (1, 2, 5, 7), [0, 0, 2, 1, 0, 0, 1, 3], 0.0),
        ("pad_edge", "edge", (2, 5, 7), [0, 3, 1, 0, 2, 2], 0.0),
        ("pad_negative", "constant", (1, 2, 7, 11), [0, 0, -1, 2, 0, 1, 3, -2], -1.0),
        ("pad_rank5", "constant", (2, 1, 3, 2, 3), [1, 0, 0, 1, 0, 0, 1, 0, 0, 2], 0.0),
    ]:
        seed_for(name)
        x = randn(*shape)

        def build(g, ins, x=x, mode=mode, pads=pads, value=value):
            args = [ins[0], g.const(np.array(pads, dtype=np.int64), "pads")]
            if mode == "constant":
                args.append(g.const(np.array(value, dtype=np.float32), "value"))
            y = g.node("Pad", args, mode=mode)
            n = len(x.shape)
            a = x.double().numpy()
            # Negative pads crop first; the rest is an ordinary pad.
            crop = tuple(slice(max(-pads[i], 0), a.shape[i] - max(-pads[n + i], 0))
                         for i in range(n))
            a = a[crop]
            widths = [(max(pads[i], 0), max(pads[n + i], 0)) for i in range(n)]
            kw = {"constant_values": value} if mode == "constant" else {}
            return y, torch.from_numpy(np.pad(a, widths, mode=mode, **kw))
        helper_case(w, name, build, [x])


def splitwire_op_cases(w):
    for name, inverse, shape in [("gdn", 0, (1, 5, 7, 11)), ("igdn", 1, (2, 6, 5, 7))]:
        seed_for(name)
        x = randn(*shape)
        beta, gamma = gdn_params(shape[1])

        def build(g, ins, x=x, beta=beta, gamma=gamma, inverse=inverse):
            y = g.node("GDN", [ins[0], g.const(beta), g.const(gamma)], domain=SPW_DOMAIN,
                       inverse=inverse)
            return y, gdn_ref(x.double(), beta.double(), gamma.double(), inverse)
        helper_case(w, name, build, [x])

    # Quantize rounds half to even (torch.round). Medians are multiples of 1/4
    # so that the ties below are exact in float32.
    name = "quantize"
    seed_for(name)
    C = 4
    med = torch.tensor([0.0, 0.25, -1.5, 3.75])
    x = randn(1, C, 5, 7, scale=4) + med.reshape(1, C, 1, 1)
    ties = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 7.5])
    x[0, :, 0, :] = ties.reshape(1, 7) + med.reshape(C, 1)

    def build_q(g, ins):
        y = g.node("Quantize", [ins[0], g.const(med, "medians")], domain=SPW_DOMAIN)
        # float32 subtraction, as the runtime does; then round half to even.
        return y, torch.round(x - med.reshape(1, C, 1, 1)).to(torch.int32)
    helper_case(w, name, build_q, [x])

    name = "dequantize"
    seed_for(name)
    sym = torch.randint(-20, 21, (2, C, 5, 3), dtype=torch.int32)

    def build_dq(g, ins):
        y = g.node("Dequantize", [ins[0], g.const(med, "medians")], domain=SPW_DOMAIN)
        return y, sym.double() + med.double().reshape(1, C, 1, 1)
    helper_case(w, name, build_dq, [sym])


# -------------------------------------------------------------- composites

class SvbiBlock(nn.Module):
    """Residual down-sampling block of the SVBI reference encoder: main path
    conv3x3 s2 -> conv3x3 -> ReLU (no activation between the convs, as in the
    reference code), shortcut conv1x1 s2, output main + shortcut."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2)

    def forward(self, x):
        return F.relu(self.conv2(self.conv1(x))) + self.shortcut(x)


class SvbiEncoder(nn.Module):
    """g_a: 3 -> 48 -> 64 -> 48, each block halving H and W."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(SvbiBlock(3, 48), SvbiBlock(48, 64), SvbiBlock(64, 48))

    def forward(self, x):
        return self.blocks(x)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand + BN + ReLU6, depthwise 3x3 + BN + ReLU6,
    1x1 project + BN, plus the input."""

    def __init__(self, c, expand):
        super().__init__()
        h = c * expand
        self.body = nn.Sequential(
            nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6(),
            nn.Conv2d(h, h, 3, padding=1, groups=h, bias=False), nn.BatchNorm2d(h), nn.ReLU6(),
            nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.body(x)


def randomize_bn(m):
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            mod.running_mean.copy_(randn(c, scale=0.2))
            mod.running_var.copy_(rand(c, lo=0.5, hi=1.5))
            mod.weight.data.copy_(rand(c, lo=0.5, hi=1.5))
            mod.bias.data.copy_(randn(c, scale=0.2))


class ConvBnReluHead(nn.Module):
    """conv + BN + ReLU6 stem, an inverted residual block, then a classifier
    head (global pool, flatten, linear, softmax): the MobileNetV2 tail shape."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(8), nn.ReLU6())
        self.block = InvertedResidual(8, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        y = self.block(self.stem(x))
        return torch.softmax(self.fc(torch.flatten(self.pool(y), 1)), dim=1)


def composite_cases(w):
    name = "svbi_encoder_32"
    seed_for(name)
    export(w, name, SvbiEncoder(), [randn(2, 3, 32, 32)], dynamic_batch=True)

    name = "inverted_residual"
    seed_for(name)
    m = InvertedResidual(8, 4)
    randomize_bn(m)
    export(w, name, m, [randn(2, 8, 13, 11)], dynamic_batch=True, preserve=True)

    name = "conv_bn_relu6_head"
    seed_for(name)
    m = ConvBnReluHead()
    randomize_bn(m)
    export(w, name, m, [randn(1, 3, 15, 13)], dynamic_batch=True, preserve=True)

    # Entropic-Student-style encoder (conv5x5 s2 + GDN twice, conv2x2) followed
    # by the latent quantiser and dequantiser: the client/server round trip.
    name = "student_encoder_q"
    seed_for(name)
    x = randn(1, 3, 29, 31)
    w1, w2, w3 = randn(12, 3, 5, 5, scale=0.2), randn(8, 12, 5, 5, scale=0.1), randn(4, 8, 2, 2)
    b2, b3 = randn(8, scale=0.1), randn(4, scale=0.1)
    be1, ga1 = gdn_params(12)
    be2, ga2 = gdn_params(8)
    med = torch.tensor([0.25, -0.5, 0.0, 1.75])

    def build_se(g, ins):
        d = lambda t: t.double()  # noqa: E731
        y = g.node("Conv", [ins[0], g.const(w1)], kernel_shape=[5, 5], strides=[2, 2],
                   pads=[2, 2, 2, 2])
        y = g.node("GDN", [y, g.const(be1), g.const(ga1)], domain=SPW_DOMAIN, inverse=0)
        y = g.node("Conv", [y, g.const(w2), g.const(b2)], kernel_shape=[5, 5], strides=[2, 2],
                   pads=[2, 2, 2, 2])
        y = g.node("GDN", [y, g.const(be2), g.const(ga2)], domain=SPW_DOMAIN, inverse=0)
        y = g.node("Conv", [y, g.const(w3), g.const(b3)], kernel_shape=[2, 2])
        mc = g.const(med, "medians")
        y = g.node("Quantize", [y, mc], domain=SPW_DOMAIN)
        y = g.node("Dequantize", [y, mc], domain=SPW_DOMAIN)
        r = gdn_ref(F.conv2d(d(x), d(w1), stride=2, padding=2), d(be1), d(ga1), 0)
        r = gdn_ref(F.conv2d(r, d(w2), d(b2), stride=2, padding=2), d(be2), d(ga2), 0)
        r = F.conv2d(r, d(w3), d(b3)).float()
        mr = med.reshape(1, 4, 1, 1)
        return y, torch.round(r - mr) + mr
    helper_case(w, name, build_se, [x])

    # Decoder-style block with inverse GDN: conv, IGDN, transposed conv (x2
    # up-sampling), IGDN, LeakyReLU, conv with a residual from the first conv.
    name = "igdn_block"
    seed_for(name)
    x = randn(2, 6, 5, 7)
    wa, ba = randn(8, 6, 3, 3, scale=0.2), randn(8, scale=0.1)
    wt, bt = randn(8, 8, 4, 4, scale=0.1), randn(8, scale=0.1)
    wc, bc = randn(8, 8, 3, 3, scale=0.1), randn(8, scale=0.1)
    be1, ga1 = gdn_params(8)
    be2, ga2 = gdn_params(8)

    def build_ig(g, ins):
        d = lambda t: t.double()  # noqa: E731
        a = g.node("Conv", [ins[0], g.const(wa), g.const(ba)], kernel_shape=[3, 3],
                   pads=[1, 1, 1, 1])
        y = g.node("GDN", [a, g.const(be1), g.const(ga1)], domain=SPW_DOMAIN, inverse=1)
        y = g.node("ConvTranspose", [y, g.const(wt), g.const(bt)], kernel_shape=[4, 4],
                   strides=[2, 2], pads=[1, 1, 1, 1])
        y = g.node("GDN", [y, g.const(be2), g.const(ga2)], domain=SPW_DOMAIN, inverse=1)
        y = g.node("LeakyRelu", [y], alpha=0.01)
        y = g.node("Conv", [y, g.const(wc), g.const(bc)], kernel_shape=[3, 3],
                   strides=[2, 2], pads=[1, 1, 1, 1])
        y = g.node("Add", [y, a])
        ra = F.conv2d(d(x), d(wa), d(ba), padding=1)
        r = gdn_ref(ra, d(be1), d(ga1), 1)
        r = gdn_ref(F.conv_transpose2d(r, d(wt), d(bt), stride=2, padding=1), d(be2), d(ga2), 1)
        r = F.conv2d(F.leaky_relu(r, 0.01), d(wc), d(bc), stride=2, padding=1) + ra
        return y, r
    helper_case(w, name, build_ig, [x], dynamic_batch=True)


def write_ops(outdir):
    w = Writer(outdir)
    for fn in (conv_cases, conv_transpose_cases, activation_cases, binary_cases, concat_cases,
               pool_cases, linear_cases, shape_cases, norm_cases, pad_cases,
               splitwire_op_cases, composite_cases):
        fn(w)
    total = sum(os.path.getsize(os.path.join(outdir, f)) for f in os.listdir(outdir))
    print("%d cases, %d bytes in %s" % (len(w.names), total, outdir))


# -------------------------------------------------------------- sample model

SAMPLE_README = """\
# Sample model

`encoder.onnx` is the SVBI reference client encoder g_a (three residual
down-sampling blocks, channels 3 -> 48 -> 64 -> 48, 141,696 parameters) with
**untrained**, randomly initialised weights from a fixed seed. Input
`input` N x 3 x 224 x 224 (the batch is free), output `latent` N x 48 x 28 x 28.
`input.npy` is a 1 x 3 x 224 x 224 float32 input from a fixed seed.

Its outputs mean nothing: the files exist for smoke tests, benchmarks and
`inspect` demos that need a real-sized model without a training run.
Regenerate with `tools/gen_vectors.py --sample`.
"""


def write_sample(outdir):
    os.makedirs(outdir, exist_ok=True)
    seed_for("sample")
    m = SvbiEncoder().eval()
    x = randn(1, 3, 224, 224)
    f = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(m, (x,), f, opset_version=OPSET, input_names=["input"],
                          output_names=["latent"],
                          dynamic_axes={"input": {0: "N"}, "latent": {0: "N"}})
    model = onnx.load_from_string(f.getvalue())
    model.graph.name = "svbi_encoder"
    onnx.checker.check_model(model)
    with open(os.path.join(outdir, "encoder.onnx"), "wb") as fo:
        fo.write(model.SerializeToString())
    np.save(os.path.join(outdir, "input.npy"), np32(x))
    with open(os.path.join(outdir, "README.md"), "w") as fo:
        fo.write(SAMPLE_README)
    n = sum(p.numel() for p in m.parameters())
    assert n == 141696, n
    print("sample encoder: %d parameters -> %s" % (n, outdir))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="output directory (default tests/vectors/ops or models/sample)")
    ap.add_argument("--sample", action="store_true", help="write the sample encoder instead")
    args = ap.parse_args()
    if args.sample:
        write_sample(args.out or os.path.join(ROOT, "models", "sample"))
    else:
        write_ops(args.out or os.path.join(ROOT, "tests", "vectors", "ops"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
