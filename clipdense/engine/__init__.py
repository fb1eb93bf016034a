from .checkpoint import (AtomicLocalBackend, UnsafeCheckpointError,
                         find_resumable_checkpoint, install_checkpoint_safety,
                         safe_torch_load)
from .dist import prepare_distributed

__all__ = [
    'AtomicLocalBackend', 'UnsafeCheckpointError', 'find_resumable_checkpoint',
    'install_checkpoint_safety', 'safe_torch_load', 'prepare_distributed'
]
