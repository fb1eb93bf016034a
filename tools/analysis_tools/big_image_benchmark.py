"""How the cost of a large photo grows with its pixels (issue 26, item 3).

    python tools/analysis_tools/big_image_benchmark.py [--config CONFIG]
        [--megapixels 3 12] [--repeat 1] [--random-weights]
        [--slide-batch-size N] [--cfg-options k=v ...]

Times ``clipdense.apis.inference_model`` (what ``demo/image_demo.py``
calls) on a random photo-like image of each size (4:3, e.g. 3 MP = 2000x1500,
12 MP = 4000x3000) with the demo's default config and prints seconds,
seconds per megapixel, the peak resident memory so far, and the ratio of
the largest to the smallest time against the ratio of pixels. Linear cost
gives a time ratio near the pixel ratio (4 for 12 vs 3 MP); mmseg's own
slide loop, which pads every window to the whole image, gave 30 (97 s vs
3.2 s). Not a test: timings depend on the machine.

``--random-weights`` drops the ``pretrained`` paths (same architecture and
compute; for a checkout without ``make quickstart``).
"""
import argparse
import os.path as osp
import resource
import sys
import time

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py')


def photo(megapixels: float, seed: int = 0) -> np.ndarray:
    """A smooth random BGR image of ``megapixels`` (4:3)."""
    import cv2
    h = int(round((megapixels * 1e6 * 3 / 4) ** 0.5))
    w = int(round(h * 4 / 3))
    rng = np.random.RandomState(seed)
    small = rng.randint(0, 255, (max(1, h // 64), max(1, w // 64), 3), np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', default=CONFIG)
    p.add_argument('--megapixels', type=float, nargs='+', default=[3.0, 12.0])
    p.add_argument('--repeat', type=int, default=1, help='runs per size (best kept)')
    p.add_argument('--random-weights', action='store_true')
    p.add_argument('--slide-batch-size', type=int, default=None,
                   help='test_cfg.slide_batch_size (default: the config\'s)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--cfg-options', nargs='+', default=None)
    args = p.parse_args(argv)

    from mmengine.config import Config, DictAction

    from clipdense.apis import inference_model, init_model
    from clipdense.apis.benchmark import weights_off
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        ns = argparse.Namespace()
        DictAction(option_strings=[], dest='o')(None, ns, args.cfg_options)
        cfg.merge_from_dict(ns.o)
    if args.random_weights:
        cfg.model = Config(weights_off(cfg.model.to_dict()))
    if args.slide_batch_size is not None:
        cfg.model.test_cfg['slide_batch_size'] = args.slide_batch_size
    model = init_model(cfg, device=args.device)
    inference_model(model, photo(0.05))  # warm-up
    rows = []
    for mp in args.megapixels:
        img = photo(mp)
        best = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            res = inference_model(model, img, max_pixels=None)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
            del res
        rows.append((mp, img.shape, best))
        print(f'{img.shape[1]}x{img.shape[0]} ({mp:g} MP): {best:.2f} s, '
              f'{best / mp:.2f} s/MP, peak RSS so far {peak_rss_gib():.2f} GiB',
              flush=True)
    if len(rows) > 1:
        lo, hi = rows[0], rows[-1]
        print(f'time ratio {hi[2] / lo[2]:.2f} for a pixel ratio of '
              f'{hi[0] / lo[0]:.2f} ({hi[0]:g} MP vs {lo[0]:g} MP; linear cost: '
              'about the pixel ratio)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
