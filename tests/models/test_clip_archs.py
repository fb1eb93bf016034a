"""clipdense/models/utils/clip_archs.py: which backbone reads an arch."""
import os.path as osp
import runpy

from clipdense.models.utils.clip_archs import vision_backbone_type

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_vision_backbone_type_reads_the_arch_config_not_its_name():
    # clipdense's own archs (registered on demand) and open_clip's, under
    # names that do not say "vit" or "rn"
    assert vision_backbone_type('clipdense-synth-rn') == 'OpenCLIPResNet'
    assert vision_backbone_type('clipdense-synth-vit8-avg') == 'OpenCLIPViT'
    assert vision_backbone_type('RN50x4') == 'OpenCLIPResNet'
    assert vision_backbone_type('ViT-B/16') == 'OpenCLIPViT'
    assert vision_backbone_type('EVA02-B-16') == 'OpenCLIPViT'


def test_clip_towers_report_builds_the_matching_backbone():
    build = runpy.run_path(osp.join(
        ROOT, 'tools/analysis_tools/clip_towers_report.py'))['build']
    for arch, cls in (('clipdense-synth-rn', 'OpenCLIPResNet'),
                      ('clipdense-synth-vit8', 'OpenCLIPViT')):
        model, _ = build(arch)
        assert type(model).__name__ == cls
