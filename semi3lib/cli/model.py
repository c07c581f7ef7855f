"""``semi3 backbone-check``: prove the pretrained EfficientNet-Lite0 weights load right."""

from __future__ import annotations

import argparse
import json

from semi3lib.cli import UserError, int_at_least

# Below this top-1 on sketchy-mini's ImageNet-class photos the weights are not loaded right
# (about 0.82 when they are).
MIN_TOP1 = 0.75


def cmd_backbone_check(args: argparse.Namespace) -> int:
    from semi3lib.models.imagenet_check import check_lite0_imagenet
    from semi3lib.paths import find_dataset_root

    if args.size < 32:
        raise UserError(f"--size must be at least 32, got {args.size}")
    root = find_dataset_root("sketchy-mini", root=args.data)
    result = check_lite0_imagenet(root, size=args.size, batch_size=args.batch_size, limit=args.limit,
                                  weights_path=args.weights, progress=not args.quiet)
    summary = {"images": result["images"], "top1": round(result["top1"], 4), "top5": round(result["top5"], 4)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"efficientnet_lite0 ({result['source']}) on {summary['images']} ImageNet-class photos of {root}: "
              f"top-1 {summary['top1']:.4f}, top-5 {summary['top5']:.4f}")
    if result["top1"] < MIN_TOP1:
        raise UserError(f"top-1 {result['top1']:.4f} is below {MIN_TOP1}: the ImageNet weights are not loaded right")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backbone-check",
        help="classify sketchy-mini's ImageNet-class photos with the pretrained EfficientNet-Lite0",
        description="Classify the sketchy-mini photos whose ImageNet synset (file-name prefix) is an "
                    "ImageNet-1k class with the pretrained EfficientNet-Lite0 and report top-1/top-5. "
                    f"Exits with status 2 when top-1 is below {MIN_TOP1}.",
    )
    parser.add_argument("--data", metavar="ROOT", default=None,
                        help="sketchy-mini folder (default: search $SEMI3_DATA, ./data, ../shared/data)")
    parser.add_argument("--json", action="store_true", help='print {"images": N, "top1": x, "top5": y}')
    parser.add_argument("--size", type=int_at_least(32), default=224, help="input size in pixels (default 224)")
    parser.add_argument("--batch-size", type=int_at_least(1), default=32)
    parser.add_argument("--limit", type=int_at_least(1), default=None,
                        help="use a fixed, evenly spread subset of this many photos (quick checks)")
    parser.add_argument("--weights", metavar="PTH", default=None,
                        help="EfficientNet-Lite0 state dict to check instead of the packaged one")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_backbone_check)
