from .inference import inference_model, init_model, load_image
from clipdense.models.reco.image_index import ImageIndex
from .pseudo_labels import write_pseudo_labels

__all__ = ['ImageIndex', 'write_pseudo_labels', 'init_model', 'inference_model', 'load_image']
