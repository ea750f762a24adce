#!/usr/bin/python3
"""Writes the small ONNX models tests/test_onnx.c loads (and the ONNX fuzzer
starts from) into tests/vectors/onnx/.

Uses Debian's python3-onnx (onnx.helper), so the files are laid out the way a
real exporter writes them: float16 initializers in int32_data, doubles in
double_data, symbolic batch dims, Constant nodes, and the ai.splitwire domain.

    /usr/bin/python3 tools/onnx_testgen.py [outdir]
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save

OPSET = [helper.make_opsetid("", 13), helper.make_opsetid("ai.splitwire", 1)]
RNG = np.random.default_rng(1234)


def weights(name, shape, scale=0.1):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def model(nodes, inputs, outputs, inits, name, opset=OPSET):
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(graph, opset_imports=opset, producer_name="onnx_testgen")
    m.ir_version = 8
    return m


def encoder():
    """Analysis transform plus the entropy-bottleneck boundary."""
    c = 8
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="enc_conv1",
                         kernel_shape=[5, 5], strides=[2, 2], pads=[2, 2, 2, 2]),
        helper.make_node("GDN", ["c1", "beta1", "gamma1"], ["g1"], name="enc_gdn1",
                         domain="ai.splitwire"),
        helper.make_node("Conv", ["g1", "w2"], ["y"], name="enc_conv2", strides=[2, 2],
                         auto_pad="SAME_UPPER"),
        helper.make_node("Quantize", ["y", "medians", "cdf", "cdf_len", "offset"], ["sym"],
                         name="enc_quant", domain="ai.splitwire"),
    ]
    cdf = np.tile(np.array([0, 10000, 40000, 60000, 65536, 0], np.int32), (c, 1))
    inits = [
        weights("w1", (c, 3, 5, 5)), weights("b1", (c,)),
        numpy_helper.from_array(np.full(c, 1.0, np.float32), "beta1"),
        numpy_helper.from_array((np.eye(c) * 0.1).astype(np.float32), "gamma1"),
        weights("w2", (c, c, 3, 3)),
        numpy_helper.from_array(np.zeros(c, np.float32), "medians"),
        numpy_helper.from_array(cdf, "cdf"),
        numpy_helper.from_array(np.full(c, 5, np.int32), "cdf_len"),
        numpy_helper.from_array(np.full(c, -2, np.int32), "offset"),
    ]
    return model(nodes,
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
                 [helper.make_tensor_value_info("sym", TensorProto.INT32, ["N", c, 4, 4])],
                 inits, "encoder")


def decoder():
    """Synthesis transform and a small classifier tail: every remaining op."""
    c = 8
    nodes = [
        helper.make_node("Dequantize", ["sym", "medians"], ["y"], name="dec_deq",
                         domain="ai.splitwire"),
        helper.make_node("ConvTranspose", ["y", "wt1", "bt1"], ["t1"], name="dec_convt1",
                         kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                         output_padding=[1, 1]),
        helper.make_node("GDN", ["t1", "beta1", "gamma1"], ["i1"], name="dec_igdn1",
                         domain="ai.splitwire", inverse=1),
        helper.make_node("ConvTranspose", ["i1", "wt2"], ["t2"], name="dec_convt2",
                         strides=[2, 2], output_shape=[16, 16]),
        helper.make_node("Constant", [], ["pads"], name="pads_const",
                         value=numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1],
                                                                np.int64))),
        helper.make_node("Pad", ["t2", "pads"], ["p"], name="tail_pad", mode="reflect"),
        helper.make_node("Conv", ["p", "wc"], ["c"], name="tail_conv", group=2),
        helper.make_node("BatchNormalization", ["c", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"],
                         name="tail_bn", epsilon=1e-3),
        helper.make_node("Clip", ["bn", "zero", "six"], ["r6"], name="tail_relu6"),
        helper.make_node("HardSwish", ["r6"], ["hs"], name="tail_hswish"),
        helper.make_node("MaxPool", ["hs"], ["mp"], name="tail_pool", kernel_shape=[3, 3],
                         strides=[2, 2], ceil_mode=1),
        helper.make_node("LeakyRelu", ["mp"], ["lr"], name="tail_leaky", alpha=0.2),
        helper.make_node("Sigmoid", ["lr"], ["sg"], name="tail_sigmoid"),
        helper.make_node("Mul", ["lr", "sg"], ["se"], name="tail_gate"),
        helper.make_node("Add", ["se", "mp"], ["res"], name="tail_residual"),
        helper.make_node("AveragePool", ["res"], ["ap"], name="tail_avg", kernel_shape=[2, 2],
                         count_include_pad=1, pads=[0, 0, 1, 1]),
        helper.make_node("Concat", ["ap", "ap"], ["cat"], name="tail_concat", axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["gap"], name="tail_gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="tail_flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="tail_fc",
                         transB=1),
        helper.make_node("Relu", ["logits"], ["lr2"], name="tail_relu"),
        helper.make_node("Identity", ["lr2"], ["id"], name="tail_identity"),
        helper.make_node("Reshape", ["id", "shape"], ["rs"], name="tail_reshape"),
        helper.make_node("Transpose", ["rs"], ["tr"], name="tail_transpose", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["tr", "mm_w"], ["mm"], name="tail_matmul"),
        helper.make_node("Flatten", ["mm"], ["mmf"], name="tail_flatten2"),
        helper.make_node("Softmax", ["mmf"], ["prob"], name="tail_softmax"),
    ]
    inits = [
        numpy_helper.from_array(np.zeros(c, np.float32), "medians"),
        weights("wt1", (c, c, 3, 3)), weights("bt1", (c,)),
        numpy_helper.from_array(np.full(c, 1.0, np.float32), "beta1"),
        numpy_helper.from_array((np.eye(c) * 0.1).astype(np.float32), "gamma1"),
        weights("wt2", (c, 4, 2, 2)),
        weights("wc", (6, 2, 3, 3)),
        numpy_helper.from_array(np.ones(6, np.float32), "bn_s"),
        weights("bn_b", (6,)), weights("bn_m", (6,)),
        numpy_helper.from_array(np.ones(6, np.float32), "bn_v"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(6.0, np.float32), "six"),
        weights("fc_w", (10, 12)), weights("fc_b", (10,)),
        numpy_helper.from_array(np.array([0, 2, 5], np.int64), "shape"),
        weights("mm_w", (2, 3)),
    ]
    return model(nodes,
                 [helper.make_tensor_value_info("sym", TensorProto.INT32, ["N", c, 4, 4])],
                 [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 15])],
                 inits, "decoder")


def typed_initializers():
    """Initializers in the typed fields, as helper.make_tensor writes them."""
    vals = [0.5, -1.25, 2.0, 65504.0]
    # make_tensor stores FLOAT16 values as their bit patterns in int32_data.
    f16 = helper.make_tensor("a16", TensorProto.FLOAT16, [4], vals)
    f64 = helper.make_tensor("a64", TensorProto.DOUBLE, [4], [0.25, 1e-3, -3.0, 1e300])
    f32 = helper.make_tensor("a32", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    i8 = helper.make_tensor("ai8", TensorProto.INT8, [3], [-128, 0, 127])
    u8 = helper.make_tensor("au8", TensorProto.UINT8, [3], [0, 1, 255])
    i64 = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 4])
    nodes = [
        helper.make_node("Add", ["x", "a16"], ["s1"]),
        helper.make_node("Mul", ["s1", "a64"], ["s2"]),
        helper.make_node("Add", ["s2", "a32"], ["s3"]),
        helper.make_node("Reshape", ["s3", "shape"], ["y"]),
    ]
    return model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
                 [f16, f64, f32, i8, u8, i64], "typed",
                 opset=[helper.make_opsetid("", 14)])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "vectors", "onnx")
    os.makedirs(out, exist_ok=True)
    for name, m in [("encoder", encoder()), ("decoder", decoder()),
                    ("typed_initializers", typed_initializers())]:
        save(m, os.path.join(out, name + ".onnx"))


if __name__ == "__main__":
    main()
