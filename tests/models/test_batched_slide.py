"""Batched sliding-window inference (issue 13) and the speed helpers."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from clipdense.apis.benchmark import (benchmark_model, build_model,
                                      make_inputs, matmul_ceiling)
from clipdense.engine.precision import autocast_context, check_precision
from clipdense.models.segmentors.batched_slide import slide_windows
from clipdense.testing.runs import ROOT

CFG = osp.join(ROOT, 'configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py')


def slide_model(batch):
    cfg = Config.fromfile(CFG)
    cfg.model.test_cfg = dict(mode='slide', crop_size=(64, 64),
                              stride=(40, 40))
    torch.manual_seed(0)
    return build_model(cfg, random_weights=True, slide_batch_size=batch)


def test_windows_match_mmseg_geometry():
    boxes = slide_windows(100, 170, (64, 64), (40, 40))
    # mmseg: ceil((H - crop) / stride) + 1 rows, the last shifted inside
    assert len(boxes) == 2 * 4
    assert all(y2 - y1 == 64 and x2 - x1 == 64 for y1, y2, x1, x2 in boxes)
    assert boxes[-1] == (36, 100, 106, 170)
    cover = torch.zeros(100, 170)
    for y1, y2, x1, x2 in boxes:
        cover[y1:y2, x1:x2] += 1
    assert (cover > 0).all()
    # an image smaller than the crop gives one window of the image size
    assert slide_windows(30, 50, (64, 64), (40, 40)) == [(0, 30, 0, 50)]


@pytest.mark.parametrize('batch', [3, 16])
def test_batched_slide_equals_mmseg_loop(batch):
    ref, fast = slide_model(1), slide_model(batch)
    fast.load_state_dict(ref.state_dict())
    assert type(fast).__name__ == 'SlideBatchEncoderDecoder'
    inputs, samples = make_inputs(ref, 2, (100, 170), 'cpu')
    with torch.no_grad():
        a = ref.predict(inputs, [s.clone() for s in samples])
        b = fast.predict(inputs, [s.clone() for s in samples])
    for x, y in zip(a, b):
        assert torch.allclose(x.seg_logits.data, y.seg_logits.data,
                              atol=1e-5, rtol=1e-5)
        assert torch.equal(x.pred_sem_seg.data, y.pred_sem_seg.data)
    # the image shape in the metas is restored after the windows
    assert tuple(samples[0].img_shape) == (100, 170)


def test_bad_slide_batch_size():
    model = slide_model(1)
    model.test_cfg['slide_batch_size'] = 0
    inputs, samples = make_inputs(model, 1, (100, 170), 'cpu')
    with pytest.raises(ValueError, match='slide_batch_size'):
        model.predict(inputs, samples)


def test_precision_checks():
    with pytest.raises(ValueError, match='bf16'):
        check_precision('fp16', 'cpu')
    with pytest.raises(ValueError, match='precision must be'):
        check_precision('int8', 'cpu')
    with autocast_context('bf16', 'cpu'):
        out = torch.ones(4, 4) @ torch.ones(4, 4)
    assert out.dtype == torch.bfloat16
    with autocast_context('fp32', 'cpu'):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_benchmark_model_reports(tmp_path):
    torch.manual_seed(0)
    model = build_model(CFG, random_weights=True)
    res = benchmark_model(model, shape=(64, 64), repeat=2, warmup=0,
                          matmul_size=128)
    assert res['params'] == sum(p.numel() for p in model.parameters())
    assert res['flops'] > 0
    lat = res['latency_s']
    assert lat['min'] <= lat['median'] <= lat['max'] and len(lat['all']) == 2
    # the fraction is the median of per-round ratios against the matmul
    # timed between the model's runs
    rounds = res['fraction_per_round']
    assert len(rounds) == 2
    mm_flops = 2 * 128 ** 3
    assert rounds[0] == pytest.approx(
        res['flops'] / lat['all'][0] / (mm_flops / res['matmul_seconds_per_round'][0]))
    assert res['fraction_of_matmul'] == pytest.approx(sum(rounds) / 2)
    assert res['fraction_best_vs_best'] == pytest.approx(
        res['flops'] / lat['min'] / res['matmul']['best_flops_per_s'])
    assert matmul_ceiling(size=64)['flops_per_s'] > 0


def test_benchmark_tool_writes_json(tmp_path):
    import runpy
    import sys
    out = tmp_path / 'b.json'
    argv = sys.argv
    sys.argv = ['benchmark.py', CFG, '--random-weights', '--shape', '64',
                '64', '--repeat', '1', '--matmul-size', '64',
                '--vocabulary-size', '30', '--out', str(out)]
    try:
        runpy.run_path(osp.join(ROOT, 'tools/analysis_tools/benchmark.py'),
                       run_name='__main__')
    finally:
        sys.argv = argv
    res = json.loads(out.read_text())
    assert res['shape'] == [64, 64] and res['flops'] > 0
    assert 'benchmark.py' in res['command']


def test_count_flops_sees_fused_attention():
    """nn.MultiheadAttention's fused inference path hides its matmuls from
    the counter; count_flops must still count them."""
    from clipdense.apis.benchmark import count_flops
    n, d = 10, 64
    mha = torch.nn.MultiheadAttention(d, 4, batch_first=True).eval()
    x = torch.randn(1, n, d)
    with torch.no_grad():
        flops = count_flops(lambda: mha(x, x, x, need_weights=False))
    # qkv projection + q k^T + attn v + output projection
    expected = 2 * (n * d * 3 * d + n * n * d + n * n * d + n * d * d)
    assert flops == expected
    assert torch.backends.mha.get_fastpath_enabled()  # restored


def test_window_accumulation_is_mmseg_and_linear(monkeypatch):
    """One window per pass (slide_batch_size absent) gives mmseg's logits,
    but adds each window into its own box: the additions touch windows x
    crop pixels, where mmseg's loop pads every window to the whole image
    (windows x image pixels: quadratic in the image side) (issue 26)."""
    from mmseg.models.segmentors import EncoderDecoder
    model = slide_model(None)
    assert type(model).__name__ == 'SlideBatchEncoderDecoder'  # init_model's default
    inputs, samples = make_inputs(model, 1, (100, 170), 'cpu')
    metas = [s.metainfo for s in samples]
    with torch.no_grad():
        ours = model.slide_inference(inputs, [dict(m) for m in metas])
        theirs = EncoderDecoder.slide_inference(model, inputs, [dict(m) for m in metas])
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=1e-5)
    # the padded full-image additions are gone: count windows padded to
    # the image size
    padded = []
    real_pad = torch.nn.functional.pad

    def counting_pad(t, *a, **k):
        out = real_pad(t, *a, **k)
        if tuple(out.shape[-2:]) == (100, 170) and tuple(t.shape[-2:]) != (100, 170):
            padded.append(tuple(out.shape))
        return out
    monkeypatch.setattr(torch.nn.functional, 'pad', counting_pad)
    with torch.no_grad():
        model.slide_inference(inputs, [dict(m) for m in metas])
    assert padded == []  # no window is padded to the image
    with torch.no_grad():
        EncoderDecoder.slide_inference(model, inputs, [dict(m) for m in metas])
    assert padded == [(1, 13, 100, 170)] * 8  # mmseg: every window


def test_progress_bar_for_many_windows(capsys):
    model = slide_model(4)
    inputs, samples = make_inputs(model, 1, (100, 170), 'cpu')  # 8 windows
    model.test_cfg['slide_progress'] = 8
    with torch.no_grad():
        model.slide_inference(inputs, [s.metainfo for s in samples])
    err = capsys.readouterr().err
    assert 'sliding windows (170x100)' in err and '0/8' in err
    model.test_cfg['slide_progress'] = 9  # fewer windows than that: no bar
    with torch.no_grad():
        model.slide_inference(inputs, [s.metainfo for s in samples])
    assert 'sliding windows' not in capsys.readouterr().err
