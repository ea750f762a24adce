#!/usr/bin/python3
"""Writes the small bundle the client/server tests and CI use.

    /usr/bin/python3 tools/make_test_bundle.py [outdir]

tests/vectors/bundle/tiny/     manifest.json, encoder.onnx, decoder.onnx
tests/vectors/bundle/models/   tinynet.onnx, the backbone the decoder feeds

Weights are random (fixed seed): the bundle exercises the pipeline (image in,
symbols, stream, wire, decoder, backbone tail, top-k out), not accuracy. The
codec tables are real factorized-prior tables built by tools/codec/tables.py.
"""

import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
if __package__ in (None, ""):  # run as a file: the repository root is the import root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from tools.codec import tables as tb  # noqa: E402

RNG = np.random.default_rng(7)
IMG = 32
LAT_C, LAT_HW = 8, 8
SPLIT_C = 16
CLASSES = 11  # 10 classes behind a background output, like the TFLite backbone


def weight(name, shape, scale=None):
    fan_in = int(np.prod(shape[1:]))
    s = scale if scale is not None else 1.0 / np.sqrt(fan_in)
    return numpy_helper.from_array((RNG.standard_normal(shape) * s).astype(np.float32), name)


def conv(prefix, x, y, cin, cout, k, stride, pad, inits, nodes):
    inits += [weight(prefix + ".w", (cout, cin, k, k)), weight(prefix + ".b", (cout,), 0.1)]
    nodes.append(helper.make_node("Conv", [x, prefix + ".w", prefix + ".b"], [y], name=prefix,
                                  kernel_shape=[k, k], strides=[stride, stride],
                                  pads=[pad] * 4))


def model(nodes, inits, inputs, outputs, name):
    g = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(g, producer_name="splitwire-test-bundle",
                          opset_imports=[helper.make_opsetid("", 13),
                                         helper.make_opsetid("ai.splitwire", 1)])
    return m


def logistic_tables(locs, scales):
    t = np.float32(tb.quantile_target())
    quantiles = np.stack([locs - t * scales, locs, locs + t * scales], axis=1)[:, None, :]
    return tb.build_tables(quantiles, lambda x: (x - locs[:, None, None]) / scales[:, None, None])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "tests", "vectors",
                                                              "bundle")
    os.makedirs(os.path.join(out, "tiny"), exist_ok=True)
    os.makedirs(os.path.join(out, "models"), exist_ok=True)

    # Backbone: image -> conv s2 -> relu -> conv s2 -> clip = "split" -> conv -> relu -> pool -> fc.
    nodes, inits = [], []
    conv("stem", "image", "stem_out", 3, 8, 3, 2, 1, inits, nodes)
    nodes.append(helper.make_node("Relu", ["stem_out"], ["stem_act"], name="stem_relu"))
    conv("down", "stem_act", "down_out", 8, SPLIT_C, 3, 2, 1, inits, nodes)
    inits += [numpy_helper.from_array(np.array(0, np.float32), "zero"),
              numpy_helper.from_array(np.array(6, np.float32), "six")]
    nodes.append(helper.make_node("Clip", ["down_out", "zero", "six"], ["split"], name="split_clip"))
    conv("mid", "split", "mid_out", SPLIT_C, SPLIT_C, 3, 1, 1, inits, nodes)
    nodes.append(helper.make_node("Relu", ["mid_out"], ["mid_act"], name="mid_relu"))
    nodes.append(helper.make_node("GlobalAveragePool", ["mid_act"], ["pooled"], name="pool"))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten", axis=1))
    inits += [weight("fc.w", (CLASSES, SPLIT_C), 1.0), weight("fc.b", (CLASSES,), 0.1)]
    nodes.append(helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="fc",
                                  transB=1))
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, IMG, IMG])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])
    onnx.save(model(nodes, inits, [image], [logits], "tinynet"),
              os.path.join(out, "models", "tinynet.onnx"))

    # Codec tables: logistic densities around small medians.
    medians = (RNG.standard_normal(LAT_C) * 0.2).astype(np.float32)
    scales = (0.6 + RNG.random(LAT_C) * 1.5).astype(np.float32)
    t = logistic_tables(medians, scales)

    # Encoder: image -> conv s2 -> relu -> conv s2 -> Quantize.
    nodes, inits = [], []
    conv("g_a.0", "image", "a0", 3, 16, 3, 2, 1, inits, nodes)
    nodes.append(helper.make_node("Relu", ["a0"], ["a0r"], name="g_a.relu"))
    conv("g_a.1", "a0r", "y", 16, LAT_C, 3, 2, 1, inits, nodes)
    inits += [numpy_helper.from_array(t["medians"], "eb.medians"),
              numpy_helper.from_array(t["quantized_cdf"].astype(np.int32), "eb.quantized_cdf"),
              numpy_helper.from_array(t["cdf_length"].astype(np.int32), "eb.cdf_length"),
              numpy_helper.from_array(t["offset"].astype(np.int32), "eb.offset")]
    nodes.append(helper.make_node("Quantize", ["y", "eb.medians", "eb.quantized_cdf",
                                               "eb.cdf_length", "eb.offset"], ["symbols"],
                                  name="entropy_bottleneck", domain="ai.splitwire"))
    sym = helper.make_tensor_value_info("symbols", TensorProto.INT32, ["N", LAT_C, LAT_HW, LAT_HW])
    onnx.save(model(nodes, inits, [image], [sym], "tiny_encoder"),
              os.path.join(out, "tiny", "encoder.onnx"))

    # Decoder: Dequantize -> conv -> leaky relu -> conv 1x1 = features at "split".
    nodes, inits = [], []
    inits.append(numpy_helper.from_array(t["medians"], "eb.medians"))
    nodes.append(helper.make_node("Dequantize", ["symbols", "eb.medians"], ["y_hat"],
                                  name="dequantize", domain="ai.splitwire"))
    conv("g_s.0", "y_hat", "s0", LAT_C, SPLIT_C, 3, 1, 1, inits, nodes)
    nodes.append(helper.make_node("LeakyRelu", ["s0"], ["s0r"], name="g_s.act", alpha=0.01))
    conv("g_s.1", "s0r", "features", SPLIT_C, SPLIT_C, 1, 1, 0, inits, nodes)
    feat = helper.make_tensor_value_info("features", TensorProto.FLOAT,
                                         ["N", SPLIT_C, LAT_HW, LAT_HW])
    onnx.save(model(nodes, inits, [sym], [feat], "tiny_decoder"),
              os.path.join(out, "tiny", "decoder.onnx"))

    manifest = {
        "format": "splitwire-bundle",
        "format_version": 1,
        "name": "tiny-test",
        "version": "1.0.0",
        "input": {"width": IMG, "height": IMG, "resize": 36,
                  "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
        "latent": {"shape": [LAT_C, LAT_HW, LAT_HW]},
        "rate_point": {"index": 0, "lambda": 0.0},
        "backbone": {"id": "tinynet", "num_classes": CLASSES, "label_offset": 1,
                     "split": {"value": "split", "shape": [SPLIT_C, LAT_HW, LAT_HW]}},
        "files": {"encoder": "encoder.onnx", "decoder": "decoder.onnx"},
    }
    with open(os.path.join(out, "tiny", "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
