#!/usr/bin/python3
"""Import a uint8 TFLite CNN classifier as a float ONNX graph.

    tflite_import.py [--tflite FILE] [--out FILE.onnx] [--id ID] [--input-size S]

Defaults: ${SPLITWIRE_SHARED:-<repo>/../shared}/models/pretrained/
mobilenet_v2_1.0_224_quant.tflite -> <repo>/build/models/mobilenet_v2_1.0_224.onnx
plus a JSON sidecar (same stem, .json) describing the input convention, the
output and the split points (MobileNetV2: the inverted-residual block outputs
block<k>; MobileNetV1: the depthwise-separable unit outputs conv<k>).

`--input-size S` declares an S x S input instead of the model's own: the
networks are convolutional up to a global mean pool, so the same weights run
at another size; SAME pads and the split shapes are computed for it.  The
MobileNetV1 0.75 @ 192 model is imported at 224 x 224 this way (id
mobilenet_v1_0.75_192_at224), the input of the bundles whose encoder it
shares with MobileNetV2 (tools/models/fetch_backbone.sh).

What the conversion does:
  * weights and biases are dequantised, real = scale * (q - zero_point), with
    per-tensor or per-channel parameters (the per-channel axis comes from the
    tensor's quantized_dimension);
  * activations run in float: the model's activation quantisation is dropped,
    which is what makes this a float model (top-1 agreement with the uint8
    model is checked by check_backbone.py);
  * layout NHWC -> NCHW: conv weights OHWI -> OIHW, depthwise 1HW(C*m) ->
    (C*m)1HW as a Conv with group = C;
  * TensorFlow SAME padding becomes explicit, possibly asymmetric ONNX pads
    (TensorFlow puts the odd pixel at the bottom/right);
  * fused ReLU6 -> Clip(0, 6), fused ReLU -> Relu;
  * AVERAGE_POOL_2D covering the whole map -> GlobalAveragePool;
  * RESHAPE to (N, K) -> Flatten; the final SOFTMAX is dropped so the graph
    outputs logits (argmax is unchanged).
"""

import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

if __package__ in (None, ""):  # run as a file: the repository root is the import root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.models import tflite_fb as F  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BACKBONE_ID = "mobilenet_v2_1.0_224"
TFLITE_NAME = "mobilenet_v2_1.0_224_quant.tflite"


def shared_dir():
    return os.environ.get("SPLITWIRE_SHARED", os.path.join(REPO, "..", "shared"))


def default_tflite():
    return os.path.join(shared_dir(), "models", "pretrained", TFLITE_NAME)


def default_onnx():
    return os.path.join(REPO, "build", "models", BACKBONE_ID + ".onnx")


def same_pads(in_hw, kernel, stride, dilation):
    """TensorFlow SAME padding as ONNX pads [top, left, bottom, right]."""
    begin, end = [], []
    for n, k, s, d in zip(in_hw, kernel, stride, dilation):
        out = -(-n // s)
        eff = (k - 1) * d + 1
        total = max((out - 1) * s + eff - n, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return begin + end


def short_name(tflite_name):
    """'MobilenetV2/expanded_conv_5/project/add_fold;...' -> 'expanded_conv_5/project',
    'MobilenetV1/MobilenetV1/Conv2d_5_pointwise/Relu6;...' -> 'Conv2d_5_pointwise/Relu6'."""
    first = tflite_name.split(";")[0]
    parts = [p for p in first.split("/") if p and p not in ("MobilenetV2", "MobilenetV1")]
    return "/".join(parts[:2]) if parts else first


def _out_size(n, k, s, d, same):
    return -(-n // s) if same else (n - (k - 1) * d - 1) // s + 1


def read_layers(path, input_hw=None):
    """The network as a list of float layers in execution order.

    Each entry: dict(kind, inputs, output, out_hw, ...) where inputs/output
    are TFLite tensor indices and out_hw the output's spatial size for an
    input of input_hw (default: the model's own); kinds: conv (weight OIHW,
    bias, stride, pads, group, act), add (act), gap, flatten.  Also returns
    the model and the tensor names.
    """
    m = F.Model(path)
    layers = []
    dropped = []
    tin = m.tensors[m.inputs[0]]
    hw = {m.inputs[0]: tuple(input_hw) if input_hw else tuple(tin.shape[1:3])}
    for op in m.operators:
        x = m.tensors[op.inputs[0]]
        y = m.tensors[op.outputs[0]]
        x_hw = hw.get(op.inputs[0], tuple(x.shape[1:3]) if len(x.shape) == 4 else ())
        if op.opcode in (F.OP_CONV_2D, F.OP_DEPTHWISE_CONV_2D):
            w_t = m.tensors[op.inputs[1]]
            b_t = m.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
            w = w_t.dequantized()
            if op.opcode == F.OP_CONV_2D:
                o = F.conv_options(op)
                weight = np.ascontiguousarray(w.transpose(0, 3, 1, 2))  # OHWI -> OIHW
                group = 1
            else:
                o = F.depthwise_options(op)
                weight = np.ascontiguousarray(w.transpose(3, 0, 1, 2))  # 1HW(Cm) -> (Cm)1HW
                group = x.shape[3]
            kh, kw = weight.shape[2], weight.shape[3]
            same = o["padding"] == F.PAD_SAME
            if same:
                pads = same_pads(x_hw, (kh, kw), o["stride"], o["dilation"])
            else:
                pads = [0, 0, 0, 0]
            hw[op.outputs[0]] = tuple(_out_size(n, k, s, d, same) for n, k, s, d in
                                      zip(x_hw, (kh, kw), o["stride"], o["dilation"]))
            padding = "same" if o["padding"] == F.PAD_SAME else "valid"
            bias = b_t.dequantized() if b_t is not None else np.zeros(weight.shape[0], np.float32)
            layers.append(dict(kind="conv", inputs=[op.inputs[0]], output=op.outputs[0],
                               weight=weight, bias=bias.astype(np.float32), stride=list(o["stride"]),
                               dilation=list(o["dilation"]), pads=pads, padding=padding, group=group, act=o["act"],
                               name=short_name(y.name)))
        elif op.opcode == F.OP_ADD:
            o = F.add_options(op)
            hw[op.outputs[0]] = x_hw
            layers.append(dict(kind="add", inputs=list(op.inputs[:2]), output=op.outputs[0],
                               act=o["act"], name=short_name(y.name)))
        elif op.opcode == F.OP_AVERAGE_POOL_2D:
            o = F.pool_options(op)
            # global at the model's own size, so global at any other
            if tuple(o["kernel"]) != tuple(x.shape[1:3]) or y.shape[1:3] != (1, 1):
                raise NotImplementedError("AVERAGE_POOL_2D that is not global: %s" % (o,))
            hw[op.outputs[0]] = (1, 1)
            layers.append(dict(kind="gap", inputs=[op.inputs[0]], output=op.outputs[0],
                               act=o["act"], name=short_name(y.name)))
        elif op.opcode in (F.OP_RESHAPE, F.OP_SQUEEZE):
            if len(y.shape) != 2 or int(np.prod(x.shape[1:])) != y.shape[1]:
                raise NotImplementedError("%s to %s" % (op.name, y.shape))
            layers.append(dict(kind="flatten", inputs=[op.inputs[0]], output=op.outputs[0],
                               act=F.ACT_NONE, name=short_name(y.name)))
        elif op.opcode == F.OP_SOFTMAX and op.outputs[0] in m.outputs:
            dropped.append(op)  # logits out; see module doc
        else:
            raise NotImplementedError("TFLite op %s" % op.name)
    for L in layers:
        L["out_hw"] = hw.get(L["output"], ())
    return m, layers, dropped


def unit_outputs(layers):
    """{'conv<k>': layer} for MobileNetV1: the stem Conv2d_0 and the
    pointwise convs Conv2d_<k>_pointwise that end its depthwise-separable
    units."""
    out = {}
    for L in layers:
        scope = L["name"].split("/")[0]
        if scope == "Conv2d_0":
            out["conv0"] = L
        elif scope.startswith("Conv2d_") and scope.endswith("_pointwise"):
            out["conv%d" % int(scope.split("_")[1])] = L
    return out


def split_outputs(layers):
    """The split points of either family (see the module's doc)."""
    return block_outputs(layers) or unit_outputs(layers)


def block_outputs(layers):
    """{'block<k>': layer} for MobileNetV2's inverted-residual blocks, named
    after TensorFlow's expanded_conv[_k] scopes: the block's add, or its
    projection when the block has no residual."""
    out = {}
    for L in layers:
        scope = L["name"].split("/")[0]
        if not scope.startswith("expanded_conv"):
            continue
        k = 0 if scope == "expanded_conv" else int(scope.rsplit("_", 1)[1])
        sub = L["name"].split("/")[1] if "/" in L["name"] else ""
        if sub in ("project", "add"):
            out["block%d" % k] = L  # add comes after project and wins
    return out


def build_onnx(m, layers, opset=13, backbone_id=BACKBONE_ID, input_hw=None):
    tin = m.tensors[m.inputs[0]]
    names = {m.inputs[0]: "input"}
    used = {"input"}
    nodes, inits = [], []

    def vname(idx, hint):
        n = hint
        k = 1
        while n in used:
            k += 1
            n = "%s_%d" % (hint, k)
        used.add(n)
        names[idx] = n
        return n

    six = numpy_helper.from_array(np.array(6.0, np.float32), "relu6_max")
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "relu6_min")
    inits += [zero, six]

    def act(node_out, a, base):
        if a == F.ACT_NONE:
            return node_out, None
        pre = base + "/pre_act"
        if a == F.ACT_RELU6:
            return pre, helper.make_node("Clip", [pre, "relu6_min", "relu6_max"], [node_out], name=base + "/relu6")
        if a == F.ACT_RELU:
            return pre, helper.make_node("Relu", [pre], [node_out], name=base + "/relu")
        raise NotImplementedError("fused activation %d" % a)

    last = None
    for L in layers:
        out = vname(L["output"], "logits" if L is layers[-1] else L["name"])
        ins = [names[i] for i in L["inputs"]]
        first_out, act_node = act(out, L["act"], out)
        if L["kind"] == "conv":
            wn, bn = out + "/weight", out + "/bias"
            inits.append(numpy_helper.from_array(L["weight"], wn))
            inits.append(numpy_helper.from_array(L["bias"], bn))
            nodes.append(helper.make_node(
                "Conv", [ins[0], wn, bn], [first_out], name=out + "/conv",
                kernel_shape=list(L["weight"].shape[2:]), strides=L["stride"],
                dilations=L["dilation"], pads=L["pads"], group=L["group"]))
        elif L["kind"] == "add":
            nodes.append(helper.make_node("Add", ins, [first_out], name=out + "/add"))
        elif L["kind"] == "gap":
            nodes.append(helper.make_node("GlobalAveragePool", ins, [first_out], name=out + "/gap"))
        elif L["kind"] == "flatten":
            nodes.append(helper.make_node("Flatten", ins, [first_out], name=out + "/flatten", axis=1))
        if act_node is not None:
            nodes.append(act_node)
        last = L
    # The TFLite graph fixes a batch of 1; every op here works per image, so
    # the ONNX graph leaves the batch free for batched plans.
    _, h, w, c = tin.shape
    if input_hw:
        h, w = input_hw
    n = "N"
    out_t = m.tensors[last["output"]]
    out_shape = [n, out_t.shape[-1]] if len(out_t.shape) == 2 else [n] + list(out_t.shape[1:])
    g = helper.make_graph(
        nodes, backbone_id,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [n, c, h, w])],
        [helper.make_tensor_value_info(names[last["output"]], TensorProto.FLOAT, out_shape)],
        initializer=inits)
    return g


def describe(m, layers, tflite_path, backbone_id=BACKBONE_ID, input_hw=None):
    tin = m.tensors[m.inputs[0]]
    scale = float(tin.scale[0])
    zp = int(tin.zero_point[0])
    blocks = split_outputs(layers)
    splits = {}
    for k, L in sorted(blocks.items(), key=lambda kv: int(kv[0].lstrip("blockconv"))):
        s = m.tensors[L["output"]].shape
        splits[k] = dict(value=L["name"], shape=[s[0], s[3]] + list(L["out_hw"]))
    last = layers[-1]
    ih, iw = input_hw or tin.shape[1:3]
    aliases = ({"s28": "block5", "s14": "block12"} if "block5" in splits else
               {"s28": "conv5", "s14": "conv11"})
    return {
        "backbone": backbone_id,
        "source": os.path.basename(tflite_path),
        "input": {
            "name": "input", "layout": "NCHW", "channels": "RGB",
            "shape": [tin.shape[0], tin.shape[3], ih, iw],
            "convention": "real = (q - %d) * %r for q = uint8 pixel" % (zp, scale),
            "zero_point": zp, "scale": scale,
            # the same as x01 * scale_01 + bias for x01 = q / 255 in [0, 1]
            "from_unit_range": {"mul": 255.0 * scale, "add": -zp * scale},
        },
        "output": {
            "name": None, "kind": "logits", "classes": int(m.tensors[last["output"]].shape[-1]),
            "background_index": 0,
            "note": "index 0 = background, ImageNet-1k class k at index k + 1; softmax dropped",
        },
        "splits": splits,
        "split_aliases": aliases,
    }


def convert(tflite_path, onnx_path, opset=13, backbone_id=BACKBONE_ID, input_size=0):
    input_hw = (input_size, input_size) if input_size else None
    m, layers, _ = read_layers(tflite_path, input_hw)
    g = build_onnx(m, layers, opset, backbone_id, input_hw)
    info = describe(m, layers, tflite_path, backbone_id, input_hw)
    info["output"]["name"] = g.output[0].name
    doc = ("%s float graph imported from %s (weights dequantised). Input: %s, NCHW RGB %s. "
           "Output: %d logits, %s." % (backbone_id, info["source"], info["input"]["convention"],
                                        info["input"]["shape"], info["output"]["classes"],
                                        info["output"]["note"]))
    g.doc_string = doc
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="splitwire-tflite-import", producer_version="1",
                              doc_string=doc)
    model.ir_version = 7  # opset 13 era; readable by older runtimes
    meta = {
        "backbone": backbone_id,
        "input_convention": info["input"]["convention"],
        "input_layout": "NCHW RGB",
        "output": info["output"]["note"],
        "splits": json.dumps({k: v["value"] for k, v in info["splits"].items()}),
    }
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(os.path.abspath(onnx_path)), exist_ok=True)
    tmp = onnx_path + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, onnx_path)
    side = os.path.splitext(onnx_path)[0] + ".json"
    with open(side + ".tmp", "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    os.replace(side + ".tmp", side)
    return model, info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tflite", default=default_tflite())
    ap.add_argument("--out", default=default_onnx())
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--id", default=BACKBONE_ID, help="backbone id (graph name, metadata, sidecar)")
    ap.add_argument("--input-size", type=int, default=0,
                    help="declare an S x S input instead of the model's own (0 = its own)")
    a = ap.parse_args(argv)
    if not os.path.exists(a.tflite):
        sys.exit("tflite_import: %s not found (set SPLITWIRE_SHARED)" % a.tflite)
    model, info = convert(a.tflite, a.out, a.opset, a.id, a.input_size)
    n_nodes = len(model.graph.node)
    n_par = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    print("tflite_import: %s -> %s (%d nodes, %d parameters, output %s %d)"
          % (a.tflite, a.out, n_nodes, n_par, info["output"]["name"], info["output"]["classes"]))


if __name__ == "__main__":
    main()
