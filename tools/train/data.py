"""Training data: Imagenette decoded once into a uint8 cache, augmented on
tensors.

The JPEGs are decoded once into an (N, 224, 224, 3) uint8 .npy memmap under
the work directory (9469 train images = 1.4 GB), so an epoch costs no JPEG
decoding.  Random-resized-crop (scale 0.08..1, ratio 3/4..4/3, the torchvision
defaults, with its centre-crop fallback) and a horizontal flip are applied per
image on tensors, bilinear resize back to 224.

The label-free corpus of tools/train/corpus.py (`Corpus`, train.py --corpus)
holds photos of any size at their own aspect in one flat memmap;
`augment_corpus` takes square crops of them (nothing is stretched), resizes
them to 224 and flips half.
"""

import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as Fn

from tools.models import imagenette  # noqa: E402

SIZE = 224


def cache_paths(work, split):
    d = os.path.join(work, "cache")
    return os.path.join(d, "%s_u8.npy" % split), os.path.join(d, "%s_labels.npy" % split)


def build_cache(work, split, log=print):
    """Decode a split into the uint8 cache (atomic; skipped if present)."""
    img_path, lab_path = cache_paths(work, split)
    items = imagenette.listing(split)
    if os.path.exists(img_path) and os.path.exists(lab_path):
        arr = np.load(img_path, mmap_mode="r")
        if arr.shape[0] == len(items):
            return img_path, lab_path
    os.makedirs(os.path.dirname(img_path), exist_ok=True)
    tmp = img_path + ".tmp.npy"
    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(items), SIZE, SIZE, 3))
    labels = np.zeros((len(items), 2), dtype=np.int32)  # (imagenette idx, imagenet-1k idx)
    for i, (rel, cls, in1k) in enumerate(items):
        im = imagenette.load_uint8(rel)
        if im.shape != (SIZE, SIZE, 3):
            raise ValueError("%s: shape %s" % (rel, im.shape))
        arr[i] = im
        labels[i] = (cls, in1k)
        if (i + 1) % 2000 == 0:
            log("cache %s: %d/%d" % (split, i + 1, len(items)))
    arr.flush()
    del arr
    np.save(lab_path + ".tmp.npy", labels)
    os.replace(lab_path + ".tmp.npy", lab_path)
    os.replace(tmp, img_path)
    return img_path, lab_path


def load_cache(work, split):
    img_path, lab_path = build_cache(work, split)
    return np.load(img_path, mmap_mode="r"), np.load(lab_path)


def crop_params(gen, h=SIZE, w=SIZE, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0)):
    """torchvision RandomResizedCrop.get_params, drawing from `gen`."""
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * torch.empty(1).uniform_(scale[0], scale[1], generator=gen).item()
        ar = math.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=gen).item())
        cw = int(round(math.sqrt(target * ar)))
        ch = int(round(math.sqrt(target / ar)))
        if 0 < cw <= w and 0 < ch <= h:
            i = int(torch.randint(0, h - ch + 1, (1,), generator=gen).item())
            j = int(torch.randint(0, w - cw + 1, (1,), generator=gen).item())
            return i, j, ch, cw
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def augment_batch(u8, gen, min_scale=0.08):
    """u8: (B, 224, 224, 3) uint8 numpy -> (B, 3, 224, 224) float in [0, 1]
    after random-resized-crop (area fraction min_scale..1) and horizontal flip."""
    out = torch.empty(len(u8), 3, SIZE, SIZE)
    for k in range(len(u8)):
        i, j, ch, cw = crop_params(gen, scale=(min_scale, 1.0))
        patch = torch.from_numpy(np.ascontiguousarray(u8[k, i:i + ch, j:j + cw])).permute(2, 0, 1)
        patch = patch.float().unsqueeze(0) / 255.0
        if (ch, cw) != (SIZE, SIZE):
            patch = Fn.interpolate(patch, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        if torch.rand(1, generator=gen).item() < 0.5:
            patch = patch.flip(3)
        out[k] = patch[0].clamp_(0.0, 1.0)
    return out


def to_tensor(u8):
    """(B, 224, 224, 3) uint8 -> (B, 3, 224, 224) float in [0, 1], no augmentation."""
    return torch.from_numpy(np.array(u8)).permute(0, 3, 1, 2).float() / 255.0


def random_window(x, size, gen, align=16):
    """The same random size x size window of every image of a batch, its
    corner on a multiple of `align` so the encoder's and the backbone's
    stride-8/16 grids stay where they are in the full image."""
    h, w = x.shape[2], x.shape[3]
    if size % align or size > min(h, w):
        raise ValueError("window %d: must be a multiple of %d and at most %d" % (size, align, min(h, w)))
    i = align * int(torch.randint(0, (h - size) // align + 1, (1,), generator=gen))
    j = align * int(torch.randint(0, (w - size) // align + 1, (1,), generator=gen))
    return x[:, :, i:i + size, j:j + size].contiguous()


def augment_resident(u8, idx, gen, min_scale=0.08):
    """Batched augment_batch for a train set resident on the training device:
    u8 (N, 224, 224, 3) uint8 tensor, idx the batch's rows.  Crop boxes and
    flips are drawn from `gen` exactly as augment_batch draws them; one
    bilinear grid_sample per batch replaces the per-image resize (the same
    sample positions as interpolate(align_corners=False); at a crop's edge it
    blends in the image's pixels just outside the crop, where interpolate
    repeats the crop's edge)."""
    n = len(idx)
    theta = torch.zeros(n, 2, 3, dtype=torch.float32)
    for k in range(n):
        i, j, ch, cw = crop_params(gen, scale=(min_scale, 1.0))
        flip = torch.rand(1, generator=gen).item() < 0.5
        # output coordinate o in [-1, 1] -> input (2*j + (o + 1) * cw) / W - 1
        theta[k, 0, 0] = (-cw if flip else cw) / SIZE
        theta[k, 0, 2] = (2 * j + cw) / SIZE - 1.0
        theta[k, 1, 1] = ch / SIZE
        theta[k, 1, 2] = (2 * i + ch) / SIZE - 1.0
    dev = u8.device
    rows = torch.as_tensor(np.asarray(idx), dtype=torch.long, device=dev)
    x = u8.index_select(0, rows).permute(0, 3, 1, 2).float().div_(255.0)
    grid = Fn.affine_grid(theta.to(dev), [n, 3, SIZE, SIZE], align_corners=False)
    out = Fn.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.clamp_(0.0, 1.0)


def mixup(x, alpha, seed):
    """Blend every image of a batch with a random partner of the same batch:
    x_k <- w_k x_k + (1 - w_k) x_p(k), w_k ~ Beta(alpha, alpha), drawn from
    `seed` (numpy: torch's Beta sampler takes no generator).  Pure
    distillation needs no labels, so a blend is as good a training input as
    a photo and adds variety to a small train set."""
    rs = np.random.RandomState(seed % (2 ** 32))
    n = x.shape[0]
    w = torch.from_numpy(rs.beta(alpha, alpha, size=n).astype(np.float32)).to(x.device).view(n, 1, 1, 1)
    partner = torch.from_numpy(rs.permutation(n)).to(x.device)
    return w * x + (1.0 - w) * x.index_select(0, partner)


class Corpus:
    """The label-free photo corpus of tools/train/corpus.py: photos of any
    size at their own aspect in one flat uint8 memmap; corpus[i] is an
    (h, w, 3) view."""

    def __init__(self, work, name="broad"):
        d = os.path.join(work, "corpus", name)
        if not os.path.exists(os.path.join(d, "index.npy")):
            raise SystemExit("no corpus at %s: build it with tools/train/corpus.py --name %s" % (d, name))
        self.pixels = np.load(os.path.join(d, "pixels.npy"), mmap_mode="r")
        self.index = np.load(os.path.join(d, "index.npy"))
        self.dir = d

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        off, h, w, _ = (int(v) for v in self.index[i])
        return self.pixels[off:off + h * w * 3].reshape(h, w, 3)


def square_crop_params(gen, h, w, scale=(0.08, 1.0)):
    """An aspect-kept random-resized crop: a square whose area is a fraction
    in `scale` of the largest square the photo holds, at a random place."""
    side = min(h, w)
    s = torch.empty(1).uniform_(scale[0], scale[1], generator=gen).item()
    c = max(1, min(side, int(round(side * math.sqrt(s)))))
    i = int(torch.randint(0, h - c + 1, (1,), generator=gen).item())
    j = int(torch.randint(0, w - c + 1, (1,), generator=gen).item())
    return i, j, c


def augment_corpus(corpus, idx, gen, min_scale=0.08):
    """Corpus photos idx -> (B, 3, 224, 224) float in [0, 1]: a square crop
    (square_crop_params, so nothing is stretched) resized to 224 (bilinear,
    antialiased when shrinking) and a horizontal flip."""
    out = torch.empty(len(idx), 3, SIZE, SIZE)
    for k, n in enumerate(idx):
        im = corpus[n]
        i, j, c = square_crop_params(gen, im.shape[0], im.shape[1], (min_scale, 1.0))
        patch = torch.from_numpy(np.array(im[i:i + c, j:j + c])).permute(2, 0, 1)  # a copy: the memmap is read-only
        patch = patch.float().unsqueeze(0) / 255.0
        if c != SIZE:
            patch = Fn.interpolate(patch, size=(SIZE, SIZE), mode="bilinear", align_corners=False,
                                   antialias=c > SIZE)
        if torch.rand(1, generator=gen).item() < 0.5:
            patch = patch.flip(3)
        out[k] = patch[0].clamp_(0.0, 1.0)
    return out
