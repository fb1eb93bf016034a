"""Files: safe loading of checkpoints and weights, atomic writing, image
reading. The lowest layer beside the registries: models, engine, apis and
tools all use it, and it imports nothing else of clipdense."""
from .atomic import AtomicLocalBackend, atomic_write_bytes
from .errors import UnsafeCheckpointError
from .image import load_image
from .safe_load import (TRUST_ENV, install_safe_globals, mmengine_safe_globals,
                        safe_torch_load, trust_checkpoints_enabled)

__all__ = ['AtomicLocalBackend', 'atomic_write_bytes', 'UnsafeCheckpointError',
           'load_image', 'TRUST_ENV', 'install_safe_globals', 'mmengine_safe_globals',
           'safe_torch_load', 'trust_checkpoints_enabled']
