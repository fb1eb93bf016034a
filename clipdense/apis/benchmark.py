"""Speed measurement of segmentation models against the machine's ceiling.

What :func:`benchmark_model` reports for one config at one input shape:
parameters; FLOPs of one forward (``torch.utils.flop_counter.FlopCounterMode``,
PyTorch's maintained counter: 2 FLOPs per multiply-add of every matmul,
convolution and attention kernel); median/min/max latency over repeated runs
after warm-up; throughput; peak memory (CUDA: peak allocated; CPU: the
process' peak resident set, which includes the interpreter and libraries);
and the achieved FLOP/s as a fraction of a square matmul in the same
precision, timed in the same run, so that the ratio holds on a noisy machine:
the matmul runs between the model's runs (:func:`compare_latency`) and the
reported fraction is the median of the per-round ratios
(``fraction_best_vs_best``, the model's best run against the matmul's best,
is reported too).

Latencies are wall-clock of ``model.predict`` (backbone, head, resize to the
input size, argmax) under ``torch.no_grad``; CUDA is synchronised around
each run.
"""
import copy
import resource
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
from mmengine.config import Config

from clipdense.engine.precision import autocast_context


def weights_off(node):
    """Drop every pretrained-weight reference in a (model) config, in place
    (for random-weight speed runs: no downloads)."""
    if isinstance(node, dict):
        for key in list(node):
            if key == 'pretrained':
                node[key] = None
            elif key == 'init_cfg' and isinstance(node[key], dict) and \
                    node[key].get('type') in ('Pretrained', 'Pretrained_Part'):
                node[key] = None
            else:
                weights_off(node[key])
    elif isinstance(node, (list, tuple)):
        for item in node:
            weights_off(item)
    return node


def build_model(config: Union[str, Config], checkpoint: Optional[str] = None,
                *, device='cpu', random_weights: bool = False,
                cfg_options: Optional[dict] = None,
                slide_batch_size: Optional[int] = None,
                labels_only: bool = False):
    """Build a segmentor for timing.

    Args:
        config: config path or object.
        checkpoint: optional checkpoint.
        device: torch device.
        random_weights: drop every ``pretrained`` reference (no downloads).
        cfg_options: overrides merged into the config.
        slide_batch_size: windows per forward in slide mode; switches mmseg's
            ``EncoderDecoder`` to :class:`SlideBatchEncoderDecoder`.
        labels_only: whole-image labels without full-size logits
            (``test_cfg.labels_only``; same switch of the class).
    """
    from clipdense.apis.inference import init_model
    cfg = Config.fromfile(config) if isinstance(config, str) else \
        copy.deepcopy(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if random_weights:
        cfg.model = Config(weights_off(cfg.model.to_dict()))
    if slide_batch_size is not None or labels_only:
        # init_model switches mmseg's EncoderDecoder to
        # SlideBatchEncoderDecoder for these options
        if cfg.model.get('test_cfg') is None:
            cfg.model.test_cfg = {}
    if slide_batch_size is not None:
        cfg.model.test_cfg['slide_batch_size'] = slide_batch_size
    if labels_only:
        cfg.model.test_cfg['labels_only'] = True
    return init_model(cfg, checkpoint, device=device)


def make_inputs(model, batch: int, shape: Sequence[int], device,
                seed: int = 0):
    """Normalised random images and their ``SegDataSample`` metas."""
    from mmseg.structures import SegDataSample
    h, w = shape
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(batch, 3, h, w, generator=g, device='cpu').to(device)
    samples = []
    for _ in range(batch):
        s = SegDataSample()
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w),
                            pad_shape=(h, w), padding_size=[0, 0, 0, 0]))
        samples.append(s)
    return inputs, samples


def synchronize(device):
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def time_call(fn: Callable, *, repeat: int, warmup: int,
              device) -> List[float]:
    """Seconds per call of ``fn`` over ``repeat`` runs after ``warmup``."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return times


def count_flops(fn: Callable) -> int:
    """FLOPs of one call (PyTorch's ``FlopCounterMode``)."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    # nn.MultiheadAttention's inference fast path is one fused C++ op whose
    # inner matmuls the counter does not see (about 40% of a ViT-B/16's
    # FLOPs would be missed); its Python path computes the same products
    mha = getattr(torch.backends, 'mha', None)
    fast = mha.get_fastpath_enabled() if mha is not None else None
    # likewise the CPU flash-attention kernel of scaled_dot_product_attention
    # has no FLOP formula: count with the math backend (same products)
    from torch.nn.attention import SDPBackend, sdpa_kernel
    try:
        if mha is not None:
            mha.set_fastpath_enabled(False)
        with counter, sdpa_kernel(SDPBackend.MATH):
            fn()
    finally:
        if mha is not None:
            mha.set_fastpath_enabled(fast)
    return int(counter.get_total_flops())


def matmul_ceiling(*, size: int = 2048, precision: str = 'fp32',
                   device='cpu', repeat: int = 5) -> Dict[str, float]:
    """FLOP/s of a ``size`` x ``size`` matmul in ``precision`` (best of
    ``repeat``; :func:`benchmark_model` times it between the model's runs
    instead)."""
    times = time_call(_matmul_fn(size, precision, device), repeat=repeat,
                      warmup=2, device=device)
    best = min(times)
    return dict(size=size, precision=precision, seconds=best,
                flops_per_s=2 * size ** 3 / best)


def _matmul_fn(size: int, precision: str, device) -> Callable:
    dtype = dict(fp32=torch.float32, bf16=torch.bfloat16,
                 fp16=torch.float16)[precision]
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g, device='cpu').to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=g, device='cpu').to(device=device, dtype=dtype)
    return lambda: a @ b


def peak_memory_mb(device) -> float:
    if torch.device(device).type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def predict_fn(model, inputs, samples, precision: str, device):
    def run():
        with torch.no_grad(), autocast_context(precision, device):
            return model.predict(inputs, copy.deepcopy(samples))
    return run


def benchmark_model(model, *, shape=(512, 512), batch: int = 1,
                    precision: str = 'fp32', device='cpu', repeat: int = 5,
                    warmup: int = 1, flops: bool = True,
                    matmul_size: int = 2048) -> Dict:
    """Time ``model.predict`` on random inputs; see the module docstring.

    Returns:
        dict: params, flops, latency_s (median/min/max/all), throughput
        (images/s), peak_memory_mb, achieved_flops_per_s, matmul (the
        ceiling) and fraction_of_matmul.
    """
    inputs, samples = make_inputs(model, batch, shape, device)
    run = predict_fn(model, inputs, samples, precision, device)
    if torch.device(device).type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    run()  # first call: lazy caches (text embeddings) are filled here
    # FLOPs are the model's (counted in fp32: autocast adds casts and may
    # pick other attention kernels, which would change the count)
    n_flops = count_flops(predict_fn(model, inputs, samples, 'fp32',
                                     device)) if flops else None
    # the matmul runs right after the model in every round (3 calls, their
    # median): a slow spell of the machine slows both
    timed = compare_latency(
        {'model': run, 'matmul': _matmul_fn(matmul_size, precision, device)},
        repeat=repeat, warmup=warmup, device=device, calls={'matmul': 3})
    times, mm_times = timed['times']['model'], timed['times']['matmul']
    med = statistics.median(times)
    mm_flops = 2 * matmul_size ** 3
    ceiling = dict(size=matmul_size, precision=precision,
                   seconds=statistics.median(mm_times),
                   flops_per_s=mm_flops / statistics.median(mm_times),
                   best_flops_per_s=mm_flops / min(mm_times))
    out = dict(
        params=sum(p.numel() for p in model.parameters()),
        flops=n_flops, shape=list(shape), batch=batch, precision=precision,
        device=str(device), threads=torch.get_num_threads(),
        latency_s=dict(median=med, min=min(times), max=max(times),
                       all=times),
        throughput=batch / med, peak_memory_mb=peak_memory_mb(device),
        matmul=ceiling)
    if n_flops:
        out['achieved_flops_per_s'] = n_flops / med
        # per-round ratio: a slow spell of the machine slows both
        ratios = [(n_flops / t) / (mm_flops / m) for t, m in zip(times, mm_times)]
        out['fraction_of_matmul'] = statistics.median(ratios)
        out['fraction_per_round'] = ratios
        out['matmul_seconds_per_round'] = mm_times
        # the stricter reading: best model run against the best matmul
        out['fraction_best_vs_best'] = (n_flops / min(times)) / ceiling['best_flops_per_s']
    return out


def compare_latency(fns: Dict[str, Callable], *, repeat: int = 3,
                    warmup: int = 1, device='cpu',
                    calls: Optional[Dict[str, int]] = None,
                    alternate: bool = False) -> Dict:
    """Time several callables round-robin: each of ``repeat`` rounds runs
    every callable in order (reversed in every other round with
    ``alternate``, which cancels a steady drift of the machine's speed),
    once (or ``calls[name]`` times, their median being the round's time).
    Returns ``times`` (seconds per round and name) and, for every name
    after the first, ``ratio`` (the median over rounds
    of first / this: > 1 means faster than the first) and
    ``ratio_per_round``. Comparing within a round cancels the machine's slow
    spells, which separate timings of the two would not."""
    names = list(fns)
    calls = calls or {}
    for _ in range(warmup):
        for name in names:
            fns[name]()
    synchronize(device)
    times = {name: [] for name in names}
    for r in range(repeat):
        for name in (names[::-1] if alternate and r % 2 else names):
            times[name].append(statistics.median(time_call(
                fns[name], repeat=calls.get(name, 1), warmup=0, device=device)))
    ref = names[0]
    per_round = {name: [a / b for a, b in zip(times[ref], times[name])]
                 for name in names[1:]}
    return dict(times=times, ratio_per_round=per_round,
                ratio={n: statistics.median(r) for n, r in per_round.items()})


def latency_row(name: str, model, times: Sequence[float], *, shape,
                batch: int = 1, precision: str = 'fp32', device='cpu') -> Dict:
    """A :func:`format_table` row from times measured elsewhere (e.g. by
    :func:`compare_latency`); no FLOPs or matmul reference."""
    med = statistics.median(times)
    return dict(name=name, params=sum(p.numel() for p in model.parameters()),
                flops=None, shape=list(shape), batch=batch,
                precision=precision, device=str(device),
                latency_s=dict(median=med, min=min(times), max=max(times),
                               all=list(times)),
                throughput=batch / med, peak_memory_mb=peak_memory_mb(device))


def pixel_agreement(model, inputs_list, *, precision: str, device) -> float:
    """Fraction of pixels whose argmax class is the same in ``precision``
    as in fp32, over a list of ``(inputs, samples)`` batches."""
    same = total = 0
    for inputs, samples in inputs_list:
        preds = []
        for prec in ('fp32', precision):
            out = predict_fn(model, inputs, samples, prec, device)()
            preds.append(torch.stack([o.pred_sem_seg.data for o in out]))
        same += (preds[0] == preds[1]).sum().item()
        total += preds[0].numel()
    return same / max(total, 1)


def format_table(rows: List[Dict]) -> str:
    """A markdown table of :func:`benchmark_model` results."""
    head = ['name', 'shape', 'batch', 'precision', 'params (M)', 'GFLOPs',
            'median ms', 'min ms', 'max ms', 'img/s', 'peak MB',
            'GFLOP/s', 'matmul GFLOP/s', 'fraction']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head)]
    for r in rows:
        lat = r['latency_s']
        gf = r.get('flops')
        cells = [r.get('name', ''), 'x'.join(map(str, r['shape'])),
                 str(r['batch']), r['precision'], f'{r["params"] / 1e6:.1f}',
                 '' if gf is None else f'{gf / 1e9:.1f}',
                 f'{lat["median"] * 1e3:.0f}', f'{lat["min"] * 1e3:.0f}',
                 f'{lat["max"] * 1e3:.0f}', f'{r["throughput"]:.2f}',
                 f'{r["peak_memory_mb"]:.0f}',
                 '' if gf is None else
                 f'{r["achieved_flops_per_s"] / 1e9:.0f}',
                 f'{r["matmul"]["flops_per_s"] / 1e9:.0f}' if r.get('matmul') else '',
                 '' if gf is None else f'{r["fraction_of_matmul"]:.2f}']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)
