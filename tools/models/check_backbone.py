#!/usr/bin/python3
"""Checks the imported MobileNetV2 against the uint8 TFLite original.

    check_backbone.py armnn [--limit N]   # uint8 model on Arm NN (CpuRef), resumable
    check_backbone.py float               # float PyTorch model on all of val
    check_backbone.py onnx [--n 4]        # ONNX file vs PyTorch module
    check_backbone.py report              # agreement + top-1 from the two above
    check_backbone.py uint8sim [--cached] # float emulation of the uint8 model, all of val
    check_backbone.py sizes --tflite V1.tflite --data DIR [--limit N]
        # MobileNetV1 (or V2): float at its own size and at 224 against the
        # uint8 emulation at its own size, on any class-directory set

`armnn` visits Imagenette val in a fixed random order (seed 0) and appends one
JSON line per image to build-ml/check/armnn_val.jsonl, so it can be
stopped and restarted; the CpuRef backend takes about 3 s per image, so the
agreement is measured on however many images it has done (a prefix of a fixed
random permutation, i.e. a fixed random subset).

The uint8 model's output is its softmax in steps of 1/256, so two classes can
tie at the top; `report` counts agreement both strictly (first index of the
maximum, TFLite's argmax) and tie-aware (float top-1 among the tied maxima).
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

if __package__ in (None, ""):  # run as a file: the repository root is the import root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.models import imagenette, tflite_import  # noqa: E402

# build/ is wiped by C rebuilds; long-running results live in build-ml/
OUT = os.path.join(imagenette.REPO, "build-ml", "check")
ARMNN_LOG = os.path.join(OUT, "armnn_val.jsonl")
FLOAT_NPZ = os.path.join(OUT, "float_val.npz")


def val_order():
    items = imagenette.listing("val")
    perm = np.random.RandomState(0).permutation(len(items))
    return [items[i] for i in perm]


def cmd_armnn(a):
    import pyarmnn as ann
    os.makedirs(OUT, exist_ok=True)
    done = set()
    if os.path.exists(ARMNN_LOG):
        with open(ARMNN_LOG) as f:
            for line in f:
                try:
                    done.add(json.loads(line)["file"])
                except ValueError:
                    pass  # a torn last line from an interrupted run
    parser = ann.ITfLiteParser()
    net = parser.CreateNetworkFromBinaryFile(a.tflite)
    in_name = parser.GetSubgraphInputTensorNames(0)[0]
    out_name = parser.GetSubgraphOutputTensorNames(0)[0]
    ib = parser.GetNetworkInputBindingInfo(0, in_name)
    ob = parser.GetNetworkOutputBindingInfo(0, out_name)
    rt = ann.IRuntime(ann.CreationOptions())
    opt = None
    for be in a.backends.split(","):
        try:
            opt, _ = ann.Optimize(net, [ann.BackendId(be)], rt.GetDeviceSpec(), ann.OptimizerOptions())
            backend = be
            break
        except Exception:  # backend not built into this Arm NN
            continue
    if opt is None:
        sys.exit("check_backbone: none of the Arm NN backends %s is available" % a.backends)
    net_id, _ = rt.LoadNetwork(opt)
    order = val_order()[:a.limit] if a.limit else val_order()
    todo = [it for it in order if it[0] not in done]
    print("armnn (%s): %d done, %d to go" % (backend, len(done), len(todo)), flush=True)
    t0 = time.time()
    with open(ARMNN_LOG, "a") as log:
        for n, (rel, cls, in1k) in enumerate(todo):
            img = imagenette.load_uint8(rel)[None]
            it = ann.make_input_tensors([ib], [img])
            ot = ann.make_output_tensors([ob])
            rt.EnqueueWorkload(net_id, it, ot)
            p = ann.workload_tensors_to_ndarray(ot)[0].reshape(-1)
            top = np.flatnonzero(p == p.max()).tolist()
            top5 = np.argsort(-p.astype(np.int32), kind="stable")[:5].tolist()
            log.write(json.dumps(dict(file=rel, cls=cls, in1k=in1k, top=top, pmax=int(p.max()),
                                      top5=top5, backend=backend)) + "\n")
            log.flush()
            if (n + 1) % 25 == 0:
                print("armnn: %d/%d, %.2f s/img" % (n + 1, len(todo), (time.time() - t0) / (n + 1)),
                      flush=True)


def cmd_float(a):
    from tools.models.mobilenet_v2 import MobileNetV2
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    net = MobileNetV2.from_tflite(a.tflite)
    items = imagenette.listing("val")
    logits = np.zeros((len(items), 1001), np.float32)
    t0 = time.time()
    bs = 50
    for s in range(0, len(items), bs):
        chunk = items[s:s + bs]
        q = np.stack([imagenette.load_uint8(r) for r, _, _ in chunk])
        x = (torch.from_numpy(q).permute(0, 3, 1, 2).float() - 128.0) / 128.0
        with torch.no_grad():
            logits[s:s + len(chunk)] = net(x).numpy()
    dt = time.time() - t0
    os.makedirs(OUT, exist_ok=True)
    np.savez_compressed(FLOAT_NPZ, files=np.array([r for r, _, _ in items]), logits=logits,
                        cls=np.array([c for _, c, _ in items]), in1k=np.array([k for _, _, k in items]))
    print("float: %d images in %.1f s (%.1f img/s) -> %s" % (len(items), dt, len(items) / dt, FLOAT_NPZ))
    report_float(logits, items)


def report_float(logits, items):
    in1k = np.array([k for _, _, k in items])
    cls = np.array([c for _, c, _ in items])
    top1000 = logits[:, 1:].argmax(1)  # drop background: 1000-way
    acc1000 = float((top1000 == in1k).mean())
    ids = np.array([k for _, _, _, k in imagenette.classes()])
    top10 = logits[:, ids + 1].argmax(1)
    acc10 = float((top10 == cls).mean())
    top1001 = logits.argmax(1)
    print("float top-1 on val (%d): 1000-way %.2f%%, 10-way (restricted to Imagenette classes) %.2f%%, "
          "background chosen %d times" % (len(items), 100 * acc1000, 100 * acc10, int((top1001 == 0).sum())))
    return acc1000, acc10


def cmd_report(a):
    d = np.load(FLOAT_NPZ)
    files = list(d["files"])
    logits = d["logits"]
    items = list(zip(files, d["cls"].tolist(), d["in1k"].tolist()))
    report_float(logits, items)
    idx = {f: i for i, f in enumerate(files)}
    rows = []
    with open(ARMNN_LOG) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    if not rows:
        print("no Arm NN results yet")
        return
    strict = tie = 0
    q_acc1000 = 0
    for r in rows:
        fl = logits[idx[r["file"]]]
        ftop = int(fl.argmax())
        strict += ftop == r["top"][0]
        tie += ftop in r["top"]
        q_acc1000 += r["top"][0] == r["in1k"] + 1
    n = len(rows)
    sub = np.array([idx[r["file"]] for r in rows])
    f_sub = float((logits[sub, 1:].argmax(1) == d["in1k"][sub]).mean())
    print("Arm NN (%s) uint8 vs float, %d val images (fixed random subset, seed 0): top-1 agreement "
          "%.2f%% strict, %.2f%% counting ties (%d tied tops)"
          % (rows[0].get("backend", "?"), n, 100 * strict / n, 100 * tie / n,
             sum(len(r["top"]) > 1 for r in rows)))
    print("on that subset: uint8 top-1 (1001-way argmax == label+1) %.2f%%, float top-1 1000-way %.2f%%"
          % (100 * q_acc1000 / n, 100 * f_sub))


def run_uint8_sim(m, layers, q):
    """The uint8 model emulated in float: every tensor the TFLite graph holds
    as uint8 is rounded to its own scale/zero point and clamped to 0..255
    after each op (weights and biases are exact already).  Differs from the
    integer kernels only by their fixed-point rescaling rounding."""
    import torch.nn.functional as Fn
    env = {m.inputs[0]: (torch.from_numpy(q).permute(0, 3, 1, 2).float() - 128.0) / 128.0}

    def requant(t, idx):
        tt = m.tensors[idx]
        if not tt.quantized:
            return t
        s, z = float(tt.scale[0]), float(tt.zero_point[0])
        return (torch.clamp(torch.round(t / s) + z, 0, 255) - z) * s

    with torch.no_grad():
        for L in layers:
            x = env[L["inputs"][0]]
            if L["kind"] == "conv":
                p = L["pads"]
                x = Fn.pad(x, (p[1], p[3], p[0], p[2]))
                y = Fn.conv2d(x, torch.from_numpy(L["weight"]), torch.from_numpy(L["bias"]),
                              tuple(L["stride"]), 0, tuple(L["dilation"]), L["group"])
            elif L["kind"] == "add":
                y = x + env[L["inputs"][1]]
            elif L["kind"] == "gap":
                y = x.mean(dim=(2, 3), keepdim=True)
            else:
                y = torch.flatten(x, 1)
            if L["act"] == 3:
                y = torch.clamp(y, 0, 6)
            elif L["act"] == 1:
                y = torch.relu(y)
            env[L["output"]] = requant(y, L["output"])
    return env[layers[-1]["output"]]


def cmd_uint8sim(a):
    """Float model vs the float emulation of the uint8 model, all of val."""
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    m, layers, _ = tflite_import.read_layers(a.tflite)
    items = imagenette.listing("val")
    saved = os.path.join(OUT, "uint8sim_val_logits.npy")
    if a.cached and os.path.exists(saved):
        out = np.load(saved)
    else:
        out = np.zeros((len(items), 1001), np.float32)
        for s in range(0, len(items), 50):
            chunk = items[s:s + 50]
            q = np.stack([imagenette.load_uint8(r) for r, _, _ in chunk])
            out[s:s + len(chunk)] = run_uint8_sim(m, layers, q).numpy()
        np.save(saved, out)
    d = np.load(FLOAT_NPZ)
    assert list(d["files"]) == [r for r, _, _ in items]
    ftop = d["logits"].argmax(1)
    agree = float((out.argmax(1) == ftop).mean())
    # The emulated logits sit on the uint8 grid of their tensor, so several
    # classes can share the maximum; the float top-1 being one of them is
    # agreement with what the uint8 model says (its argmax index is arbitrary).
    top = out.max(1)
    tied = (out == top[:, None]).sum(1) > 1
    agree_ties = float((out[np.arange(len(out)), ftop] == top).mean())
    in1k = np.array([k for _, _, k in items])
    print("uint8 emulation: top-1 1000-way %.2f%%; float model agrees with it on %.2f%% of %d val images "
          "strict (first index of the maximum), %.2f%% counting ties (%d tied tops)"
          % (100 * float((out[:, 1:].argmax(1) == in1k).mean()), 100 * agree, len(items),
             100 * agree_ties, int(tied.sum())))
    if os.path.exists(ARMNN_LOG):
        idx = {r: i for i, (r, _, _) in enumerate(items)}
        rows = [json.loads(line) for line in open(ARMNN_LOG) if line.strip().endswith("}")]
        # the emulation's logits, quantised like the TFLite softmax input, then argmax
        hit = sum(int(out[idx[r["file"]]].argmax()) in r["top"] for r in rows)
        print("uint8 emulation vs Arm NN: top-1 in Arm NN's (tied) top on %d/%d images" % (hit, len(rows)))


def _square(path, size):
    """A photo as the backbones' eval rows see it: the shorter side resized
    to `size` (antialiased), then the centre size x size crop; HWC uint8."""
    from PIL import Image
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        k = size / min(w, h)
        nw, nh = max(size, round(w * k)), max(size, round(h * k))
        im = im.resize((nw, nh), Image.BILINEAR, reducing_gap=None)
        l, t = (nw - size) // 2, (nh - size) // 2
        return np.asarray(im.crop((l, t, l + size, t + size)), dtype=np.uint8)


def _labelled(data):
    """[(path, ImageNet-1k index)] of a class-directory set with classes.tsv
    beside or above it (wnid -> imagenet1k_idx)."""
    tsv = next(p for p in (os.path.join(data, "classes.tsv"), os.path.join(data, "..", "classes.tsv"))
               if os.path.exists(p))
    wnid = {}
    with open(tsv) as f:
        next(f)
        for line in f:
            cols = line.rstrip("\n").split("\t")
            wnid[cols[1]] = int(cols[3])
    out = []
    for d in sorted(os.listdir(data)):
        if d in wnid:
            for fn in sorted(os.listdir(os.path.join(data, d))):
                if fn.lower().endswith((".jpg", ".jpeg", ".png")):
                    out.append((os.path.join(data, d, fn), wnid[d]))
    return out


def cmd_sizes(a):
    """Float top-1 at the model's own input size and at 224, and agreement
    of the own-size float model with the emulated uint8 one."""
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    from tools.models.mobilenet_v1 import MobileNetV1
    from tools.models.mobilenet_v2 import MobileNetV2
    m, layers, _ = tflite_import.read_layers(a.tflite)
    own = m.tensors[m.inputs[0]].shape[1]
    cls = MobileNetV1 if tflite_import.unit_outputs(layers) and not tflite_import.block_outputs(layers) \
        else MobileNetV2
    net = cls.from_tflite(a.tflite)
    items = _labelled(a.data)
    if a.limit and a.limit < len(items):  # spread evenly, as splitwire eval --limit
        items = [items[((2 * k + 1) * len(items)) // (2 * a.limit)] for k in range(a.limit)]
    hit = {own: 0, 224: 0}
    q_hit = agree = agree_ties = 0
    for s in range(0, len(items), 25):
        chunk = items[s:s + 25]
        lab = np.array([k for _, k in chunk])
        for size in sorted(hit):
            q = np.stack([_square(p, size) for p, _ in chunk])
            x = (torch.from_numpy(q).permute(0, 3, 1, 2).float() - 128.0) / 128.0
            with torch.no_grad():
                f = net(x).numpy()
            hit[size] += int((f[:, 1:].argmax(1) == lab).sum())
            if size == own:
                u = run_uint8_sim(m, layers, q).numpy()
                q_hit += int((u[:, 1:].argmax(1) == lab).sum())
                agree += int((u.argmax(1) == f.argmax(1)).sum())
                agree_ties += int((u[np.arange(len(u)), f.argmax(1)] == u.max(1)).sum())
    n = len(items)
    print("%s on %s (%d images, shorter side resized, centre crop): float top-1 %.2f%% at %d, %.2f%% at 224; "
          "uint8 emulation %.2f%% at %d; float agrees with it on %.2f%% strict, %.2f%% counting ties"
          % (os.path.basename(a.tflite), a.data, n, 100 * hit[own] / n, own, 100 * hit[224] / n,
             100 * q_hit / n, own, 100 * agree / n, 100 * agree_ties / n))


def cmd_onnx(a):
    from tools.models import onnx_eval
    from tools.models.mobilenet_v2 import MobileNetV2
    net = MobileNetV2.from_tflite(a.tflite)
    items = val_order()[:a.n]
    q = np.stack([imagenette.load_uint8(r) for r, _, _ in items])
    x = ((q.astype(np.float32) - 128.0) / 128.0).transpose(0, 3, 1, 2).copy()
    worst = 0.0
    for i in range(len(items)):
        ref = net(torch.from_numpy(x[i:i + 1])).detach().numpy()
        out = list(onnx_eval.run(a.onnx, {"input": x[i:i + 1]}).values())[0]
        d = float(np.abs(out - ref).max())
        worst = max(worst, d)
        print("%s: max |onnx - torch| = %.3g, argmax %d vs %d" % (items[i][0], d, out.argmax(), ref.argmax()))
        if a.save:
            os.makedirs(OUT, exist_ok=True)
            np.save(os.path.join(OUT, "x%d.npy" % i), x[i:i + 1])
            np.save(os.path.join(OUT, "y%d_torch.npy" % i), ref)
    print("onnx vs torch: worst max-abs difference %.3g over %d images" % (worst, len(items)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tflite", default=tflite_import.default_tflite())
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("armnn")
    p.add_argument("--limit", type=int, default=0, help="stop after this many images of the fixed order")
    p.add_argument("--backends", default="CpuAcc,CpuRef")
    sub.add_parser("float")
    p = sub.add_parser("onnx")
    p.add_argument("--onnx", default=tflite_import.default_onnx())
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--save", action="store_true", help="write x<i>.npy / y<i>_torch.npy for the C runtime")
    sub.add_parser("report")
    p = sub.add_parser("uint8sim")
    p.add_argument("--cached", action="store_true", help="report from the logits a previous run saved")
    p = sub.add_parser("sizes")
    p.add_argument("--data", required=True, help="class directories with classes.tsv beside or above")
    p.add_argument("--limit", type=int, default=0, help="images spread evenly over the set (0 = all)")
    a = ap.parse_args()
    {"armnn": cmd_armnn, "float": cmd_float, "onnx": cmd_onnx, "report": cmd_report,
     "uint8sim": cmd_uint8sim, "sizes": cmd_sizes}[a.cmd](a)


if __name__ == "__main__":
    main()
