"""The quickstart main job end to end at smoke-test scale (--tiny)."""
import json

import pytest

from clipdense.apis.synthetic_pipeline import main

pytestmark = pytest.mark.slow


def test_quickstart_tiny_end_to_end_and_cached(tmp_path, capsys):
    args = ['--tiny', '--data-root', str(tmp_path / 'world'), '--work-dir',
            str(tmp_path / 'work'), '--results', str(tmp_path / 'res')]
    results = main(args)
    assert set(results) == {'flat', 'textured', 'night', 'fog'}
    for metrics in results.values():
        assert 0.0 <= metrics['mIoU'] <= 100.0
    out = capsys.readouterr().out
    assert '| style | role | mIoU |' in out and '| flat | source |' in out
    md = (tmp_path / 'res' / 'quickstart.md').read_text()
    assert 'make quickstart' in md and '| fog | target |' in md
    data = json.loads((tmp_path / 'res' / 'quickstart.json').read_text())
    assert data['source'] == 'flat' and 0.0 <= data['zero_shot_top1'] <= 1.0
    overlays = list((tmp_path / 'res' / 'quickstart_overlays').iterdir())
    assert len(overlays) == 8  # 2 per style

    # second run: every training step comes from the cache
    main(args)
    out = capsys.readouterr().out
    assert 'tiny CLIP: cached' in out and 'segmentor: cached' in out
