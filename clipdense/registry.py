"""clipdense registries.

Every registry here is a child of mmsegmentation's registry of the same kind
and has the scope ``clipdense``. With ``default_scope='clipdense'`` a config
can therefore name clipdense modules and mmseg modules without a prefix
(``type='FPNHead'`` resolves through the parent), and mmdet modules as
``mmdet.RetinaNet``.

Detection configs use ``default_scope='mmdet'`` (so that ``FPN`` means
mmdet's FPN) and name clipdense modules with the prefix, e.g.
``backbone=dict(type='clipdense.OpenCLIPResNet', ...)``. MMEngine
resolves a ``scope.Name`` type from any registry by searching the root's
children, so both directions work once :func:`clipdense.utils.register_all_modules`
has imported the three packages.
"""
from mmengine.registry import Registry
from mmseg.registry import DATA_SAMPLERS as MMSEG_DATA_SAMPLERS
from mmseg.registry import DATASETS as MMSEG_DATASETS
from mmseg.registry import EVALUATOR as MMSEG_EVALUATOR
from mmseg.registry import HOOKS as MMSEG_HOOKS
from mmseg.registry import LOOPS as MMSEG_LOOPS
from mmseg.registry import METRICS as MMSEG_METRICS
from mmseg.registry import MODEL_WRAPPERS as MMSEG_MODEL_WRAPPERS
from mmseg.registry import MODELS as MMSEG_MODELS
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMSEG_OPTIM_WRAPPER_CONSTRUCTORS
from mmseg.registry import OPTIM_WRAPPERS as MMSEG_OPTIM_WRAPPERS
from mmseg.registry import OPTIMIZERS as MMSEG_OPTIMIZERS
from mmseg.registry import PARAM_SCHEDULERS as MMSEG_PARAM_SCHEDULERS
from mmseg.registry import RUNNERS as MMSEG_RUNNERS
from mmseg.registry import TASK_UTILS as MMSEG_TASK_UTILS
from mmseg.registry import TRANSFORMS as MMSEG_TRANSFORMS
from mmseg.registry import VISBACKENDS as MMSEG_VISBACKENDS
from mmseg.registry import VISUALIZERS as MMSEG_VISUALIZERS
from mmseg.registry import WEIGHT_INITIALIZERS as MMSEG_WEIGHT_INITIALIZERS

SCOPE = 'clipdense'


def _child(name, parent, location):
    registry = Registry(name, parent=parent, scope=SCOPE, locations=[location])
    # MMEngine resolves ``scope.Name`` from another package's registry by
    # looking among the *root's direct children* only; ours hang below
    # mmseg's. Listing the same node under the root as well lets mmdet (and
    # any other OpenMMLab package) find ``clipdense.X`` while unprefixed
    # names still fall back to mmseg through the real parent.
    root = registry._get_root_registry()
    root._children.setdefault(SCOPE, registry)
    return registry


RUNNERS = _child('runner', MMSEG_RUNNERS, 'clipdense.engine')
LOOPS = _child('loop', MMSEG_LOOPS, 'clipdense.engine')
HOOKS = _child('hook', MMSEG_HOOKS, 'clipdense.engine')
DATASETS = _child('dataset', MMSEG_DATASETS, 'clipdense.datasets')
DATA_SAMPLERS = _child('data sampler', MMSEG_DATA_SAMPLERS, 'clipdense.datasets')
TRANSFORMS = _child('transform', MMSEG_TRANSFORMS, 'clipdense.datasets')
MODELS = _child('model', MMSEG_MODELS, 'clipdense.models')
MODEL_WRAPPERS = _child('model_wrapper', MMSEG_MODEL_WRAPPERS, 'clipdense.models')
WEIGHT_INITIALIZERS = _child('weight initializer', MMSEG_WEIGHT_INITIALIZERS,
                             'clipdense.models')
OPTIMIZERS = _child('optimizer', MMSEG_OPTIMIZERS, 'clipdense.engine')
OPTIM_WRAPPERS = _child('optim_wrapper', MMSEG_OPTIM_WRAPPERS, 'clipdense.engine')
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    MMSEG_OPTIM_WRAPPER_CONSTRUCTORS,
                                    'clipdense.engine')
PARAM_SCHEDULERS = _child('parameter scheduler', MMSEG_PARAM_SCHEDULERS,
                          'clipdense.engine')
METRICS = _child('metric', MMSEG_METRICS, 'clipdense.evaluation')
EVALUATOR = _child('evaluator', MMSEG_EVALUATOR, 'clipdense.evaluation')
TASK_UTILS = _child('task util', MMSEG_TASK_UTILS, 'clipdense.models')
VISUALIZERS = _child('visualizer', MMSEG_VISUALIZERS, 'clipdense.visualization')
VISBACKENDS = _child('vis_backend', MMSEG_VISBACKENDS, 'clipdense.visualization')
