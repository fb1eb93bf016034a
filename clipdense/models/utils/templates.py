"""Prompt template sets for CLIP text embeddings.

Every set is a tuple of ``str.format`` templates with one ``{}`` slot for
the class name. :func:`get_templates` resolves a set by name or passes a
user list through after checking it.

Sets:
    * ``'imagenet'`` (80): OpenAI CLIP's ImageNet prompt ensemble
      (Radford et al., 2021; ``notebooks/Prompt_Engineering_for_ImageNet``),
      copied in the same order as ``open_clip.zero_shot_metadata``.
    * ``'vild'`` (14): the ViLD templates (Gu et al., ICLR 2022), as used by
      OVSeg and Detic.
    * ``'maskclip'`` (85): the 80 ImageNet templates plus MaskCLIP's five
      scene templates (Zhou et al., ECCV 2022,
      ``tools/maskclip_utils/prompt_engineering.py``).
    * ``'single'`` (1): ``'a photo of a {}.'`` (MaskCLIP ``--no-prompt-eng``).
"""
from typing import Sequence, Tuple, Union

IMAGENET_TEMPLATES: Tuple[str, ...] = (
    'a bad photo of a {}.',
    'a photo of many {}.',
    'a sculpture of a {}.',
    'a photo of the hard to see {}.',
    'a low resolution photo of the {}.',
    'a rendering of a {}.',
    'graffiti of a {}.',
    'a bad photo of the {}.',
    'a cropped photo of the {}.',
    'a tattoo of a {}.',
    'the embroidered {}.',
    'a photo of a hard to see {}.',
    'a bright photo of a {}.',
    'a photo of a clean {}.',
    'a photo of a dirty {}.',
    'a dark photo of the {}.',
    'a drawing of a {}.',
    'a photo of my {}.',
    'the plastic {}.',
    'a photo of the cool {}.',
    'a close-up photo of a {}.',
    'a black and white photo of the {}.',
    'a painting of the {}.',
    'a painting of a {}.',
    'a pixelated photo of the {}.',
    'a sculpture of the {}.',
    'a bright photo of the {}.',
    'a cropped photo of a {}.',
    'a plastic {}.',
    'a photo of the dirty {}.',
    'a jpeg corrupted photo of a {}.',
    'a blurry photo of the {}.',
    'a photo of the {}.',
    'a good photo of the {}.',
    'a rendering of the {}.',
    'a {} in a video game.',
    'a photo of one {}.',
    'a doodle of a {}.',
    'a close-up photo of the {}.',
    'a photo of a {}.',
    'the origami {}.',
    'the {} in a video game.',
    'a sketch of a {}.',
    'a doodle of the {}.',
    'a origami {}.',
    'a low resolution photo of a {}.',
    'the toy {}.',
    'a rendition of the {}.',
    'a photo of the clean {}.',
    'a photo of a large {}.',
    'a rendition of a {}.',
    'a photo of a nice {}.',
    'a photo of a weird {}.',
    'a blurry photo of a {}.',
    'a cartoon {}.',
    'art of a {}.',
    'a sketch of the {}.',
    'a embroidered {}.',
    'a pixelated photo of a {}.',
    'itap of the {}.',
    'a jpeg corrupted photo of the {}.',
    'a good photo of a {}.',
    'a plushie {}.',
    'a photo of the nice {}.',
    'a photo of the small {}.',
    'a photo of the weird {}.',
    'the cartoon {}.',
    'art of the {}.',
    'a drawing of the {}.',
    'a photo of the large {}.',
    'a black and white photo of a {}.',
    'the plushie {}.',
    'a dark photo of a {}.',
    'itap of a {}.',
    'graffiti of the {}.',
    'a toy {}.',
    'itap of my {}.',
    'a photo of a cool {}.',
    'a photo of a small {}.',
    'a tattoo of the {}.',
)

VILD_TEMPLATES: Tuple[str, ...] = (
    'a photo of a {}.',
    'This is a photo of a {}',
    'There is a {} in the scene',
    'There is the {} in the scene',
    'a photo of a {} in the scene',
    'a photo of a small {}.',
    'a photo of a medium {}.',
    'a photo of a large {}.',
    'This is a photo of a small {}.',
    'This is a photo of a medium {}.',
    'This is a photo of a large {}.',
    'There is a small {} in the scene.',
    'There is a medium {} in the scene.',
    'There is a large {} in the scene.',
)

# MaskCLIP appends five scene templates to the 80 ImageNet ones.
MASKCLIP_TEMPLATES: Tuple[str, ...] = IMAGENET_TEMPLATES + (
    'there is a {} in the scene.',
    'there is the {} in the scene.',
    'this is a {} in the scene.',
    'this is the {} in the scene.',
    'this is one {} in the scene.',
)

SINGLE_TEMPLATE: Tuple[str, ...] = ('a photo of a {}.',)

TEMPLATE_SETS = {
    'imagenet': IMAGENET_TEMPLATES,
    'vild': VILD_TEMPLATES,
    'maskclip': MASKCLIP_TEMPLATES,
    'single': SINGLE_TEMPLATE,
}


def get_templates(templates: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """Resolve a template set.

    Args:
        templates (str | Sequence[str]): a set name (``'imagenet'``,
            ``'vild'``, ``'maskclip'``, ``'single'``) or a list of templates,
            each with exactly one ``{}`` slot.

    Returns:
        tuple[str]: the templates, in order.

    Raises:
        ValueError: unknown set name, empty list, a template without exactly
            one ``{}`` slot, or repeated templates.
    """
    if isinstance(templates, str):
        if templates not in TEMPLATE_SETS:
            raise ValueError(
                f'unknown template set {templates!r}; choose one of '
                f'{sorted(TEMPLATE_SETS)} or pass a list of templates')
        return TEMPLATE_SETS[templates]
    templates = tuple(templates)
    if not templates:
        raise ValueError('the template list is empty')
    for t in templates:
        if not isinstance(t, str) or t.count('{}') != 1:
            raise ValueError(
                f'template {t!r} must be a string with exactly one "{{}}" '
                'slot for the class name')
    if len(set(templates)) != len(templates):
        raise ValueError('the template list repeats a template')
    return templates
