"""``make quickstart``: the main job on the embedded synthetic world.

Generates the world, trains the tiny CLIP on its captions, trains a
CLIP-backbone segmentor on the source style and evaluates it on the source
and every target style (see :mod:`clipdense.apis.synthetic_pipeline`).
"""
from clipdense.apis.synthetic_pipeline import main

if __name__ == '__main__':
    main()
