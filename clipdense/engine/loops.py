"""A test loop that runs the model in reduced precision (issue 13).

mmengine's ``TestLoop(fp16=True)`` autocasts to float16 on CUDA and to
bfloat16 on the CPU, with no way to ask for bf16 on a GPU or to refuse fp16
on a CPU. ``PrecisionTestLoop(precision='bf16'|'fp16'|'fp32')`` takes the
precision by name and checks it against the model's device
(:func:`clipdense.engine.precision.check_precision`).
"""
from mmengine.runner import TestLoop

from clipdense.engine.precision import autocast_context, check_precision
from clipdense.registry import LOOPS


@LOOPS.register_module()
class PrecisionTestLoop(TestLoop):
    """``TestLoop`` whose forward passes run under ``precision`` autocast.

    Args:
        precision (str): 'fp32', 'bf16' (CPU or CUDA) or 'fp16' (CUDA).
    """

    def __init__(self, runner, dataloader, evaluator, precision='bf16'):
        super().__init__(runner, dataloader, evaluator)
        self.precision = precision

    def _device(self):
        try:
            return next(self.runner.model.parameters()).device
        except StopIteration:
            return 'cpu'

    def run(self):
        check_precision(self.precision, self._device())
        return super().run()

    def run_iter(self, idx, data_batch):
        with autocast_context(self.precision, self._device()):
            return super().run_iter(idx, data_batch)
