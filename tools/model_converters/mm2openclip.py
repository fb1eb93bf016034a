"""Export the open_clip weights inside a clipdense runner checkpoint.

    python tools/model_converters/mm2openclip.py work_dirs/x/epoch_20.pth out.pt [--prefix clip.]

The output is a plain open_clip state dict (``model.load_state_dict`` of
``open_clip.create_model(arch)``), accepted by every ``pretrained=`` argument
of clipdense's backbones and text encoders. The file is written atomically.
A checkpoint that needs full unpickling is refused (``--trust-checkpoint``
for a file you trust); bad or truncated files end with one ``error:`` line
and exit status 2.
"""
import argparse
import io

import torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='runner checkpoint (.pth)')
    parser.add_argument('out', help='output open_clip state dict (.pt)')
    parser.add_argument('--prefix', default='clip.',
                        help='key prefix of the open_clip model')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='allow full unpickling of the checkpoint (only for '
                        'files you trust; sets CLIPDENSE_TRUST_CHECKPOINTS=1)')
    args = parser.parse_args(argv)
    if args.trust_checkpoint:
        import os
        os.environ['CLIPDENSE_TRUST_CHECKPOINTS'] = '1'

    from clipdense.fileio import atomic_write_bytes
    from clipdense.models.pretraining import export_open_clip_state_dict
    from clipdense.engine.strict_load import CheckpointError, read_checkpoint
    try:
        state = export_open_clip_state_dict(read_checkpoint(args.checkpoint),
                                            prefix=args.prefix)
    except KeyError as err:  # no keys with the prefix
        raise CheckpointError(f'{args.checkpoint}: {err.args[0]}') from None
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(args.out, buf.getvalue())
    print(f'wrote {len(state)} tensors to {args.out}')


if __name__ == '__main__':
    from clipdense.engine.launch import run_main
    run_main(main)
