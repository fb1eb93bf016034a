from .checkpoint import (AtomicLocalBackend, UnsafeCheckpointError,
                         find_resumable_checkpoint, install_checkpoint_safety,
                         safe_torch_load)
from .checkpoint_hook import CheckpointHook
from .dist import prepare_distributed
from .loops import PrecisionTestLoop
from .visualization_hook import RunnerSegVisualizationHook
from .vocabulary_hook import DatasetVocabularyHook

__all__ = [
    'AtomicLocalBackend', 'CheckpointHook', 'UnsafeCheckpointError', 'find_resumable_checkpoint',
    'install_checkpoint_safety', 'safe_torch_load', 'prepare_distributed',
    'DatasetVocabularyHook', 'PrecisionTestLoop',
    'RunnerSegVisualizationHook'
]
