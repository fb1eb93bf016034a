from .contrastive_clip import ContrastiveCLIP, export_open_clip_state_dict

__all__ = ['ContrastiveCLIP', 'export_open_clip_state_dict']
