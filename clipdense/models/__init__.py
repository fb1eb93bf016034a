from .utils.clip_archs import register_clip_archs

register_clip_archs()  # clipdense's open_clip architectures, usable by name

from .backbones import *  # noqa: F401,F403,E402
from .decode_heads import *  # noqa: F401,F403,E402
from .detectors import *  # noqa: F401,F403,E402
from .losses import *  # noqa: F401,F403,E402
from .necks import *  # noqa: F401,F403,E402
from .pretraining import *  # noqa: F401,F403,E402
from .region_classifiers import *  # noqa: F401,F403,E402
from .reco import *  # noqa: F401,F403,E402
from .segmentors import *  # noqa: F401,F403,E402
from .text_encoders import *  # noqa: F401,F403,E402
