from .affordance_clip import AffordanceCLIP  # noqa: F401
from .anovl_detector import AnoVLDetector  # noqa: F401
from .batched_slide import BatchedSlideMixin, SlideBatchEncoderDecoder  # noqa: F401
from .denseclip import DenseCLIPSegmentor  # noqa: F401
from .ovseg import OVSeg  # noqa: F401
from .winclip_detector import WinCLIPDetector  # noqa: F401
