"""A segmentation visualization hook that draws with its runner's visualizer.

mmseg's ``SegVisualizationHook`` takes ``Visualizer.get_current_instance()``
when it is built: the newest visualizer registered on mmengine's base
``Visualizer`` class. A visualizer of a subclass (e.g. clipdense's
``AnomalyLocalVisualizer``) is registered on its own class only, so in a
process that ran another experiment before (a notebook, a test session) the
hook drew with that older visualizer, its save_dir and its drawing code,
and the pictures of this run went missing. This hook takes
``runner.visualizer`` before each test/val run instead.
"""
from mmseg.engine.hooks import SegVisualizationHook

from clipdense.registry import HOOKS


@HOOKS.register_module()
class RunnerSegVisualizationHook(SegVisualizationHook):
    """``SegVisualizationHook`` bound to the runner's own visualizer."""

    def before_val(self, runner) -> None:
        self._visualizer = runner.visualizer
        super().before_val(runner)

    def before_test(self, runner) -> None:
        self._visualizer = runner.visualizer
        super().before_test(runner)
