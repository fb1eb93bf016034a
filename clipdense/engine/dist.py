"""torch.distributed on machines without CUDA.

MMEngine's pytorch launcher calls ``torch.cuda.set_device(LOCAL_RANK)`` and
wraps the model in DDP with ``device_ids=[LOCAL_RANK]``; both fail on a CPU
machine. :func:`prepare_distributed` starts the process group itself with the
gloo backend (MMEngine then skips its own initialisation) and asks for a DDP
wrapper without device ids, so ``tools/dist_train.sh CONFIG 2`` runs two CPU
processes. With CUDA nothing changes: the config's backend (nccl) is used.
"""

import torch
import torch.distributed as dist


def prepare_distributed(cfg, launcher: str) -> bool:
    """Prepare ``cfg`` (in place) for ``launcher`` on this machine.

    Returns:
        bool: True when a CPU (gloo) process group was started here.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise RuntimeError(
            f'launcher={launcher!r} needs GPUs; on a CPU machine use '
            '--launcher pytorch (tools/dist_train.sh does) or none.')
    if not dist.is_initialized():
        timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout')
        kwargs = {}
        if timeout is not None:
            import datetime
            kwargs['timeout'] = datetime.timedelta(seconds=timeout)
        dist.init_process_group(backend='gloo', **kwargs)
    env_cfg = cfg.setdefault('env_cfg', {})
    env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    # CPU modules take no device ids in DistributedDataParallel.
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    return True
