#!/usr/bin/python3
"""Export a trained checkpoint as a model bundle (docs/MODEL_BUNDLE.md).

    export.py CKPT_OR_RUN_DIR [--name NAME] [--out models/<name>] [--fp16]
              [--version 1.0.0] [--rate-index K] [--check]

Writes models/<name>/{manifest.json, encoder.onnx, decoder.onnx, model_card.md}:
  encoder.onnx  f32 [1,3,224,224] (normalised, see manifest) -> g_a ->
                ai.splitwire::Quantize(y, medians, quantized_cdf, cdf_length,
                offset) -> i32 symbols [1,C,h,w]; the coder tables are
                initializers
  decoder.onnx  i32 symbols -> ai.splitwire::Dequantize(symbols, medians) ->
                g_s -> f32 features at the backbone split
The tables are CompressAI's update() + pmf_to_quantized_cdf, built by
tools/codec/tables.py.
--fp16 stores conv weights as float16 (the runtime widens them); medians and
biases stay float32.  --check runs both graphs with tools/models/onnx_eval.py
against the PyTorch model on a few val images.
"""

import argparse
import datetime
import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
REPO = os.path.dirname(TOOLS)
if __package__ in (None, ""):  # run as a file: the repository root is the import root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.train import models  # noqa: E402

DOMAIN = "ai.splitwire"
BACKBONE_ID = "mobilenet_v2_1.0_224"
# --backbone of train.py -> the backbone's ONNX id (tools/models/fetch_backbone.sh)
# and how the card names it
ONNX_IDS = {"mnv2": BACKBONE_ID, "mnv1": "mobilenet_v1_0.75_192_at224"}
TITLES = {"mnv2": "MobileNetV2 1.0 (224)", "mnv1": "MobileNetV1 0.75 (the 192 model, run at 224)"}


def coder_tables(bottleneck):
    """The coder's tables, built by tools/codec/tables.py from the bottleneck's pmfs.

    The pmfs come from the PyTorch density in float32, as CompressAI's update()
    computes them (torch.sigmoid); evaluating the sigmoids another way (e.g. in
    float64) moves a few CDF entries by one count.
    """
    from tools.codec import tables as codec

    p = bottleneck.pmfs()
    t = codec.tables_from_pmfs(p["pmf"], p["pmf_length"], p["tail_mass"], p["offset"], p["medians"])
    codec.check_tables(t)
    return "tools/codec/tables.py (tables_from_pmfs)", t


class Emitter:
    """Collects ONNX nodes and initializers for a chain of our modules."""

    def __init__(self, prefix, fp16):
        self.nodes, self.inits, self.prefix, self.fp16 = [], [], prefix, fp16
        self.k = 0

    def name(self, s):
        self.k += 1
        return "%s%s_%d" % (self.prefix, s, self.k)

    def init(self, arr, name, keep_f32=False):
        arr = np.asarray(arr)
        if arr.dtype == np.float32 and self.fp16 and not keep_f32:
            arr = arr.astype(np.float16)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def conv(self, x, m, pads=None):
        """Conv node of nn.Conv2d m; pads (top, left, bottom, right) replace
        its own symmetric padding (TensorFlow SAME is asymmetric)."""
        n = self.name("conv")
        ins = [x, self.init(m.weight.detach().numpy(), n + "/weight")]
        if m.bias is not None:
            ins.append(self.init(m.bias.detach().numpy(), n + "/bias", keep_f32=True))
        if pads is None:
            p = m.padding if isinstance(m.padding, tuple) else (m.padding, m.padding)
            pads = (p[0], p[1], p[0], p[1])
        self.nodes.append(helper.make_node(
            "Conv", ins, [n], name=n, kernel_shape=list(m.kernel_size), strides=list(m.stride),
            pads=list(pads), dilations=list(m.dilation), group=m.groups))
        return n

    def relu6(self, x):
        n = self.name("clip")
        lo = self.init(np.array(0.0, dtype=np.float32), n + "/min", keep_f32=True)
        hi = self.init(np.array(6.0, dtype=np.float32), n + "/max", keep_f32=True)
        self.nodes.append(helper.make_node("Clip", [x, lo, hi], [n], name=n))
        return n

    def unary(self, op, x, **attrs):
        n = self.name(op.lower())
        self.nodes.append(helper.make_node(op, [x], [n], name=n, **attrs))
        return n

    def add(self, a, b):
        n = self.name("add")
        self.nodes.append(helper.make_node("Add", [a, b], [n], name=n))
        return n

    def gdn(self, x, m):
        n = self.name("igdn" if m.inverse else "gdn")
        beta, gamma = m.effective()
        ins = [x, self.init(beta.detach().numpy(), n + "/beta", keep_f32=True),
               self.init(gamma.detach().numpy(), n + "/gamma", keep_f32=True)]
        self.nodes.append(helper.make_node("GDN", ins, [n], name=n, domain=DOMAIN,
                                           inverse=int(m.inverse)))
        return n

    # -- our module types --------------------------------------------------
    def module(self, x, m):
        if isinstance(m, torch.nn.Conv2d):
            return self.conv(x, m)
        if isinstance(m, models.GDN):
            return self.gdn(x, m)
        if isinstance(m, torch.nn.Sequential):
            for sub in m:
                x = self.module(x, sub)
            return x
        if isinstance(m, models.ResDown):
            h = self.conv(x, m.conv1)
            if m.mid_act:
                h = self.unary("Relu", h)
            h = self.unary("Relu", self.conv(h, m.conv2))
            return self.add(h, self.conv(x, m.skip))
        if isinstance(m, models.SVBIEncoder):
            return self.module(self.module(x, m.blocks), m.refine)
        if isinstance(m, models.EncRefine):
            h = self.unary("Relu", self.conv(x, m.conv1))
            return self.add(x, self.conv(h, m.conv2))
        if isinstance(m, models.ConvAct):
            return self.unary("LeakyRelu", self.conv(x, m.conv), alpha=float(m.slope))
        if isinstance(m, models.ResBlock):
            h = self.unary("LeakyRelu", self.conv(x, m.conv1), alpha=float(m.slope))
            h = self.add(x, self.conv(h, m.conv2))
            return self.unary("LeakyRelu", h, alpha=float(m.slope))
        if isinstance(m, models.ResDecoder):
            return self.conv(self.module(x, m.body), m.out)
        if isinstance(m, models.ESEncoder):
            for sub in (m.conv1, m.gdn1, m.conv2, m.gdn2, m.conv3):
                x = self.module(x, sub)
            return x
        if isinstance(m, models.ESDecoder):
            return self.conv(self.module(x, m.body), m.out)
        if isinstance(m, models.MBConv):
            h = self.conv(x, m.conv, pads=m.pads)
            return self.relu6(h) if m.act else h
        if isinstance(m, models.InvRes):
            h = self.module(x, m.expand) if m.expand is not None else x
            h = self.module(self.module(h, m.dw), m.project)
            return self.add(x, h) if m.residual else h
        if isinstance(m, models.MobileEncoder):
            return self.module(self.module(x, m.stem), m.blocks)
        if isinstance(m, models.MobileDecoder):
            return self.module(self.module(x, m.inp), m.blocks)
        if isinstance(m, models.MobileV1Decoder):
            return self.module(self.module(self.module(x, m.inp), m.blocks), m.out)
        raise NotImplementedError("export: %s" % type(m).__name__)


def make_model(graph, doc):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(DOMAIN, 1)],
                          producer_name="splitwire-export", producer_version="1", doc_string=doc)
    m.ir_version = 7
    return m


def build_encoder(model, tables, latent_shape, fp16):
    e = Emitter("enc/", fp16)
    y = e.module("input", model.encoder)
    med = e.init(tables["medians"].astype(np.float32), "medians", keep_f32=True)
    ins = [y, med, e.init(tables["quantized_cdf"].astype(np.int32), "quantized_cdf"),
           e.init(tables["cdf_length"].astype(np.int32), "cdf_length"),
           e.init(tables["offset"].astype(np.int32), "offset")]
    e.nodes.append(helper.make_node("Quantize", ins, ["symbols"], name="quantize", domain=DOMAIN))
    g = helper.make_graph(e.nodes, "encoder",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
                          [helper.make_tensor_value_info("symbols", TensorProto.INT32, ["N"] + latent_shape)],
                          initializer=e.inits)
    return make_model(g, "splitwire client encoder: image -> int32 symbols (rint(y - median))")


def build_decoder(model, tables, latent_shape, split_shape, fp16):
    e = Emitter("dec/", fp16)
    med = e.init(tables["medians"].astype(np.float32), "medians", keep_f32=True)
    e.nodes.append(helper.make_node("Dequantize", ["symbols", med], ["y_hat"], name="dequantize", domain=DOMAIN))
    out = e.module("y_hat", model.decoder)
    e.nodes.append(helper.make_node("Identity", [out], ["features"], name="features"))
    g = helper.make_graph(e.nodes, "decoder",
                          [helper.make_tensor_value_info("symbols", TensorProto.INT32, ["N"] + latent_shape)],
                          [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N"] + split_shape)],
                          initializer=e.inits)
    return make_model(g, "splitwire server decoder: int32 symbols -> backbone split features")


def load_checkpoint(path, weights="auto"):
    """(path, checkpoint, model in eval mode); weights: auto, live or ema
    (models.checkpoint_weights); ck["weights"] says which were loaded."""
    if os.path.isdir(path):
        path = os.path.join(path, "ckpt_last.pt")
    ck = models.load_checkpoint(path)
    a = ck["args"]
    model = models.build(a["arch"], a["split"], width=a.get("width", 96), n_blocks=a.get("dec_blocks", 2),
                         mid_act=a.get("mid_act", False), es_decoder=a.get("es_decoder", "igdn"),
                         enc_refine=a.get("enc_refine", 0), latent=a.get("latent", 48),
                         expansions=a.get("expansions", models.MB_EXPANSIONS),
                         backbone=a.get("backbone", "mnv2"))
    state, ck["weights"] = models.checkpoint_weights(ck, weights)
    model.load_state_dict(state)
    model.eval()
    return path, ck, model


def corpus_text(name):
    """The card's training-data entry: Imagenette train, or a corpus of
    tools/train/corpus.py with its sources where its sources.json is here."""
    if not name:
        return "Imagenette v2 train (9,469 ImageNet photos, 10 classes, 224x224)"
    src = os.path.join(os.environ.get("SPLITWIRE_WORK", os.path.join(REPO, "build-ml")), "corpus", name,
                       "sources.json")
    if not os.path.exists(src):
        return "label-free corpus '%s' (tools/train/corpus.py)" % name
    with open(src) as f:
        info = json.load(f)
    return "label-free corpus '%s' (tools/train/corpus.py): %d photos at their own aspect, %s" % (
        name, info["images"], "; ".join("%s %d (%s)" % (s["name"], s["images"], s["origin"])
                                        for s in info["sources"]))


def which_text(ck):
    if ck.get("soup"):
        return "the mean of the weights of %s (tools/train/soup.py; each run's %s)" % (
            ", ".join(os.path.basename(e["run"]) for e in ck["soup"]),
            " / ".join(sorted({"moving average" if e["weights"] == "ema" else "optimizer's weights"
                               for e in ck["soup"]})))
    if ck["weights"] == "ema":
        return "the moving average of the weights (decay %g per step)" % ck["args"].get("ema", 0)
    return "the optimizer's weights"


def epochs_text(ck):
    a = ck["args"]
    if a.get("minutes"):
        return "%d (the %g-minute budget of --minutes; step %d)" % (ck["epoch"], a["minutes"], ck["global_step"])
    if ck["epoch"] >= a["epochs"]:
        return "%d" % a["epochs"]
    return "%d (stopped; %d scheduled)" % (ck["epoch"], a["epochs"])


def schedule_text(a):
    if a.get("cosine"):
        over = ("the %g-minute budget" % a["minutes"]) if a.get("minutes") else "the run"
        return ("Adam, linear warm-up over %d steps, then a cosine from %g to %g over %s"
                % (a.get("warmup", 100), a["lr"], a["lr"] / 100, over))
    return "Adam %g x%g per epoch" % (a["lr"], a["lr_decay"])


def backbone_split_value(split, backbone="mnv2"):
    """The split's value name in the imported backbone ONNX (from its JSON)."""
    side = os.path.join(REPO, "build", "models", ONNX_IDS[backbone] + ".json")
    if os.path.exists(side):
        with open(side) as f:
            return json.load(f)["splits"][split]["value"]
    from tools.models import tflite_import
    if backbone == "mnv1":
        from tools.models import mobilenet_v1
        _, layers, _ = tflite_import.read_layers(mobilenet_v1.default_tflite())
    else:
        _, layers, _ = tflite_import.read_layers(tflite_import.default_tflite())
    return tflite_import.split_outputs(layers)[split]["name"]


def fnv1a64(path):
    """FNV-1a 64 of a file's bytes, as the runtime checks a shared encoder."""
    h = 0xcbf29ce484222325
    with open(path, "rb") as f:
        for b in f.read():
            h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return "%016x" % h


def share_encoder(out, owner_dir):
    """--shared-encoder: this bundle's encoder must be the owner bundle's,
    byte for byte; both manifests then declare it (name of the owner, hash)."""
    mine, theirs = os.path.join(out, "encoder.onnx"), os.path.join(owner_dir, "encoder.onnx")
    h = fnv1a64(mine)
    if h != fnv1a64(theirs):
        sys.exit("export: %s differs from %s: the run's encoder or entropy model is not the owner's "
                 "(train with --init from the owner's run and --freeze-encoder)" % (mine, theirs))
    man_path = os.path.join(owner_dir, "manifest.json")
    with open(man_path) as f:
        owner = json.load(f)
    decl = {"owner": owner["name"], "fnv1a64": h}
    if owner.get("shared_encoder") != decl:
        owner["shared_encoder"] = decl
        write_atomic(man_path, json.dumps(owner, indent=2) + "\n")
    return decl


def write_atomic(path, data, mode="w"):
    tmp = path + ".tmp"
    with open(tmp, mode) as f:
        f.write(data)
    os.replace(tmp, path)


def check(model, enc, dec, n=3):
    from tools.models import onnx_eval
    from tools.models.mobilenet_v2 import from_unit
    from tools.train import data
    u8, _ = data.load_cache(os.environ.get("SPLITWIRE_WORK", os.path.join(REPO, "build-ml")), "val")
    worst_sym, worst_feat = 0, 0.0
    for i in range(n):
        x = from_unit(data.to_tensor(u8[i * 397:i * 397 + 1]))
        with torch.no_grad():
            y = model.encoder(x)
            sym = model.bottleneck.symbols(y)
            feat = model.decoder(sym.float() + model.bottleneck.medians().view(1, -1, 1, 1))
        s_onnx = list(onnx_eval.run(enc, {"input": x.numpy()}).values())[0]
        f_onnx = list(onnx_eval.run(dec, {"symbols": s_onnx}).values())[0]
        worst_sym = max(worst_sym, int(np.abs(s_onnx.astype(np.int64) - sym.numpy()).max()))
        worst_feat = max(worst_feat, float(np.abs(f_onnx - feat.numpy()).max()))
    print("check: %d images, max |symbol diff| %d, max |feature diff| %.3g (fp16 weights widen this)"
          % (n, worst_sym, worst_feat))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt", help="checkpoint file or run directory (uses ckpt_last.pt)")
    ap.add_argument("--name", default=None)
    ap.add_argument("--out", default=None, help="bundle directory (default models/<name>)")
    ap.add_argument("--version", default="0.1.0")
    ap.add_argument("--rate-index", type=int, default=0,
                    help="position in the rate family, 0 = highest rate (the runtime accepts 0..1000)")
    ap.add_argument("--fp16", action="store_true")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--weights", default="auto", choices=["auto", "live", "ema"],
                    help="the optimizer's weights or their moving average (runs with --ema); auto = the "
                         "average where the run kept one")
    ap.add_argument("--shared-encoder", default=None, metavar="OWNER_DIR",
                    help="the bundle whose encoder this one shares (a --freeze-encoder run from its "
                         "checkpoint): the exported encoder must equal it byte for byte, and both "
                         "manifests get a shared_encoder field")
    a = ap.parse_args()

    path, ck, model = load_checkpoint(a.ckpt, a.weights)
    args = ck["args"]
    split = args["split"]
    bb = args.get("backbone", "mnv2")
    name = a.name or "%s-%s-%s-l%s" % (args["arch"], bb, split, ("%g" % args["lmbda"]).replace(".", "p"))
    out = a.out or os.path.join(REPO, "models", name)
    os.makedirs(out, exist_ok=True)

    src, tables = coder_tables(model.bottleneck)
    with torch.no_grad():
        x = torch.zeros(1, 3, 224, 224)
        y = model.encoder(x)
        f = model.decoder(y)
    latent_shape = list(y.shape[1:])
    split_shape = list(f.shape[1:])
    enc = build_encoder(model, tables, latent_shape, a.fp16)
    dec = build_decoder(model, tables, latent_shape, split_shape, a.fp16)
    for m, fn in ((enc, "encoder.onnx"), (dec, "decoder.onnx")):
        onnx.checker.check_model(m)
        write_atomic(os.path.join(out, fn), m.SerializeToString(), "wb")

    mean = 128.0 / 255.0  # x = (255 p - 128) / 128 = (p - 128/255) / (128/255)
    manifest = {
        "format": "splitwire-bundle",
        "format_version": 1,
        "name": name,
        "version": a.version,
        "input": {"width": 224, "height": 224, "resize": 224,
                  "mean": [round(mean, 6)] * 3, "std": [round(mean, 6)] * 3},
        "latent": {"shape": latent_shape},
        "rate_point": {"index": a.rate_index, "lambda": args["lmbda"]},
        "backbone": {"id": ONNX_IDS[bb], "num_classes": 1001, "label_offset": 1,
                     "split": {"name": split, "value": backbone_split_value(split, bb), "shape": split_shape}},
        "files": {"encoder": "encoder.onnx", "decoder": "decoder.onnx"},
        "measured": {},
    }
    if a.shared_encoder:
        manifest["shared_encoder"] = share_encoder(out, a.shared_encoder)
    write_atomic(os.path.join(out, "manifest.json"), json.dumps(manifest, indent=2) + "\n")

    n_enc = sum(p.numel() for p in model.encoder.parameters())
    n_dec = sum(p.numel() for p in model.decoder.parameters())
    card = """# {name}

Learned compressor for split inference of {title}, restoring the
backbone's `{split}` features ({sshape}) from a {lshape} latent.

| | |
|---|---|
| architecture | {arch} encoder ({n_enc} parameters{refine}), entropy bottleneck (factorized prior, filters (3,3,3,3)), decoder ({n_dec} parameters) |
| compute at 224x224 | encoder {enc_macs:.1f} MMAC (client), decoder {dec_macs:.1f} MMAC (server); convolutions only |
| {quirk_key} | {mid} |
| rate weight lambda | {lmbda} (loss = per-image sum of squared feature error + lambda * bits{kd}) |
| trained | {trained} |
| training data | {data}, {crop} + horizontal flip{patch} |
| input normalisation | x = (255 p - 128) / 128 per RGB channel (the backbone's TFLite convention) |
| schedule | {epochs} epochs, batch {batch}, {sched}; quantiles: Adam {aux_lr} on the auxiliary loss |
| teacher | frozen {teacher} (uint8 TFLite weights dequantised to float) |
| checkpoint | `{ckpt}` (epoch {epoch}, step {step}), {which} |
| coder tables | {src}; {nch} channels, Lmax {lmax} |
| weights | {dtype} initializers |
| exported | {date} |

Measured bpp and accuracy: see `manifest.json` `measured` (filled by evaluation
with the real range coder at batch size 1).
""".format(name=name, split=split, title=TITLES[bb],
           teacher="MobileNetV1 0.75, run at 224x224" if bb == "mnv1" else "MobileNetV2", sshape="x".join(map(str, split_shape)),
           lshape="x".join(map(str, latent_shape)), arch=args["arch"], n_enc=n_enc, n_dec=n_dec,
           refine=("; the reference's three blocks + %d stride-1 residual block(s) at the latent's resolution"
                   % args["enc_refine"]) if args.get("enc_refine") else "",
           mid=("MobileNetV2's stem and blocks 0-3 (block 3 projecting to the latent) as the client encoder; "
                "decoder: 1x1 projection to %d, inverted residuals at that width (expansions %s), then three "
                "layers shaped as MobileNetV1's Conv2d_4_pointwise, Conv2d_5_depthwise and Conv2d_5_pointwise, "
                "started from its weights" % (args.get("width", 96), ", ".join(map(str, args.get("expansions")))))
           if bb == "mnv1" else
           ("MobileNetV2's stem and blocks 0-3 (block 3 projecting to the latent), inverted-residual decoder "
                "(expansions %s, the last two shaped as the backbone's blocks 4 and 5); a fresh run starts as the "
                "backbone" % ", ".join(map(str, args.get("expansions", models.MB_EXPANSIONS))))
           if args["arch"] == "mb" else ("yes" if args.get("mid_act") else "no (as the reference code)"),
           quirk_key="design" if args["arch"] == "mb" else "encoder quirk",
           enc_macs=models.conv_macs(model.encoder, torch.zeros(1, 3, 224, 224)) / 1e6,
           dec_macs=models.conv_macs(model.decoder, torch.zeros([1] + latent_shape)) / 1e6,
           data=corpus_text(args.get("corpus", "")), lmbda=args["lmbda"],
           kd=(" (each position's squared error weighted by (1 + s) / 2, s = the teacher's class-activation "
               "map of its top-1 class scaled to [0, 1]: saliency-guided distortion)" if args.get("saliency") else "")
           + ((" + %g T^2 KL(teacher's || student's class distribution), T = %g, the frozen tail run on both feature maps"
                % (args["kd"], args.get("kd_temp", 1.0))) if args.get("kd", 0) > 0 else "")
           + ((" + %g x the relative squared error of the tail's activations at %s (teacher's against "
               "restored features)" % (args["tail_mse"], args.get("tail_taps", "")))
              if args.get("tail_mse", 0) > 0 else ""),
           trained=("the decoder only: encoder and entropy model fixed from the init run, so the stream is unchanged"
                    if args.get("freeze_encoder") else "encoder, entropy model and decoder together")
           + ("; the decoder saw the latent rounded as the coder sends it (straight-through gradient; "
              "the rate term on additive noise)" if args.get("ste") else ""),
           crop=(("aspect-kept random-resized crops to 224 (squares of area %g-1 of the largest square)"
                  % args.get("crop_scale", 0.08)) if args.get("corpus") else
                 ("random-resized-crop 224 (area %g-1, ratio 3/4-4/3)" % args.get("crop_scale", 0.08)))
           if args.get("crop_scale", 0.08) < 1.0 else
           ("the largest square of each photo, resized to 224x224" if args.get("corpus")
            else "the whole 224x224 image (no rescaling crop)"),
           patch=((", trained on random %dx%d windows of those" % (args["patch"], args["patch"]))
                  if args.get("patch") else "")
           + ((", each blended with another of its batch (mixup, Beta(%g, %g) weights)"
               % (args["mixup"], args["mixup"])) if args.get("mixup", 0) > 0 else ""),
           epochs=epochs_text(ck), batch=args["batch"], sched=schedule_text(args),
           aux_lr=args["aux_lr"], ckpt=os.path.relpath(path, REPO), epoch=ck["epoch"],
           step=ck["global_step"], src=src,
           which=which_text(ck),
           nch=tables["quantized_cdf"].shape[0], lmax=tables["quantized_cdf"].shape[1],
           dtype="float16 conv weights" if a.fp16 else "float32",
           date=datetime.date.today().isoformat())
    write_atomic(os.path.join(out, "model_card.md"), card)
    sizes = {fn: os.path.getsize(os.path.join(out, fn)) for fn in ("encoder.onnx", "decoder.onnx")}
    print("export: %s (%s weights) -> %s (encoder %d B, decoder %d B, tables from %s, Lmax %d)"
          % (path, ck["weights"], out, sizes["encoder.onnx"], sizes["decoder.onnx"], src,
             tables["quantized_cdf"].shape[1]))
    if a.check:
        check(model, enc, dec)


if __name__ == "__main__":
    main()
