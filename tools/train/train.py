#!/usr/bin/python3
"""Head-distillation training of a split-inference compressor for MobileNetV2.

    train.py --lmbda 0.02 [--arch svbi] [--split s28] [--name NAME]

Loss per batch (per-image means; the ratio of the two terms is what the
method's per-batch sums give): sum over the split features of the squared
error between g_s(y_hat) and the frozen teacher's features + lmbda * bits,
bits = sum -log2 likelihoods of the latent.  The bottleneck's quantiles are
fitted by their auxiliary loss with a separate Adam every step.

Runs resume by themselves: rerunning the same command continues from
<work>/runs/<name>/ckpt_last.pt (written atomically every --ckpt-every steps
and at each epoch end; ckpt_epoch<k>.pt are kept).  Progress goes to
<work>/runs/<name>/train.log and log.jsonl.  <work> defaults to
<repo>/build-ml (override: --work or SPLITWIRE_WORK).

Encoder input = the backbone's convention, x = (255 * x01 - 128) / 128 for an
RGB image x01 in [0, 1] (recorded in the checkpoint for export).
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as Fn

HERE = os.path.dirname(os.path.abspath(__file__))
if __package__ in (None, ""):  # run as a file: the repository root is the import root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.models.mobilenet_v1 import MobileNetV1  # noqa: E402
from tools.models.mobilenet_v2 import MobileNetV2, from_unit  # noqa: E402
from tools.train import data, models  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
INPUT_NORM = {"mul": 255.0 / 128.0, "add": -1.0,
              "formula": "x = (255 * x01 - 128) / 128, RGB, NCHW, x01 in [0, 1]"}


def default_work():
    return os.environ.get("SPLITWIRE_WORK", os.path.join(REPO, "build-ml"))


def fmt_lmbda(v):
    return ("%g" % v).replace(".", "p")


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="svbi", choices=["svbi", "es", "mb"],
                    help="svbi (method.md's encoder + residual decoder), es (Entropic Student) or mb "
                         "(compute-balanced inverted-residual encoder and decoder, models.py; a fresh run "
                         "starts as the backbone itself)")
    ap.add_argument("--backbone", default="mnv2", choices=sorted(models.BACKBONES),
                    help="the teacher: mnv2 (MobileNetV2 1.0, the default) or mnv1 (MobileNetV1 0.75, run at "
                         "224 x 224; --arch mb, split conv5, a decoder of its own behind an --init run's encoder, "
                         "normally with --freeze-encoder)")
    ap.add_argument("--latent", type=int, default=48, help="latent channels (--arch mb)")
    ap.add_argument("--latent-gain", type=float, default=1.0,
                    help="a fresh --arch mb run's latent = gain x the backbone's block 3 output (the decoder "
                         "starts with the inverse), i.e. the latent's rounding grid in block-3 units is 1/gain")
    ap.add_argument("--fit-density", type=int, default=0,
                    help="a fresh run (no checkpoint) first fits the entropy model alone to its initial latent "
                         "for this many batches (Adam 1e-2 on the rate, encoder and decoder untouched): the "
                         "initial density is a wide logistic, and the rate it charges to a latent started "
                         "from the backbone is about twice the latent's entropy")
    ap.add_argument("--expansions", default=None,
                    help="--arch mb decoder: one inverted-residual block per entry, its expansion factor "
                         "(the last two start as the backbone's blocks 4 and 5 in a fresh run; default 12,12,12,6,6); "
                         "--backbone mnv1: the blocks at --width before its three conv5 layers (default 2,2)")
    ap.add_argument("--corpus", default="",
                    help="train on this label-free corpus of tools/train/corpus.py (e.g. broad: Imagenette "
                         "train + Caltech-101) with aspect-kept square crops, instead of the Imagenette "
                         "train cache")
    ap.add_argument("--split", default="s28", help="s28 (=block5, 32x28x28), s14 (=block12, 96x14x14) or blockK")
    ap.add_argument("--lmbda", type=float, required=True, help="rate weight, per bit")
    ap.add_argument("--name", default=None, help="run name (default <arch>_<split>_l<lmbda>)")
    ap.add_argument("--work", default=default_work())
    ap.add_argument("--epochs", type=int, default=None, help="default 5; on resume, given = extend/shorten")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-decay", type=float, default=0.6105, help="lr multiplier per epoch")
    ap.add_argument("--aux-lr", type=float, default=1e-2,
                    help="quantile optimizer lr (higher than the usual 1e-3: a 5-epoch Imagenette run is only ~3000 steps)")
    ap.add_argument("--width", type=int, default=96, help="decoder width (svbi)")
    ap.add_argument("--dec-blocks", type=int, default=2, help="decoder residual blocks (svbi)")
    ap.add_argument("--es-decoder", default="igdn", choices=["igdn", "res"],
                    help="--arch es decoder: igdn (method.md's inverse-GDN stack) or res (the SVBI "
                         "decoder with --width/--dec-blocks behind a stride-2 stage)")
    ap.add_argument("--enc-refine", type=int, default=0,
                    help="stride-1 residual blocks appended to the svbi encoder at the latent's resolution "
                         "(with --init from a run without them they start as the identity)")
    ap.add_argument("--mid-act", action="store_true",
                    help="ReLU between the encoder's two 3x3 convs (the reference has none)")
    ap.add_argument("--patch", type=int, default=None,
                    help="train on a random PATCHxPATCH window (multiple of 16) of each augmented 224 crop: "
                         "same image statistics, 224^2/PATCH^2 times cheaper (0 = full 224, the reference)")
    ap.add_argument("--crop-scale", type=float, default=0.08,
                    help="smallest area fraction of random-resized-crop (0.08 = torchvision's default; larger "
                         "keeps training crops closer to the sharpness of unscaled val images)")
    ap.add_argument("--kd", type=float, default=0.0,
                    help="weight of an output distillation term: the frozen tail runs on g_s(y_hat) and on the "
                         "teacher's own features, loss += kd * T^2 * KL(teacher || student) per image "
                         "(0 = off: head distillation only, the method's recipe)")
    ap.add_argument("--kd-temp", type=float, default=1.0, help="temperature T of --kd")
    ap.add_argument("--tail-mse", type=float, default=0.0,
                    help="weight W of a distillation term inside the frozen tail: the tail runs on g_s(y_hat) "
                         "and on the teacher's features, and loss += W * mean over --tail-taps of the batch's "
                         "relative squared error (sum of squared differences / sum of squares of the "
                         "teacher's activations); it weighs the split error by what survives the tail "
                         "(0 = off)")
    ap.add_argument("--tail-taps", default="9,12,15,16,last",
                    help="tail activations of --tail-mse: block indices after the split, 'last' = the "
                         "1280-channel conv before the pool")
    ap.add_argument("--saliency", action="store_true",
                    help="method.md's saliency-guided distortion: weight the squared error per position by "
                         "(1 + s) / 2, s = the teacher's class-activation map of its own top class, in [0, 1]")
    ap.add_argument("--mixup", type=float, default=0.0,
                    help="blend each training image with another of its batch, weight ~ Beta(A, A) per image "
                         "(0 = off); teacher and student see the same blend, so the targets stay exact and "
                         "the distillation sees inputs beyond the 9,469 photos")
    ap.add_argument("--freeze-encoder", action="store_true",
                    help="train the decoder only: encoder and entropy model stay those of --init, so the "
                         "stream and its rate do not change (the Entropic Student's second stage)")
    ap.add_argument("--ema", type=float, default=0.0,
                    help="also keep an exponential moving average of the weights with this decay per step "
                         "(e.g. 0.999, about the last 1000 steps; 0 = off); the epoch-end check measures both, "
                         "the checkpoint holds both and export.py takes the average by default")
    ap.add_argument("--ste", action="store_true",
                    help="the decoder (and the distillation terms behind it) sees the latent rounded as the "
                         "coder sends it, with a straight-through gradient to the encoder; the rate term "
                         "keeps the additive-noise proxy")
    ap.add_argument("--clip", type=float, default=0.0, help="gradient-norm clip (0 = off)")
    ap.add_argument("--device", default="cpu",
                    help="torch device (cpu, cuda, cuda:1 ...); a non-CPU device holds the whole uint8 train "
                         "set and augments each batch there")
    ap.add_argument("--cosine", action="store_true",
                    help="lr: linear warm-up over --warmup steps, then a cosine from --lr down to lr/100 "
                         "over --epochs (or --max-steps), or with --minutes over the wall-clock budget, "
                         "instead of --lr-decay")
    ap.add_argument("--warmup", type=int, default=100, help="warm-up steps of --cosine")
    ap.add_argument("--minutes", type=float, default=0.0,
                    help="wall-clock budget of the training loop: the run stops (and saves) when it is spent; "
                         "with --cosine the schedule follows the clock, so it ends with the budget even when "
                         "the speed varies (e.g. other runs sharing the device)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--ckpt-every", type=int, default=100, help="steps between ckpt_last.pt writes")
    ap.add_argument("--keep-epochs", action="store_true",
                    help="keep ckpt_epoch<k>.pt in --minutes runs too (they keep only ckpt_last.pt by default)")
    ap.add_argument("--ckpt-minutes", type=float, default=15.0,
                    help="also write ckpt_last.pt when this many minutes have passed since the last write")
    ap.add_argument("--log-every", type=int, default=5)
    ap.add_argument("--val-n", type=int, default=500, help="val images for the epoch-end check (0 = off)")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps in total (0 = all)")
    ap.add_argument("--train-n", type=int, default=0, help="use only the first N train images of a fixed shuffle (smoke tests)")
    ap.add_argument("--bench", type=int, default=0, help="time this many steps and exit (no files)")
    ap.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    ap.add_argument("--init", default=None,
                    help="start a new run from this checkpoint's weights (fresh optimizer, schedule and step count), "
                         "e.g. another lambda's run: it converges in far fewer steps than from scratch")
    a = ap.parse_args(argv)
    a.epochs_given = a.epochs is not None
    if a.epochs is None:
        a.epochs = 5
    a.patch_given = a.patch is not None
    if a.patch is None:
        a.patch = 0
    if a.backbone == "mnv1":
        a.split = models.V1_SPLIT_ALIASES.get(a.split, a.split)
    else:
        a.split = models.SPLIT_ALIASES.get(a.split, a.split)
    if a.expansions is None:
        a.expansions = list(models.V1_EXPANSIONS if a.backbone == "mnv1" else models.MB_EXPANSIONS)
    if isinstance(a.expansions, str):
        a.expansions = [int(v) for v in a.expansions.split(",") if v.strip()]
    if a.name is None:
        a.name = "%s_%s_l%s" % (a.arch, a.split, fmt_lmbda(a.lmbda))
    return a


def parse_taps(text):
    taps = []
    for t in text.split(","):
        t = t.strip()
        if t:
            taps.append(t if t == "last" else int(t))
    if not taps:
        raise SystemExit("--tail-taps: no taps given")
    return tuple(taps)


def save_atomic(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def split_params(model, freeze_encoder=False):
    main, aux = [], []
    for n, p in model.named_parameters():
        frozen = freeze_encoder and n.split(".")[0] in ("encoder", "bottleneck")
        if frozen:
            p.requires_grad_(False)
        if n.endswith("quantiles"):
            aux.append(p)
        elif not frozen:
            main.append(p)
    return main, aux


def set_train(model, freeze_encoder=False):
    """Training mode; a frozen encoder's bottleneck stays in eval mode, so the
    decoder learns from the rounded latent the coder sends, not a noisy one."""
    model.train()
    if freeze_encoder:
        model.encoder.eval()
        model.bottleneck.eval()


class Logger:
    def __init__(self, run_dir):
        self.text = open(os.path.join(run_dir, "train.log"), "a") if run_dir else None
        self.js = open(os.path.join(run_dir, "log.jsonl"), "a") if run_dir else None

    def __call__(self, msg):
        line = "%s %s" % (time.strftime("%Y-%m-%d %H:%M:%S"), msg)
        print(line, flush=True)
        if self.text:
            self.text.write(line + "\n")
            self.text.flush()

    def record(self, **kv):
        if self.js:
            self.js.write(json.dumps(kv) + "\n")
            self.js.flush()


def fresh_blocks(part, prefix, cls, taken):
    """Names (within `part`) of its `cls` blocks whose weights a warm start
    did not supply."""
    return [n for n, m in part.named_modules()
            if isinstance(m, cls) and "%s.%s.conv2.weight" % (prefix, n) not in taken]


@torch.no_grad()
def zero_second_conv(part, names):
    """Residual blocks whose second conv is zero add nothing to their input."""
    for n in names:
        blk = part.get_submodule(n)
        blk.conv2.weight.zero_()
        blk.conv2.bias.zero_()


@torch.no_grad()
def saliency_map(teacher, target, split, size):
    """Class-activation map of the teacher's own top-1 class (no labels
    needed), scaled per image to [0, 1] and resized to `size` (the split's
    grid).  The classifier is a 1x1 conv after a mean pool, so running it on
    the unpooled last features gives the per-position logits whose mean is the
    class score."""
    _, (last,) = teacher.tail_taps(target, split, ("last",))
    pos = teacher.classifier(last)
    cls = pos.mean(dim=(2, 3))[:, 1:].argmax(1) + 1  # 0 = background
    m = pos[torch.arange(len(cls), device=pos.device), cls]
    lo = m.amin(dim=(1, 2), keepdim=True)
    hi = m.amax(dim=(1, 2), keepdim=True)
    m = (m - lo) / (hi - lo).clamp_min(1e-6)
    return Fn.interpolate(m[:, None], size=size, mode="bilinear", align_corners=False)


def fit_density(model, a, train_u8, corpus, resident, n_train, train_ids, log, dev):
    """--fit-density: the entropy model alone learns the initial latent's
    density (noisy-latent bits, Adam 1e-2; quantiles by their auxiliary loss),
    on batches drawn with their own seed so the training's data order is
    unchanged."""
    b = model.bottleneck
    dens = [p for n, p in b.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam(dens, lr=1e-2)
    aux_opt = torch.optim.Adam([b.quantiles], lr=a.aux_lr)
    rs = np.random.RandomState(a.seed + 7919)
    t0 = time.time()
    for k in range(a.fit_density):
        gen = torch.Generator().manual_seed(a.seed * 1000003 + 7919 + k)
        sel = np.sort(train_ids[rs.choice(n_train, a.batch, replace=False)])
        if corpus:
            x = from_unit(data.augment_corpus(train_u8, sel, gen, a.crop_scale))
        elif resident is not None:
            x = from_unit(data.augment_resident(resident, sel, gen, a.crop_scale))
        else:
            x = from_unit(data.augment_batch(train_u8[sel], gen, a.crop_scale))
        if a.patch:
            x = data.random_window(x, a.patch, gen)
        with torch.no_grad():
            y = model.encoder(x.to(dev))
        _, lik = b(y)
        bits = (-torch.log2(lik)).sum(dim=(1, 2, 3)).mean()
        opt.zero_grad(set_to_none=True)
        bits.backward()
        opt.step()
        aux = b.aux_loss()
        aux_opt.zero_grad(set_to_none=True)
        aux.backward()
        aux_opt.step()
        if (k + 1) % 25 == 0 or k == 0 or k + 1 == a.fit_density:
            log("fit density %d/%d: bpp %.4f aux %.1f (%.0f s)"
                % (k + 1, a.fit_density, float(bits) / (x.shape[2] * x.shape[3]), float(aux), time.time() - t0))
    model.zero_grad(set_to_none=True)


def val_subset(n):
    from tools.models import imagenette
    items = imagenette.listing("val")
    perm = np.random.RandomState(0).permutation(len(items))[:n]
    return np.sort(perm)


def fidelity_sums(logits, ref):
    """Fidelity of a batch of class scores to the reference's (the backbone
    on its own features): the number of rows whose top-1 class (background
    excluded) is the reference's, and the sum of KL(ref || logits) over all
    outputs, in nats."""
    agree = int((logits[:, 1:].argmax(1) == ref[:, 1:].argmax(1)).sum())
    ref_logp = Fn.log_softmax(ref, 1)
    kl = float((ref_logp.exp() * (ref_logp - Fn.log_softmax(logits, 1))).sum())
    return agree, kl


@torch.no_grad()
def evaluate(model, teacher, split, val_u8, val_lab, idx, bs=50, device="cpu"):
    """Eval-mode (rounded latent) estimate: bpp from the likelihoods, sum-MSE
    per image, top-1 through the teacher's tail (1000-way and 10-way), and
    the fidelity to the teacher on the same images: how often the top-1 class
    is its own, and the mean KL(teacher || this) over all outputs.  Leaves the
    model in eval mode."""
    from tools.models import imagenette
    ids = torch.tensor([k for _, _, _, k in imagenette.classes()], device=device) + 1
    model.eval()
    tot = dict(bits=0.0, mse=0.0, acc1000=0, acc10=0, t_acc1000=0, t_acc10=0, agree=0, kl=0.0, n=0)
    for s in range(0, len(idx), bs):
        sel = idx[s:s + bs]
        x = from_unit(data.to_tensor(val_u8[sel])).to(device)
        lab = torch.from_numpy(val_lab[sel]).to(device)
        target = teacher.head(x, split)
        out, lik, _ = model(x)
        tot["bits"] += float((-torch.log2(lik)).sum())
        tot["mse"] += float(((out - target) ** 2).sum())
        logits, t_logits = teacher.tail(out, split), teacher.tail(target, split)
        for key, lg in (("", logits), ("t_", t_logits)):
            tot[key + "acc1000"] += int((lg[:, 1:].argmax(1) == lab[:, 1]).sum())
            tot[key + "acc10"] += int((lg[:, ids].argmax(1) == lab[:, 0]).sum())
        agree, kl = fidelity_sums(logits, t_logits)
        tot["agree"] += agree
        tot["kl"] += kl
        tot["n"] += len(sel)
    n = tot["n"]
    return dict(n=n, bpp=tot["bits"] / n / (224 * 224), mse=tot["mse"] / n,
                acc1000=tot["acc1000"] / n, acc10=tot["acc10"] / n, agree=tot["agree"] / n, kl=tot["kl"] / n,
                teacher_acc1000=tot["t_acc1000"] / n, teacher_acc10=tot["t_acc10"] / n)


def main(argv=None):
    a = parse(argv)
    torch.set_num_threads(a.threads)
    run_dir = None if a.bench else os.path.join(a.work, "runs", a.name)
    if run_dir:
        os.makedirs(run_dir, exist_ok=True)
    log = Logger(run_dir)

    ckpt_path = os.path.join(run_dir, "ckpt_last.pt") if run_dir else None
    ckpt = None
    if ckpt_path and os.path.exists(ckpt_path) and not a.fresh:
        ckpt = models.load_checkpoint(ckpt_path)
        keep = {"threads", "ckpt_every", "ckpt_minutes", "log_every", "max_steps", "work", "epochs_given",
                "keep_epochs"}
        keep.add("patch_given")
        if a.epochs_given:
            keep.add("epochs")
        if a.patch_given:
            keep.add("patch")  # e.g. finish a patch-trained run on full crops
        for k, v in ckpt["args"].items():
            if k not in keep:
                setattr(a, k, v)
        log("resuming %s at epoch %d step %d (global %d)"
            % (ckpt_path, ckpt["epoch"], ckpt["step_in_epoch"], ckpt["global_step"]))

    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest conv algorithms once
    backbone = getattr(a, "backbone", "mnv2")
    teacher = (MobileNetV1 if backbone == "mnv1" else MobileNetV2).from_tflite().to(dev)
    model = models.build(a.arch, a.split, width=a.width, n_blocks=a.dec_blocks, mid_act=a.mid_act,
                         es_decoder=getattr(a, "es_decoder", "igdn"),
                         enc_refine=getattr(a, "enc_refine", 0), latent=getattr(a, "latent", 48),
                         expansions=getattr(a, "expansions", models.MB_EXPANSIONS), backbone=backbone).to(dev)
    model.ste = getattr(a, "ste", False)
    main_p, aux_p = split_params(model, a.freeze_encoder)
    opt = torch.optim.Adam(main_p, lr=a.lr)
    aux_opt = torch.optim.Adam(aux_p, lr=a.aux_lr)
    epoch, step_in_epoch, global_step = 0, 0, 0
    if ckpt:
        model.load_state_dict(ckpt["model"])
        # A kept checkpoint (tools/train/keep.py) has no optimizer state: Adam
        # then starts afresh from the weights.
        if "opt" in ckpt:
            opt.load_state_dict(ckpt["opt"])
            aux_opt.load_state_dict(ckpt["aux_opt"])
        else:
            log("no optimizer state in the checkpoint: Adam restarts from the weights")
        epoch, step_in_epoch, global_step = ckpt["epoch"], ckpt["step_in_epoch"], ckpt["global_step"]
        if "torch_rng" in ckpt:
            torch.set_rng_state(ckpt["torch_rng"])
    else:
        if a.init:
            init = models.load_checkpoint(a.init)
            # Tensors whose name and shape match are taken (e.g. the encoder and
            # bottleneck of a run with another decoder); the rest keep their
            # fresh initialisation.
            own = model.state_dict()
            init_w, init_kind = models.checkpoint_weights(init)
            take = {k: v for k, v in init_w.items() if k in own and own[k].shape == v.shape}
            init_backbone = init.get("backbone", models.BACKBONES["mnv2"])
            if init_backbone != models.BACKBONES[backbone]:
                # Another backbone's decoder fits nothing here: the encoder and
                # its entropy model only, and the decoder's end as the teacher.
                take = {k: v for k, v in take.items() if k.split(".")[0] in ("encoder", "bottleneck")}
                how = models.init_v1_tail(model.decoder, teacher) if backbone == "mnv1" else "fresh decoder"
                log("init from a %s run: encoder and entropy model only; %s" % (init_backbone, how))
            model.load_state_dict(take, strict=False)
            # A residual block added to a trained decoder (more --dec-blocks than
            # the init run) starts with its last conv at zero, so it passes its
            # input through and the init's function is kept (up to one more
            # LeakyReLU on already-rectified values).
            grown = fresh_blocks(model.decoder, "decoder", models.ResBlock, take)
            if len(grown) < sum(isinstance(m, models.ResBlock) for m in model.decoder.modules()):
                zero_second_conv(model.decoder, grown)
                if grown:
                    log("decoder grown by %d residual block(s), started as pass-through: %s"
                        % (len(grown), ", ".join(grown)))
            # Encoder refinement blocks the init run lacks start as the identity
            # (second conv at zero), so the latent and its rate are kept.
            new_ref = fresh_blocks(model.encoder, "encoder", models.EncRefine, take)
            zero_second_conv(model.encoder, new_ref)
            if new_ref:
                log("encoder grown by %d refinement block(s), started as the identity: %s"
                    % (len(new_ref), ", ".join(new_ref)))
            log("weights from %s (its step %d, %s weights): %d of %d tensors, fresh: %s"
                % (a.init, init["global_step"], init_kind, len(take), len(own),
                   ", ".join(sorted(set(k.split(".")[0] + "." + k.split(".")[1] for k in own if k not in take)))
                   or "none"))
            del init
        elif backbone != "mnv2":
            raise SystemExit("--backbone %s trains a decoder behind a trained encoder: give --init" % backbone)
        elif a.arch == "mb":
            log("fresh mb model from the backbone: "
                + models.init_from_backbone(model, teacher, getattr(a, "latent_gain", 1.0)))
    ema = None
    if a.ema > 0:
        ema = models.EMA(model, a.ema, ("encoder.", "bottleneck.") if a.freeze_encoder else ())
        if ckpt and "ema" in ckpt:
            ema.model.load_state_dict(ckpt["ema"])
        elif ckpt:
            log("no EMA weights in the checkpoint: the average restarts from the weights")
    if not ckpt and run_dir:
        with open(os.path.join(run_dir, "args.json"), "w") as f:
            json.dump(vars(a), f, indent=2)
    n_par = sum(p.numel() for p in model.parameters())
    log("%s: arch %s split %s lambda %g, %d parameters (encoder %d), epochs %d batch %d lr %g, device %s"
        % (a.name, a.arch, a.split, a.lmbda, n_par, sum(p.numel() for p in model.encoder.parameters()),
           a.epochs, a.batch, a.lr, dev))
    with torch.no_grad():
        probe = torch.zeros(1, 3, 224, 224, device=dev)
        y_probe = model.encoder(probe)
        log("MACs at 224x224: encoder %.1fM, decoder %.1fM (conv layers)"
            % (models.conv_macs(model.encoder, probe) / 1e6, models.conv_macs(model.decoder, y_probe) / 1e6))

    corpus = getattr(a, "corpus", "")
    if corpus:
        train_u8 = data.Corpus(a.work, corpus)
        log("corpus %s: %d photos at their own aspect" % (train_u8.dir, len(train_u8)))
    else:
        train_u8, train_lab = data.load_cache(a.work, "train")
    resident = None
    if dev.type != "cpu" and corpus:
        raise SystemExit("--corpus trains on the CPU path only (photos of many sizes)")
    if dev.type != "cpu":
        resident = torch.from_numpy(np.ascontiguousarray(train_u8)).to(dev)
        log("train set resident on %s: %d images, %.2f GB" % (dev, len(train_u8), resident.numel() / 1e9))
    train_ids = np.arange(len(train_u8))
    if a.train_n:
        train_ids = np.sort(np.random.RandomState(1).permutation(len(train_u8))[:a.train_n])
    n_train = len(train_ids)
    steps_per_epoch = n_train // a.batch  # drop the last partial batch
    val_idx = val_subset(a.val_n) if a.val_n else None
    val_u8 = val_lab = None
    if val_idx is not None and not a.bench:
        val_u8, val_lab = data.load_cache(a.work, "val")

    def state():
        st = dict(model=model.state_dict(), opt=opt.state_dict(), aux_opt=aux_opt.state_dict(),
                  epoch=epoch, step_in_epoch=step_in_epoch, global_step=global_step,
                  args=vars(a), torch_rng=torch.get_rng_state(), input_norm=INPUT_NORM,
                  backbone=models.BACKBONES[backbone], time=time.time(), elapsed=time.time() - t_start)
        if ema is not None:
            st["ema"] = ema.model.state_dict()
        return st

    taps = parse_taps(a.tail_taps) if a.tail_mse > 0 else ()
    k_split = teacher.split_index(a.split)
    bad = [t for t in taps if t != "last" and not k_split < t < len(teacher.blocks)]
    if bad:
        raise SystemExit("--tail-taps %s: blocks after the split are %d..%d"
                         % (",".join(map(str, bad)), k_split + 1, len(teacher.blocks) - 1))
    set_train(model, a.freeze_encoder)
    win = dict(loss=0.0, mse=0.0, bits=0.0, aux=0.0, n=0, t=time.time())
    bench_t0 = None
    last_save = time.time()
    total_steps = a.max_steps or a.epochs * steps_per_epoch
    # The clock of --minutes runs across resumes: a resumed run goes on with
    # the budget and the cosine where the checkpoint left them.
    t_start = time.time() - (ckpt.get("elapsed", 0.0) if ckpt else 0.0)

    def cosine_lr(step):
        if step < a.warmup:  # global_step counts from 0 in every new (or --init) run
            return a.lr * (step + 1) / a.warmup
        if a.minutes:
            f = (time.time() - t_start) / (60.0 * a.minutes)
        else:
            f = (step - a.warmup) / max(1, total_steps - a.warmup)
        return a.lr * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, f))))

    def check_val(at):
        checks = [("val", model)] + ([("val_ema", ema.model)] if ema is not None else [])
        for kind, net in checks:
            t0 = time.time()
            ev = evaluate(net, teacher, a.split, val_u8, val_lab, val_idx, device=dev)
            if net is model:
                set_train(model, a.freeze_encoder)  # evaluate() left it in eval mode
            ev.update(epoch=at, step=global_step, kind=kind, seconds=time.time() - t0)
            log.record(**ev)
            log("%s after epoch %.4g (%d images, rounded latent): bpp %.4f mse %.1f top-1 1000-way %.2f%% "
                "10-way %.2f%% (teacher %.2f%% / %.2f%%), agrees with the teacher %.2f%%, KL %.4f"
                % (kind, at, ev["n"], ev["bpp"], ev["mse"], 100 * ev["acc1000"], 100 * ev["acc10"],
                   100 * ev["teacher_acc1000"], 100 * ev["teacher_acc10"], 100 * ev["agree"], ev["kl"]))

    if not ckpt and getattr(a, "fit_density", 0) > 0 and not a.bench:
        fit_density(model, a, train_u8, corpus, resident, n_train, train_ids, log, dev)
        if ema is not None:  # the average starts from the fitted density
            ema.model.load_state_dict(model.state_dict())

    while epoch < a.epochs:
        lr = a.lr * a.lr_decay ** epoch
        for g in opt.param_groups:
            g["lr"] = lr
        perm = np.random.RandomState(a.seed + epoch).permutation(n_train)
        while step_in_epoch < steps_per_epoch:
            if a.max_steps and global_step >= a.max_steps:
                if run_dir:
                    save_atomic(state(), ckpt_path)
                log("stopping at --max-steps %d" % a.max_steps)
                return
            if a.minutes and time.time() - t_start > 60 * a.minutes:
                if run_dir:
                    save_atomic(state(), ckpt_path)
                log("stopping after --minutes %g at step %d (epoch %d)" % (a.minutes, global_step, epoch))
                if val_idx is not None and step_in_epoch > 0:
                    check_val(epoch + step_in_epoch / steps_per_epoch)  # the weights the run ends with
                return
            if a.cosine:
                lr = cosine_lr(global_step)
                for g in opt.param_groups:
                    g["lr"] = lr
            gen = torch.Generator().manual_seed(a.seed * 1000003 + global_step)
            sel = np.sort(train_ids[perm[step_in_epoch * a.batch:(step_in_epoch + 1) * a.batch]])
            if corpus:
                x = from_unit(data.augment_corpus(train_u8, sel, gen, a.crop_scale))
            elif resident is not None:
                x = from_unit(data.augment_resident(resident, sel, gen, a.crop_scale))
            else:
                x = from_unit(data.augment_batch(train_u8[sel], gen, a.crop_scale))
            if a.mixup > 0:
                x = data.mixup(x, a.mixup, a.seed * 1000003 + global_step)
            if a.patch:
                x = data.random_window(x, a.patch, gen)
            with torch.no_grad():
                target = teacher.head(x, a.split)
            out, lik, _ = model(x)
            err = (out - target) ** 2
            mse = err.sum(dim=(1, 2, 3)).mean()
            bits = (-torch.log2(lik)).sum(dim=(1, 2, 3)).mean()
            if a.saliency:
                sal = saliency_map(teacher, target, a.split, target.shape[2:])
                loss = (0.5 * err * (1.0 + sal)).sum(dim=(1, 2, 3)).mean() + a.lmbda * bits
            else:
                loss = mse + a.lmbda * bits
            if a.kd > 0 or taps:
                with torch.no_grad():
                    t_logits, t_taps = teacher.tail_taps(target, a.split, taps)
                s_logits, s_taps = teacher.tail_taps(out, a.split, taps)
            if a.kd > 0:
                t_logp = Fn.log_softmax(t_logits / a.kd_temp, dim=1)
                s_logp = Fn.log_softmax(s_logits / a.kd_temp, dim=1)
                kl = (t_logp.exp() * (t_logp - s_logp)).sum(dim=1).mean() * a.kd_temp ** 2
                loss = loss + a.kd * kl
                win["kl"] = win.get("kl", 0.0) + kl.detach()
            if a.tail_mse > 0:
                rel = sum(((s - t) ** 2).sum() / (t ** 2).sum().clamp_min(1e-6)
                          for s, t in zip(s_taps, t_taps)) / len(t_taps)
                loss = loss + a.tail_mse * rel
                win["tail"] = win.get("tail", 0.0) + rel.detach()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if a.clip > 0:
                torch.nn.utils.clip_grad_norm_(main_p, a.clip)
            opt.step()
            if a.freeze_encoder:
                aux = torch.zeros((), device=dev)
            else:
                aux = model.bottleneck.aux_loss()
                aux_opt.zero_grad(set_to_none=True)
                aux.backward()
                aux_opt.step()

            if ema is not None:
                ema.update(global_step)
            step_in_epoch += 1
            global_step += 1
            # Tensors, summed on the device: a float() per step would wait for
            # the device every step.
            win["loss"] += loss.detach()
            win["mse"] += mse.detach()
            win["bits"] += bits.detach()
            win["aux"] += aux.detach()
            win["n"] += 1
            if a.bench:
                if global_step == 2:
                    bench_t0 = time.time()  # skip warm-up steps
                if global_step >= a.bench + 2:
                    dt = time.time() - bench_t0
                    log("bench: %d steps of batch %d in %.1f s = %.2f images/s (threads %d)"
                        % (a.bench, a.batch, dt, a.bench * a.batch / dt, a.threads))
                    return
                continue
            if global_step % a.log_every == 0:
                dt = time.time() - win["t"]
                n = win["n"]
                px = float(x.shape[2] * x.shape[3])
                rec = dict(step=global_step, epoch=epoch, it=step_in_epoch, lr=lr,
                           loss=float(win["loss"]) / n, mse=float(win["mse"]) / n,
                           bpp=float(win["bits"]) / n / px, aux=float(win["aux"]) / n,
                           img_s=n * a.batch / dt, time=time.time())
                for key in ("kl", "tail"):
                    if key in win:
                        rec[key] = float(win[key]) / n
                log.record(**rec)
                log("ep %d it %d/%d step %d: loss %.1f mse %.1f bpp %.4f aux %.1f%s lr %.2e %.2f img/s"
                    % (epoch, step_in_epoch, steps_per_epoch, global_step, rec["loss"], rec["mse"],
                       rec["bpp"], rec["aux"], "".join(" %s %.3f" % (k, rec[k]) for k in ("kl", "tail") if k in rec), lr, rec["img_s"]))
                win = dict(loss=0.0, mse=0.0, bits=0.0, aux=0.0, n=0, t=time.time())
            if global_step % a.ckpt_every == 0 or time.time() - last_save > 60 * a.ckpt_minutes:
                save_atomic(state(), ckpt_path)
                last_save = time.time()
        # epoch end
        epoch += 1
        step_in_epoch = 0
        save_atomic(state(), ckpt_path)
        # A clock-bound run's epochs are short and many: ckpt_last.pt only,
        # unless asked for.
        if not a.minutes or getattr(a, "keep_epochs", False):
            save_atomic(state(), os.path.join(run_dir, "ckpt_epoch%d.pt" % epoch))
        if val_idx is not None:
            check_val(epoch)
    log("done: %d epochs, %d steps" % (epoch, global_step))
    with open(os.path.join(run_dir, "DONE"), "w") as f:
        f.write("%d\n" % global_step)


if __name__ == "__main__":
    main()
