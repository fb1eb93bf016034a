"""open_clip architectures that ship with clipdense (registered at run time).

``clipdense-synth-rn``: the tiny CLIP ResNet trained on the synthetic world's
captions (``make quickstart``). Architectures are open_clip JSON configs in
``clipdense/models/model_configs``; registering them makes them usable by
name everywhere open_clip names are accepted (backbones, text encoders,
``ContrastiveCLIP``).
"""
import os.path as osp

ARCH_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                    'model_configs')
_done = False


def vision_backbone_type(arch: str) -> str:
    """``'OpenCLIPResNet'`` for an open_clip architecture whose image tower
    is a ModifiedResNet (its ``vision_cfg.layers`` is a list of stage
    depths), else ``'OpenCLIPViT'``; clipdense's own architectures
    included."""
    import open_clip
    register_clip_archs()
    cfg = open_clip.get_model_config(arch.replace('/', '-')) or {}
    layers = cfg.get('vision_cfg', {}).get('layers')
    return ('OpenCLIPResNet' if isinstance(layers, (list, tuple))
            else 'OpenCLIPViT')


def register_clip_archs() -> None:
    """Register clipdense's architecture JSONs with open_clip (idempotent)."""
    global _done
    if _done:
        return
    import open_clip
    open_clip.add_model_config(ARCH_DIR)
    _done = True
