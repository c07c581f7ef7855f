"""Prove the pretrained weights are loaded right: classify the sketchy-mini photos whose
ImageNet synset (the file-name prefix, e.g. ``n02691156`` in ``n02691156_10151.jpg``) is an
ImageNet-1k class with the full EfficientNet-Lite0 ImageNet classifier.

Wrongly mapped weights (a shifted tensor order, a missing normalisation) give near-chance
accuracy; correct ones about 0.8 top-1 on these object-centred photos.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from semi3lib.models.backbones import LITE0_MEAN, LITE0_STD, efficientnet_lite0_imagenet

PHOTO_GLOB = "photo/tx_000000000000/*/*.jpg"
# ImageNet evaluation protocol: resize the short side to size / 0.875, centre-crop size.
CROP_FRACTION = 0.875


@dataclass
class LabelledPhoto:
    path: Path
    class_index: int  # ImageNet-1k index


def imagenet_labelled_photos(root: str | Path, limit: int | None = None) -> list[LabelledPhoto]:
    """The photos under ``root`` whose synset prefix is an ImageNet-1k class, sorted by path.

    ``limit`` keeps a fixed, evenly spread subset (every k-th photo), for quick checks.
    """
    from timm.data import ImageNetInfo

    synset_index = {synset: i for i, synset in enumerate(ImageNetInfo().label_names())}
    photos = []
    for path in sorted(Path(root).glob(PHOTO_GLOB)):
        synset = path.stem.split("_", 1)[0]
        if synset in synset_index:
            photos.append(LabelledPhoto(path, synset_index[synset]))
    if limit is not None and 0 < limit < len(photos):
        step = len(photos) / limit
        photos = [photos[int(i * step)] for i in range(limit)]
    return photos


def load_eval_image(path: str | Path, size: int) -> torch.Tensor:
    """ImageNet-style eval preprocessing -> ``(3, size, size)`` float in [0, 1]."""
    image = Image.open(path).convert("RGB")
    short = round(size / CROP_FRACTION)
    w, h = image.size
    scale = short / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)


@torch.no_grad()
def check_lite0_imagenet(
    root: str | Path,
    size: int = 224,
    batch_size: int = 32,
    limit: int | None = None,
    weights_path: str | Path | None = None,
    progress: bool = True,
) -> dict[str, float | int | str]:
    """Top-1/top-5 accuracy of the pretrained EfficientNet-Lite0 on ImageNet-class photos.

    Returns ``{"images": N, "top1": x, "top5": y, "source": weights source}``.
    """
    from tqdm.auto import tqdm

    photos = imagenet_labelled_photos(root, limit)
    if not photos:
        raise FileNotFoundError(f"no photos of an ImageNet-1k synset under {Path(root) / PHOTO_GLOB}")
    model, source = efficientnet_lite0_imagenet(pretrained=True, weights_path=weights_path)
    model.eval()
    mean = torch.tensor(LITE0_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(LITE0_STD).view(1, 3, 1, 1)
    top1 = top5 = 0
    with tqdm(total=len(photos), desc="backbone-check", unit="img", disable=not progress) as bar:
        for start in range(0, len(photos), batch_size):
            chunk = photos[start:start + batch_size]
            images = torch.stack([load_eval_image(p.path, size) for p in chunk])
            labels = torch.tensor([p.class_index for p in chunk])
            best5 = model((images - mean) / std).topk(5, dim=1).indices
            top1 += (best5[:, 0] == labels).sum().item()
            top5 += (best5 == labels[:, None]).any(dim=1).sum().item()
            bar.update(len(chunk))
    n = len(photos)
    return {"images": n, "top1": top1 / n, "top5": top5 / n, "source": source}
