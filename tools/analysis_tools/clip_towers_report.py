"""Build time, size and CPU forward time of clipdense's CLIP image backbones.

Random weights (no download). Times are also given relative to a 2048x2048
fp32 matmul measured in the same run, because absolute times on shared
machines are noise (see ``docs``: "report model speed as a fraction of a
same-run matmul"). Not a test: run it by hand::

    python tools/analysis_tools/clip_towers_report.py
    python tools/analysis_tools/clip_towers_report.py --archs RN50 ViT-B-16 --size 640
"""
import argparse
import time

import torch


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--archs', nargs='+',
                   default=['RN50', 'RN101', 'ViT-B-16', 'EVA02-B-16'],
                   help='open_clip architectures (ResNet, ViT or EVA image towers)')
    p.add_argument('--size', type=int, nargs='+', default=[512, 512],
                   help='input H W (one value: square)')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--iters', type=int, default=3, help='timed forwards (after 1 warm-up)')
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    return p.parse_args()


def best_time(fn, iters):
    """Fastest of ``iters`` calls (seconds): the least disturbed by other
    processes on a shared machine."""
    best = float('inf')
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def matmul_reference(n=2048, iters=3):
    """Seconds per n x n fp32 matmul and its GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    dt = best_time(lambda: a @ b, iters)
    return dt, 2 * n ** 3 / dt / 1e9


def count_flops(model, x):
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def build(arch):
    from clipdense.models import backbones
    from clipdense.models.utils.clip_archs import vision_backbone_type
    cls = getattr(backbones, vision_backbone_type(arch))
    t = time.perf_counter()
    model = cls(arch, pretrained=None, joint_outputs=('dense',)).eval()
    return model, time.perf_counter() - t


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = (args.size * 2)[:2]
    x = torch.randn(args.batch, 3, h, w)
    rows, refs = [], []
    for arch in args.archs:
        model, build_s = build(arch)
        n_params = sum(p.numel() for p in model.parameters())
        n_visual = sum(p.numel() for p in model.visual.parameters())
        with torch.no_grad():
            model(x)  # warm-up (also fills the positional-table cache)
            # the reference is measured next to each model, as loads change
            mm_dt, mm_gflops = matmul_reference()
            refs.append(mm_dt)
            fwd = best_time(lambda: model(x), args.iters)
        flops = count_flops(model, x)
        eff = f'{flops / fwd / 1e9 / mm_gflops:.2f}' if flops else 'n/a'
        rows.append((arch, type(model).__name__, f'{build_s:.2f}', f'{n_visual / 1e6:.1f}',
                     f'{n_params / 1e6:.1f}', f'{fwd * 1e3:.0f}', f'{fwd / mm_dt:.1f}',
                     f'{flops / 1e9:.1f}' if flops else 'n/a', eff))
        del model
    head = ('arch', 'class', 'build s', 'tower M params', 'total M params',
            f'forward ms ({args.batch}x3x{h}x{w})', 'x matmul', 'GFLOP', 'matmul eff.')
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, random weights, '
          'dense joint output on; times are the best of '
          f'{args.iters}; reference: 2048^3 fp32 matmul measured before each model, '
          f'{min(refs) * 1e3:.0f}-{max(refs) * 1e3:.0f} ms')
    print('| ' + ' | '.join(head) + ' |')
    print('|' + '---|' * len(head))
    for r in rows:
        print('| ' + ' | '.join(r) + ' |')
    print("'x matmul' = forward time / matmul time; 'matmul eff.' = the forward's "
          "GFLOP/s as a fraction of the matmul's (FLOPs from torch's FlopCounterMode).")


if __name__ == '__main__':
    main()
