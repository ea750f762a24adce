#!/usr/bin/python3
"""Quick self-checks of the training and export code (CPU, ~1 minute).

    selftest.py [--keep DIR]   # DIR: also leave the exported test bundles there

1. the entropy bottleneck's likelihoods over the integers sum to ~1 and its
   table pmfs (with the tail bin) too;
2. the bottleneck's pmfs turn into valid coder tables (tools/codec/tables.py);
3. untrained svbi and es models export, and the ONNX graphs (run by
   tools/models/onnx_eval.py) reproduce PyTorch's symbols exactly and its
   features to float rounding;
4. the training terms: --mixup is a per-image convex blend, reproducible from
   its seed; the backbone's tail with taps gives the plain tail's logits and
   the tapped activations (needs the backbone from ../shared);
5. the weights' moving average (--ema), the checkpoints' choice of
   weights and soup.py's average of runs; --ste's decoder input (the
   coder's rounded latent) and its straight-through gradient;
6. train.py's loop, end to end on 32 images, with a resume and a warm start
   (needs the image cache of an earlier training run).
"""

import argparse
import os
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
if __package__ in (None, ""):  # run as a file: the repository root is the import root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.models import onnx_eval  # noqa: E402
from tools.train import export, models  # noqa: E402
from tools.train.entropy import EntropyBottleneck  # noqa: E402


def check_density():
    torch.manual_seed(0)
    eb = EntropyBottleneck(4)
    with torch.no_grad():
        for p in list(eb.matrices) + list(eb.biases) + list(eb.factors):
            p.add_(0.3 * torch.randn_like(p))
    grid = torch.arange(-200, 201, dtype=torch.float32)
    v = grid.view(1, 1, -1).expand(4, 1, -1).contiguous()
    lik = eb._likelihood(v)
    s = lik.sum(-1).view(-1)
    assert torch.all((s - 1).abs() < 1e-3), s
    p = eb.pmfs()
    tot = [float(p["pmf"][c, :p["pmf_length"][c]].sum() + p["tail_mass"][c]) for c in range(4)]
    print("density: likelihood sums %s, table pmf+tail sums %s" % (s.detach().numpy().round(5),
                                                                    np.round(tot, 5)))
    y = torch.randn(2, 4, 5, 5, requires_grad=True)
    eb.train()
    _, l = eb(y)
    (-torch.log2(l)).sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all()
    a = eb.aux_loss()
    a.backward()
    assert eb.quantiles.grad is not None


def check_tables():
    try:
        from tools.codec import tables as codec
    except ImportError:
        print("tables: tools/codec/tables.py not found, skipped")
        return
    rng = np.random.RandomState(1)
    for trial in range(20):
        c = 3
        lengths = rng.randint(1, 40, size=c)
        pmf = rng.exponential(size=(c, lengths.max())).astype(np.float32)
        pmf[rng.rand(*pmf.shape) < 0.3] *= 1e-7  # near-empty bins
        pmf /= pmf.sum(1, keepdims=True)
        tail = (rng.rand(c) * 1e-6).astype(np.float32)
        off = -rng.randint(0, 10, size=c)
        med = rng.randn(c).astype(np.float32)
        codec.check_tables(codec.tables_from_pmfs(pmf, lengths, tail, off, med))
    print("tables: 20 random pmf sets give valid tables (tools/codec/tables.py)")


def check_export(keep):
    torch.manual_seed(0)
    out_root = keep or tempfile.mkdtemp(prefix="spw_selftest_")
    for arch, kw in (("svbi", {}), ("es", {}), ("svbi_refine", {"enc_refine": 1}), ("mb", {})):
        m = models.build(arch.split("_")[0], "block5", **kw)
        m.eval()
        with torch.no_grad():  # make the latent spread over several symbols
            m.bottleneck.quantiles.copy_(torch.tensor([-8.0, 0.3, 9.0]).repeat(m.bottleneck.channels, 1, 1))
        src, t = export.coder_tables(m.bottleneck)
        x = torch.randn(1, 3, 224, 224)
        with torch.no_grad():
            y = m.encoder(x)
            f = m.decoder(y)
        lat, spl = list(y.shape[1:]), list(f.shape[1:])
        enc = export.build_encoder(m, t, lat, fp16=False)
        dec = export.build_decoder(m, t, lat, spl, fp16=False)
        with torch.no_grad():
            y = m.encoder(x)
            sym = m.bottleneck.symbols(y)
            feat = m.decoder(sym.float() + m.bottleneck.medians().view(1, -1, 1, 1))
        s_onnx = onnx_eval.run(enc, {"input": x.numpy()})["symbols"]
        f_onnx = onnx_eval.run(dec, {"symbols": s_onnx})["features"]
        ds = int(np.abs(s_onnx.astype(np.int64) - sym.numpy()).max())
        df = float(np.abs(f_onnx - feat.numpy()).max())
        assert ds == 0 and df < 1e-3, (arch, ds, df)
        d = os.path.join(out_root, arch)
        os.makedirs(d, exist_ok=True)
        import onnx
        onnx.save(enc, os.path.join(d, "encoder.onnx"))
        onnx.save(dec, os.path.join(d, "decoder.onnx"))
        np.save(os.path.join(d, "x.npy"), x.numpy())
        np.save(os.path.join(d, "symbols.npy"), sym.numpy())
        np.save(os.path.join(d, "features.npy"), feat.numpy())
        print("export %s: symbols exact, features max diff %.2g, Lmax %d (%s) -> %s"
              % (arch, df, t["quantized_cdf"].shape[1], src, d))


def backbone_macs(net, split):
    """Conv MACs of the backbone (whole, and up to the split) at 224 x 224,
    by hooks on its TFConv modules (they call conv2d with their own padding)."""
    from tools.models.mobilenet_v2 import TFConv
    seen = []

    def hook(m, i, o):
        w = m.conv.weight
        seen.append((m, o[0].numel() * w.shape[1] * w.shape[2] * w.shape[3]))

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, TFConv)]
    with torch.no_grad():
        net(torch.zeros(1, 3, 224, 224))
        total = sum(v for _, v in seen)
        seen.clear()
        net.head(torch.zeros(1, 3, 224, 224), split)
        head = sum(v for _, v in seen)
    for h in hs:
        h.remove()
    return total, head


def check_mb():
    """The compute-balanced family: a fresh model started from the backbone
    is the backbone (before rounding), and its encoder costs at most a third
    of the backbone's MACs, its decoder at most the layers it replaces."""
    from tools.models.mobilenet_v2 import MobileNetV2
    net = MobileNetV2.from_tflite()
    m = models.build("mb", "block5").eval()
    models.init_from_backbone(m, net)
    x = torch.rand(2, 3, 224, 224) * 2 - 1
    with torch.no_grad():
        ref = net.head(x, "block5")
        y = m.encoder(x)
        d = float((m.decoder(y) - ref).abs().max())
        assert d < 1e-4, d
        assert float((y[:, :32] - net.head(x, "block3")).abs().max()) < 1e-4
        half = models.build("mb", "block5").eval()
        models.init_from_backbone(half, net, gain=0.5)
        yh = half.encoder(x)
        assert float((yh[:, :32] - 0.5 * y[:, :32]).abs().max()) < 1e-4
        assert float((half.decoder(yh) - ref).abs().max()) < 1e-4
    total, head = backbone_macs(net, "block5")
    enc = models.conv_macs(m.encoder, torch.zeros(1, 3, 224, 224))
    dec = models.conv_macs(m.decoder, torch.zeros(1, m.encoder.latent_channels, 28, 28))
    assert enc <= total / 3 and dec <= head, (enc, dec, total, head)
    print("mb: starts as the backbone (max diff %.1g; also with latent gain 0.5); MACs encoder %.1fM <= %.1fM (a third of %.1fM), "
          "decoder %.1fM <= %.1fM (backbone up to block5)"
          % (d, enc / 1e6, total / 3e6, total / 1e6, dec / 1e6, head / 1e6))


def check_corpus_augment():
    """Aspect-kept crops of photos of any size: squares inside the photo,
    resized to 224, values in [0, 1]."""
    from tools.train import data
    g = torch.Generator().manual_seed(5)
    rs = np.random.RandomState(5)
    for _ in range(200):
        h, w = rs.randint(40, 400, size=2)
        lo = float(rs.choice([0.08, 0.35, 1.0]))
        i, j, c = data.square_crop_params(g, h, w, (lo, 1.0))
        assert 1 <= c <= min(h, w) and 0 <= i <= h - c and 0 <= j <= w - c, (h, w, i, j, c)
        if lo == 1.0:
            assert c == min(h, w)
    photos = [rs.randint(0, 256, size=(h, w, 3)).astype(np.uint8) for h, w in ((180, 300), (224, 224), (400, 256))]
    x = data.augment_corpus(photos, [0, 1, 2], g, 0.35)
    assert x.shape == (3, 3, 224, 224) and float(x.min()) >= 0 and float(x.max()) <= 1
    print("corpus: 200 square crops inside photos of random sizes; a batch of three photos -> 3x3x224x224")


def check_training_terms():
    from tools.train import data
    from tools.models.mobilenet_v2 import MobileNetV2
    g = torch.Generator().manual_seed(3)
    x = torch.rand(8, 1, 1, 1, generator=g).expand(8, 3, 16, 16).contiguous()
    a, b = data.mixup(x, 0.4, 17), data.mixup(x, 0.4, 17)
    assert torch.equal(a, b), "mixup not reproducible from its seed"
    flat = a.view(8, -1)
    assert float((flat.max(1).values - flat.min(1).values).max()) < 1e-6  # a blend of constants is constant
    assert float(a.min()) >= float(x.min()) - 1e-6 and float(a.max()) <= float(x.max()) + 1e-6
    assert not torch.equal(a, data.mixup(x, 0.4, 18))
    net = MobileNetV2.from_tflite()
    f = torch.randn(2, 32, 14, 14, generator=g)
    with torch.no_grad():
        plain = net.tail(f, "block5")
        logits, taps = net.tail_taps(f, "block5", (9, 16, "last"))
    assert torch.equal(plain, logits)
    shapes = [tuple(t.shape[1:]) for t in taps]
    assert shapes == [(64, 7, 7), (320, 4, 4), (1280, 4, 4)], shapes
    from tools.train import train
    with torch.no_grad():
        # the premise of the map: per-position logits average to the class scores
        pos = net.classifier(taps[2])
        assert torch.allclose(pos.mean(dim=(2, 3)), logits, atol=1e-4)
        sal = train.saliency_map(net, f, "block5", (14, 14))
    assert tuple(sal.shape) == (2, 1, 14, 14), sal.shape
    flat = sal.view(2, -1)
    assert float(flat.min()) >= -1e-6 and float(flat.max()) <= 1 + 1e-6
    assert float((flat.max(1).values - flat.min(1).values).min()) > 0.5  # each map spans its range
    print("training terms: mixup blends reproducibly, tail taps %s, saliency maps in [0, 1]" % shapes)


def check_ema():
    net = models.build("svbi", "s28", width=16, n_blocks=1)
    ema = models.EMA(net, 0.9)
    w0 = net.decoder.out.bias.detach().clone()
    with torch.no_grad():
        net.decoder.out.bias.add_(1.0)
        net.bottleneck.quantiles.add_(1.0)
    ema.update(1000)  # past the early-step ramp: decay 0.9
    got = ema.model.decoder.out.bias
    assert torch.allclose(got, w0 + 0.1), "EMA step: expected 0.9 * old + 0.1 * new"
    ema.update(0)  # update 0: decay 1/10, the average follows the weights closely
    assert torch.allclose(ema.model.decoder.out.bias, (w0 + 0.1) * 0.1 + (w0 + 1.0) * 0.9)
    assert not ema.model.decoder.out.bias.requires_grad
    ck = {"model": net.state_dict(), "ema": ema.model.state_dict()}
    assert models.checkpoint_weights(ck)[1] == "ema"
    assert models.checkpoint_weights(ck, "live")[1] == "live"
    assert models.checkpoint_weights({"model": ck["model"]})[1] == "live"
    try:
        models.checkpoint_weights({"model": ck["model"]}, "ema")
        raise AssertionError("asked for EMA weights of a run without them")
    except ValueError:
        pass
    print("ema: averages float state, follows early steps, checkpoints pick live or ema")
    check_soup(net, ema)


def check_soup(net, ema):
    from tools.train import soup
    tmp = tempfile.mkdtemp(prefix="spw_selftest_soup_")
    try:
        other = models.build("svbi", "s28", width=16, n_blocks=1)
        runs = []
        for name, ck in (("a", {"model": net.state_dict(), "ema": ema.model.state_dict()}),
                         ("b", {"model": other.state_dict()})):
            os.makedirs(os.path.join(tmp, name))
            ck.update(args={"arch": "svbi", "name": name}, epoch=1, global_step=7)
            torch.save(ck, os.path.join(tmp, name, "ckpt_last.pt"))
            runs.append(os.path.join(tmp, name))
        soup.main([os.path.join(tmp, "s")] + runs)
        s = models.load_checkpoint(os.path.join(tmp, "s", "ckpt_last.pt"))
        k = "decoder.out.bias"
        assert torch.allclose(s["model"][k], (ema.model.state_dict()[k] + other.state_dict()[k]) / 2)
        assert [e["weights"] for e in s["soup"]] == ["ema", "live"] and s["args"]["name"] == "s"
        wide = models.build("svbi", "s28", width=24, n_blocks=1)
        os.makedirs(os.path.join(tmp, "c"))
        torch.save({"model": wide.state_dict(), "args": {}}, os.path.join(tmp, "c", "ckpt_last.pt"))
        try:
            soup.main([os.path.join(tmp, "t"), runs[0], os.path.join(tmp, "c")])
            raise AssertionError("soup of two architectures")
        except SystemExit as e:
            assert "another architecture" in str(e), e
    finally:
        import shutil
        shutil.rmtree(tmp)
    print("soup: the mean of each run's exported weights; other architectures refused")


def check_ste():
    torch.manual_seed(0)
    net = models.build("svbi", "s28", width=16, n_blocks=1)
    with torch.no_grad():
        net.bottleneck.quantiles[:, 0, 1].uniform_(-0.4, 0.4)  # medians off the integer grid
    seen = []
    net.decoder.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    net.train()
    x = torch.randn(2, 3, 64, 64)
    net.ste = True
    out, lik, y = net(x)
    y.retain_grad()
    seen[-1].retain_grad()
    out.sum().backward()
    med = net.bottleneck.medians().detach().view(1, -1, 1, 1)
    q = seen[-1] - med
    assert torch.allclose(q, torch.round(q), atol=1e-5), "decoder input off the medians' grid"
    assert torch.allclose(seen[-1], torch.round(y - med) + med, atol=1e-5)
    assert torch.equal(y.grad, seen[-1].grad), "the rounding is not straight-through"
    net.ste = False
    net(x)
    q = seen[-1] - med
    assert not torch.allclose(q, torch.round(q), atol=1e-3), "without --ste the decoder should see noise"
    print("ste: the decoder sees the coder's rounded latent, the encoder gets its gradient unchanged")


def check_train_loop():
    """train.py end to end on 32 real train images: every loss term and the
    EMA, an epoch-end check, a resume and a warm start into a grown decoder.
    Needs the uint8 train/val cache of an earlier run (it is not rebuilt here:
    decoding it takes minutes)."""
    import json
    import shutil
    from tools.train import data
    from tools.train import train
    work = train.default_work()
    if not all(os.path.exists(p) for s in ("train", "val") for p in data.cache_paths(work, s)):
        print("train loop: skipped, no image cache under %s (any train.py run builds it)" % work)
        return
    tmp = tempfile.mkdtemp(prefix="spw_selftest_train_")
    try:
        os.symlink(os.path.join(work, "cache"), os.path.join(tmp, "cache"))
        common = ["--work", tmp, "--lmbda", "4", "--width", "16", "--dec-blocks", "1", "--batch", "8",
                  "--train-n", "32", "--patch", "64", "--val-n", "8", "--threads", "1", "--log-every", "2"]
        terms = ["--kd", "1e4", "--tail-mse", "1e5", "--mixup", "0.2", "--ema", "0.9", "--saliency"]
        train.main(common + terms + ["--name", "a", "--epochs", "1"])
        train.main(common + ["--name", "a", "--epochs", "2"])  # resume: the run's own args come back
        ck = models.load_checkpoint(os.path.join(tmp, "runs", "a", "ckpt_last.pt"))
        assert ck["global_step"] == 8 and ck["epoch"] == 2, (ck["global_step"], ck["epoch"])
        assert ck["args"]["ema"] == 0.9 and "ema" in ck
        assert not all(torch.equal(ck["model"][k], ck["ema"][k]) for k in ck["model"])
        with open(os.path.join(tmp, "runs", "a", "log.jsonl")) as f:
            recs = [json.loads(line) for line in f]
        kinds = [r.get("kind") for r in recs]
        assert kinds.count("val") == 2 and kinds.count("val_ema") == 2, kinds
        # the epoch-end check measures the fidelity to the teacher too
        for r in recs:
            if r.get("kind"):
                assert 0 <= r["agree"] <= 1 and r["kl"] >= 0, r
        train.main(common + ["--name", "b", "--dec-blocks", "2", "--enc-refine", "1", "--epochs", "1", "--val-n", "0",
                             "--ste",
                             "--init", os.path.join(tmp, "runs", "a", "ckpt_last.pt")])
        b = models.load_checkpoint(os.path.join(tmp, "runs", "b", "ckpt_last.pt"))
        with open(os.path.join(tmp, "runs", "b", "train.log")) as f:
            blog = f.read()
        assert "ema weights" in blog and "grown by 1 residual block" in blog, blog
        assert "encoder grown by 1 refinement block" in blog, blog
        assert b["global_step"] == 4 and os.path.exists(os.path.join(tmp, "runs", "b", "DONE"))
        assert b["args"]["ste"] is True
        # clock-bound runs keep per-epoch checkpoints only when asked
        for name, extra in (("c", []), ("d", ["--keep-epochs"])):
            train.main(common + ["--name", name, "--epochs", "1", "--val-n", "0", "--cosine",
                                 "--minutes", "30"] + extra)
        kept = [os.path.exists(os.path.join(tmp, "runs", n, "ckpt_epoch1.pt")) for n in ("c", "d")]
        assert kept == [False, True], kept
        # the mb family, from the backbone, on a corpus of photos of several
        # sizes, stopped by the clock mid-epoch (which checks val then)
        cdir = os.path.join(tmp, "corpus", "tiny")
        os.makedirs(cdir)
        u8, _ = data.load_cache(work, "train")
        photos = [np.ascontiguousarray(u8[k, :h, :w])
                  for k, (h, w) in enumerate(((224, 160), (150, 224), (224, 224), (100, 120)) * 4)]
        offs = np.cumsum([0] + [p.size for p in photos])
        np.save(os.path.join(cdir, "pixels.npy"), np.concatenate([p.ravel() for p in photos]))
        np.save(os.path.join(cdir, "index.npy"),
                np.array([(offs[k], p.shape[0], p.shape[1], 0) for k, p in enumerate(photos)], dtype=np.int64))
        train.main(["--work", tmp, "--arch", "mb", "--lmbda", "2", "--corpus", "tiny", "--batch", "4",
                    "--patch", "64", "--val-n", "4", "--threads", "1", "--name", "mb", "--ste", "--kd", "1e4",
                    "--epochs", "5", "--cosine", "--minutes", "0.03", "--latent-gain", "0.5", "--fit-density", "2"])
        with open(os.path.join(tmp, "runs", "mb", "train.log")) as f:
            mlog = f.read()
        assert "fresh mb model from the backbone" in mlog and "photos at their own aspect" in mlog, mlog
        assert "latent gain 0.5" in mlog and "fit density 2/2" in mlog, mlog
        assert "stopping after --minutes" in mlog and "val_ema" not in mlog and "val after epoch" in mlog, mlog
        assert models.load_checkpoint(os.path.join(tmp, "runs", "mb", "ckpt_last.pt"))["args"]["corpus"] == "tiny"
    finally:
        shutil.rmtree(tmp)
    print("train loop: resume, EMA, every loss term, a grown decoder and encoder, --keep-epochs, "
          "an mb run on a corpus stopped by the clock")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", default=None)
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    check_density()
    check_tables()
    check_export(a.keep)
    check_training_terms()
    check_mb()
    check_corpus_augment()
    check_ema()
    check_ste()
    check_train_loop()
    print("selftest: ok")


if __name__ == "__main__":
    main()
