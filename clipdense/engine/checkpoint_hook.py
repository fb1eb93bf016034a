"""A checkpoint hook that never leaves a run without its last good checkpoint.

MMEngine's :class:`~mmengine.hooks.CheckpointHook` with ``max_keep_ckpts``
deletes the oldest kept checkpoint *before* it writes the new one, so a
process stopped during the save (SIGKILL, a pre-empted job, a power cut)
with ``max_keep_ckpts=1`` is left with no checkpoint at all, and its
``last_checkpoint`` pointer is written in place after the save.

:class:`CheckpointHook` here takes exactly MMEngine's arguments and keeps
its behaviour (which files are kept, ``keep_ckpt_ids`` in the message hub,
best checkpoints, publishing), but orders the work so that at every instant
a complete checkpoint is on disk and named by ``last_checkpoint``:

1. the new checkpoint is written completely (to a temporary file, fsynced and
   renamed: :class:`~clipdense.engine.checkpoint.AtomicLocalBackend`);
2. ``last_checkpoint`` is replaced atomically to name it;
3. only then are outdated checkpoints deleted.

A stop between 2 and 3 leaves an outdated file behind; the checkpoint records
it (``clipdense_stale_ckpt_ids``), and a resumed run deletes it. The previous
best checkpoint (``save_best``) is likewise deleted only after the new best
one is written.

It is registered in the ``clipdense`` scope under MMEngine's name, so every
clipdense config that says ``type='CheckpointHook'`` (and MMEngine's default
checkpoint hook of a runner in the ``clipdense`` scope) uses it; detection
configs (scope ``mmdet``) name it ``clipdense.CheckpointHook``.
"""
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook as MMCheckpointHook

from clipdense.registry import HOOKS

from .checkpoint import atomic_write_bytes, install_checkpoint_safety

STALE_KEY = 'clipdense_stale_ckpt_ids'


def _stamp(path):
    try:
        return os.stat(path).st_mtime_ns
    except (OSError, TypeError, ValueError):
        return None


class _DeferredRemovals:
    """A file backend whose ``remove``/``rmtree`` are recorded, not done."""

    def __init__(self, backend):
        self._backend = backend
        self.pending = []

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def remove(self, path):
        self.pending.append(('remove', path, _stamp(path)))

    def rmtree(self, path):
        self.pending.append(('rmtree', path, _stamp(path)))

    def flush(self):
        for kind, path, stamp in self.pending:
            if stamp is not None and _stamp(path) != stamp:
                continue  # written again since: not outdated any more
            getattr(self._backend, kind)(path)
        self.pending = []


@HOOKS.register_module(name='CheckpointHook')
class CheckpointHook(MMCheckpointHook):
    """MMEngine's ``CheckpointHook`` (same arguments) with crash-safe
    ordering: write the new checkpoint, then point ``last_checkpoint`` at it,
    then delete old ones. See the module docstring."""

    def before_train(self, runner) -> None:
        install_checkpoint_safety()  # atomic writes even outside the tools
        super().before_train(runner)
        if self.max_keep_ckpts > 0 and is_main_process():
            # outdated files a stopped run could not delete any more
            stale = runner.message_hub.get_info(STALE_KEY, None) or []
            for step in stale:
                if step not in self.keep_ckpt_ids:
                    self._remove_step(step)

    def _remove_step(self, step) -> None:
        path = self.file_backend.join_path(self.out_dir,
                                           self.filename_tmpl.format(step))
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # e.g. DeepSpeed checkpoints
            self.file_backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        outdated = []
        if self.max_keep_ckpts > 0 and not (
                self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            # _save_checkpoint and _save_best_checkpoint may both save `step`
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        if self.max_keep_ckpts > 0:
            runner.message_hub.update_info(STALE_KEY, list(outdated))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        # 1. the new checkpoint, complete (atomic backend)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        # 2. the pointer, replaced in one rename
        atomic_write_bytes(osp.join(runner.work_dir, 'last_checkpoint'),
                           str(self.last_ckpt).encode('utf-8'))
        # 3. only now the outdated ones
        for old in outdated:
            if old != step:
                self._remove_step(old)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        # MMEngine removes the previous best checkpoint before writing the
        # new one: its removals wait until the new one is written.
        backend = self.file_backend
        deferred = _DeferredRemovals(backend)
        self.file_backend = deferred
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = backend
        deferred.flush()  # not reached when the save failed
