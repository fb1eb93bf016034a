"""``make proxy-clip``: build the synthetic world's proxy CLIP (issue #25):
the rich-caption corpus and a ViT with 8 px patches trained on it, cached
(see :mod:`clipdense.apis.proxy_clip`)."""
from clipdense.apis.proxy_clip import main

if __name__ == '__main__':
    main()
