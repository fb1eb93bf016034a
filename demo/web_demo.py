"""Browser demo: open-vocabulary segmentation, anomaly and affordance heat
maps of your own images (gradio).

    make quickstart            # once: the tiny CLIP the default models use
    .venv/bin/python demo/web_demo.py            # open http://127.0.0.1:7860

    python demo/web_demo.py --config CONFIG --checkpoint CKPT --device cuda:0
    python demo/web_demo.py --host 0.0.0.0 --port 8080   # reachable from others

Tabs:

* **Segmentation**: upload an image (or pick an example), type a
  vocabulary with the syntax of ``demo/image_demo.py`` (commas separate
  classes, ``|`` synonyms of one class: ``sofa|couch, cat, floor``), choose
  a model (every training-free config of ``configs/*/metafile.yml``, and the
  ``--config`` given), get the overlay, a legend with each class's share of
  the pixels and, on request, one class's score heat map. Vocabularies of
  ``LABELS_ONLY_MIN_CLASSES`` (100) classes or more run labels-only (no
  full-size scores) unless a heat map is asked for.
* **Anomaly**: an object name -> anomaly heat map and image score
  (AnoVL / WinCLIP, training-free).
* **Affordance**: action prompts (``hold; drink with``) -> one heat map each
  (AffordanceCLIP; without a checkpoint the untrained CLIP baseline,
  ``test_cfg.heatmap='clip_value'``).

Without arguments every tab uses the synthetic world's tiny CLIP, which
``make quickstart`` writes to ``work_dirs/quickstart/tiny_clip.pt`` (paths in
the configs are relative: start the demo from the repository root).
``--config`` adds a model to the tab of its task (its metafile's ``Task``,
segmentation for configs without one) and selects it; a trained config
needs ``--checkpoint``. Bad input (no image, a file that is not an image,
an empty or too long vocabulary, a config that needs a checkpoint, missing
weights) is reported in the page, never as a stack trace.

The page logic is the class :class:`WebDemo` (plain functions of the inputs,
tested without a browser); :func:`build_ui` lays it out with gradio.
"""
import argparse
import collections
import html
import os
import os.path as osp
import sys
import time
import traceback

import numpy as np

os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')  # offline, no telemetry
os.environ.setdefault('HF_HUB_OFFLINE', '1')

DEMO_DIR = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(DEMO_DIR)
for _p in (ROOT, DEMO_DIR):  # clipdense (the checkout's) and image_demo
    if _p not in sys.path:
        sys.path.insert(0, _p)

import image_demo as cli  # noqa: E402  (the command-line demo: vocabulary, drawing)

DEFAULT_SEG = 'configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py'
DEFAULT_ANOMALY = 'configs/anovl/anovl-tfa_clip-synth-rn_synthetic-mvtec-128x128.py'
DEFAULT_AFFORDANCE = ('configs/affordanceclip/'
                      'affordanceclip_clip-synth-rn_1xb16-1k_synthetic-refer-128x128.py')
EXAMPLE_IMAGE = 'demo/demo.png'
EXAMPLE_VOCABULARY = 'a ball, a spoon, under the sky, on the grass, on a road'
TAB_TITLES = {'semseg': 'Segmentation', 'anomaly': 'Anomaly', 'affordance': 'Affordance'}


class PageError(ValueError):
    """Bad input, shown in the page as ``Error: ...``."""


Choice = collections.namedtuple('Choice', 'label config checkpoint cfg_options needs_checkpoint')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default=None,
                   help='add this model to the tab of its task and select it')
    p.add_argument('--checkpoint', default=None, help='checkpoint of --config')
    p.add_argument('--cfg-options', nargs='+', default=None,
                   help='overrides key=value of --config (mmengine DictAction)')
    p.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda:0')
    p.add_argument('--host', default='127.0.0.1',
                   help='address to listen on (default 127.0.0.1, this machine '
                   'only; 0.0.0.0 for every interface)')
    p.add_argument('--port', type=int, default=7860, help='port (default 7860)')
    p.add_argument('--max-classes', type=int, default=1000,
                   help='refuse longer vocabularies (default 1000)')
    p.add_argument('--max-megapixels', type=float, default=16.0,
                   help='refuse larger images (default 16)')
    p.add_argument('--opacity', type=float, default=0.5, help='mask opacity in [0, 1]')
    return p


def _rel(path):
    return osp.relpath(osp.abspath(path), ROOT).replace(osp.sep, '/') \
        if osp.abspath(path).startswith(ROOT + osp.sep) else path


def model_choices(args):
    """``{task: OrderedDict(label -> Choice)}``: the training-free configs of
    the metafiles (the tiny synthetic ones first), the affordance baseline,
    and ``--config`` (first in its tab). The metafiles' configs are given by
    absolute path; the weight files they name stay relative to the working
    directory (``work_dirs/quickstart/tiny_clip.pt``)."""
    from clipdense.utils.metafiles import all_models
    models = all_models(ROOT)
    by_config = {m['Config']: m for m in models}
    out = {t: collections.OrderedDict() for t in TAB_TITLES}

    def label_of(m, suffix=''):
        return f'{m["Collection"]}: {osp.basename(m["Config"])[:-3]}{suffix}'

    if args.config:
        rel = _rel(args.config)
        meta = by_config.get(rel, {})
        task = meta.get('Task', 'semseg')
        if task not in out:
            raise SystemExit(f'error: {args.config} is a {task} config; the web '
                             f'demo shows {", ".join(out)} models')
        opts = _cfg_options(args.cfg_options)
        needs = not meta.get('Training-free', True) and not args.checkpoint
        lab = (label_of(meta) if meta else osp.basename(rel)) + ' (--config)'
        out[task][lab] = Choice(lab, args.config, args.checkpoint, opts, needs)
    defaults = (DEFAULT_SEG, DEFAULT_ANOMALY, DEFAULT_AFFORDANCE)
    tiny_first = sorted(models, key=lambda m: (m['Config'] not in defaults,
                                               'synth' not in m['Config'], m['Config']))
    for m in tiny_first:
        if m['Task'] in out and m['Training-free']:
            lab = label_of(m)
            out[m['Task']].setdefault(lab, Choice(lab, osp.join(ROOT, m['Config']), None,
                                                  None, False))
    aff = by_config.get(DEFAULT_AFFORDANCE)
    if aff is not None:
        lab = label_of(aff, ', untrained CLIP baseline (clip_value)')
        out['affordance'].setdefault(lab, Choice(
            lab, osp.join(ROOT, DEFAULT_AFFORDANCE), None,
            {'model.test_cfg.heatmap': 'clip_value'}, False))
    return out


def _cfg_options(options):
    if not options:
        return None
    from mmengine.config import DictAction
    ns = argparse.Namespace()
    DictAction(option_strings=[], dest='o')(None, ns, options)
    return ns.o


def _to_rgb(bgr):
    return np.ascontiguousarray(bgr[..., ::-1])


def error_md(msg):
    return f"**Error:** {html.escape(str(msg), quote=False)}"


class WebDemo:
    """The page's functions (no gradio needed): each takes the widgets'
    values and returns the outputs' values, with a message that starts with
    ``**Error:**`` for bad input."""

    def __init__(self, args, max_models=2):
        self.args = args
        self.choices = model_choices(args)
        self.max_models = max_models
        self._models = collections.OrderedDict()  # label -> model (LRU)

    # -- models -----------------------------------------------------------
    def model(self, task, label):
        choices = self.choices[task]
        if not choices:
            raise PageError(f'no {task} model: start the demo with --config')
        choice = choices.get(label) or next(iter(choices.values()))
        if choice.label in self._models:
            self._models.move_to_end(choice.label)
            return choice, self._models[choice.label]
        if choice.needs_checkpoint:
            raise PageError(
                f'{choice.config} is a trained config: it needs a checkpoint. '
                f'Start the demo with --config {choice.config} --checkpoint CKPT')
        from clipdense.apis import init_model
        try:
            model = init_model(choice.config, choice.checkpoint, device=self.args.device,
                               cfg_options=choice.cfg_options)
        except FileNotFoundError as e:
            hint = (' (run `make quickstart` first: it writes the tiny CLIP; '
                    'start the demo from the repository root)'
                    if 'work_dirs/quickstart' in str(e) else '')
            raise PageError(f'cannot build {choice.label}: {e}{hint}') from e
        self._models[choice.label] = model
        while len(self._models) > self.max_models:
            self._models.popitem(last=False)
        return choice, model

    def _image(self, image):
        from clipdense.fileio import load_image
        if image is None or (isinstance(image, str) and not image.strip()):
            raise PageError('no image: upload an image or pick an example')
        try:
            img = load_image(image)
        except FileNotFoundError as e:
            raise PageError(str(e)) from e
        except ValueError as e:
            msg = str(e).replace(image, osp.basename(image)) if isinstance(image, str) \
                else str(e)
            raise PageError(f'cannot read the uploaded file: {msg}') from e
        if img.shape[0] * img.shape[1] > self.args.max_megapixels * 1e6:
            raise PageError(f'the image is {img.shape[1]}x{img.shape[0]}, above '
                            f'{self.args.max_megapixels:g} megapixels: downscale it')
        return img

    def _guard(self, fn, n_out):
        """Run ``fn``; bad input -> (None, ..., error message); anything else
        -> a short message in the page and the traceback in the log."""
        try:
            return fn()
        except (PageError, cli.DemoError, ValueError, TypeError, FileNotFoundError) as e:
            return (None, ) * n_out + (error_md(e), )
        except Exception as e:  # noqa: BLE001  (the page must not show a trace)
            traceback.print_exc()
            return (None, ) * n_out + (error_md(
                f'the model failed ({type(e).__name__}: {e}); see the server log'), )

    # -- segmentation -----------------------------------------------------
    def parse_vocabulary(self, text):
        if text is None or not text.replace(',', '').replace('|', '').strip():
            raise PageError('the vocabulary is empty: type class names separated '
                            'by commas, e.g. "cat, dog, grass" ("|" joins '
                            'synonyms of one class: "sofa|couch")')
        vocab = cli.parse_vocabulary_arg(text)
        if len(vocab) > self.args.max_classes:
            raise PageError(f'the vocabulary is too long: {len(vocab)} classes, this '
                            f'demo takes at most {self.args.max_classes} (--max-classes)')
        return vocab

    def segment(self, image, vocabulary, label=None, heat_class=None):
        """-> (overlay RGB, legend HTML, heat map RGB or None, message)."""
        def run():
            vocab = self.parse_vocabulary(vocabulary)
            img = self._image(image)
            heat_index = None
            if heat_class and heat_class.strip():
                heat_index = find_class(vocab, heat_class)
            choice, model = self.model('semseg', label)
            from clipdense.apis.inference import (inference_model,
                                                  set_model_vocabulary)
            try:
                set_model_vocabulary(model, vocab)
            except TypeError as e:
                raise PageError(f'{choice.label} has a fixed class list and cannot '
                                f'take a vocabulary ({e})') from e
            except ValueError as e:
                raise PageError(f'the vocabulary does not fit the model: {e}') from e
            t0 = time.perf_counter()
            result = inference_model(model, img, labels_only=False if heat_index is not None
                                     else None,
                                     max_pixels=int(self.args.max_megapixels * 1e6))
            dt = time.perf_counter() - t0
            classes = model.dataset_meta['classes']
            palette = model.dataset_meta['palette']
            seg = result.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
            overlay, _ = cli.draw_overlay(img, seg, classes, palette, self.args.opacity)
            heat = None
            if heat_index is not None:
                scores = cli.class_scores(result)
                heat = _to_rgb(cli.draw_heatmap(img, scores[heat_index],
                                                cli.display_name(classes[heat_index])))
            labels_only = 'seg_logits' not in result
            msg = (f'{img.shape[1]}x{img.shape[0]} image, {len(classes)} classes, '
                   f'{choice.label}, {dt:.2f} s'
                   + (' (labels only: no class scores for a vocabulary this long)'
                      if labels_only else ''))
            return (_to_rgb(overlay), legend_html(seg, classes, palette), heat, msg)

        return self._guard(run, 3)

    # -- anomaly ----------------------------------------------------------
    def anomaly(self, image, class_name, label=None):
        """-> (image | heat map RGB, message with the image score)."""
        def run():
            if not class_name or not class_name.strip():
                raise PageError('no object name: type what the image shows, e.g. '
                                '"bottle" (the prompts say "a photo of a damaged bottle")')
            img = self._image(image)
            choice, model = self.model('anomaly', label)
            from clipdense.visualization.anomaly import anomaly_heatmap
            picture, _, score = anomaly_heatmap(model, img, class_name=class_name.strip(),
                                                opacity=self.args.opacity)
            return (_to_rgb(picture), f'image anomaly score **{score:.4f}** '
                    f'({choice.label}; the heat map is scaled to its own min/max)')
        return self._guard(run, 1)

    # -- affordance -------------------------------------------------------
    def affordance(self, image, prompts, label=None):
        """-> (image | one heat map per prompt RGB, message)."""
        def run():
            from clipdense.visualization.affordance import (affordance_heatmaps,
                                                            heatmap_panel,
                                                            parse_prompts)
            if not prompts or not prompts.strip():
                raise PageError('no action: type one or more actions separated by ";", '
                                'e.g. "hold; drink with"')
            names = parse_prompts(prompts)
            img = self._image(image)
            choice, model = self.model('affordance', label)
            heats = affordance_heatmaps(model, img, names)
            panel = heatmap_panel(img, heats, names, self.args.opacity)
            peaks = ', '.join(f'{p}: max {h.max():.2f}' for p, h in zip(names, heats))
            return _to_rgb(panel), f'{choice.label}; {peaks}'
        return self._guard(run, 1)


def find_class(vocab, name):
    """Index of ``name`` (a class or one of its synonyms) in ``vocab``."""
    key = cli._norm(name)
    for i, entry in enumerate(vocab):
        if key == cli._norm(cli.display_name(entry)) or \
                key in (cli._norm(s) for s in entry.split(',')):
            return i
    raise PageError(f'heat map: {name.strip()!r} is not in the vocabulary; type one '
                    f'of {[cli.display_name(v) for v in vocab][:20]}')


def legend_html(seg, classes, palette):
    """Every class of the vocabulary with its colour and share of the
    pixels (classes not found are listed as 0%)."""
    counts = np.bincount(seg.ravel(), minlength=len(classes))[:len(classes)]
    total = max(int(seg.size), 1)
    order = sorted(range(len(classes)), key=lambda k: -counts[k])
    rows = []
    for k in order:
        r, g, b = (int(v) for v in palette[k])
        name = html.escape(cli.display_name(classes[k]))
        share = 100.0 * counts[k] / total
        rows.append(
            f'<li class="legend-item" data-class="{name}" style="opacity:'
            f'{1.0 if counts[k] else 0.5}"><span class="swatch" style="display:'
            f'inline-block;width:1em;height:1em;margin-right:.4em;vertical-align:'
            f'middle;background:rgb({r},{g},{b})"></span><span class="legend-name">'
            f'{name}</span> <span class="legend-share">{share:.1f}%</span></li>')
    return ('<ul class="legend" style="list-style:none;padding-left:0">'
            + ''.join(rows) + '</ul>')


def build_ui(demo: WebDemo):
    """The page: one tab per task."""
    import gradio as gr

    def dropdown(task, elem_id):
        names = list(demo.choices[task])
        return gr.Dropdown(names, value=names[0] if names else None, label='Model',
                           elem_id=elem_id)

    example = osp.join(ROOT, EXAMPLE_IMAGE)
    with gr.Blocks(title='clipdense web demo') as page:
        gr.Markdown('# clipdense: CLIP dense prediction\nUpload an image, type what to '
                    'look for, press the button. Models run on this machine '
                    f'({demo.args.device}).')
        with gr.Tab(TAB_TITLES['semseg'], elem_id='tab-semseg'):
            with gr.Row():
                with gr.Column():
                    seg_img = gr.Image(type='filepath', label='Image', sources=['upload'],
                                       elem_id='seg-image')
                    seg_vocab = gr.Textbox(
                        label='Vocabulary (commas separate classes, "|" synonyms)',
                        placeholder='cat, dog, sofa|couch, grass', elem_id='seg-vocabulary')
                    seg_heat = gr.Textbox(label='Heat map of (optional, one class)',
                                          elem_id='seg-heat-class')
                    seg_model = dropdown('semseg', 'seg-model')
                    seg_btn = gr.Button('Segment', variant='primary', elem_id='seg-run')
                with gr.Column():
                    seg_msg = gr.Markdown(elem_id='seg-message')
                    seg_out = gr.Image(label='Overlay', elem_id='seg-overlay',
                                       interactive=False, format='png')
                    seg_legend = gr.HTML(elem_id='seg-legend')
                    seg_heat_out = gr.Image(label='Heat map', elem_id='seg-heatmap',
                                            interactive=False, format='png')
            if osp.isfile(example):
                gr.Examples([[example, EXAMPLE_VOCABULARY]], inputs=[seg_img, seg_vocab])
            # preprocess=False: the raw upload reaches clipdense's loader, which
            # reports a file that is not an image (gradio's would only say "Error")
            seg_btn.click(lambda i, v, m, h: _reorder(demo.segment(_path(i), v, m, h)),
                          [seg_img, seg_vocab, seg_model, seg_heat],
                          [seg_msg, seg_out, seg_legend, seg_heat_out], preprocess=False)
        with gr.Tab(TAB_TITLES['anomaly'], elem_id='tab-anomaly'):
            with gr.Row():
                with gr.Column():
                    an_img = gr.Image(type='filepath', label='Image', sources=['upload'])
                    an_name = gr.Textbox(label='Object name', placeholder='bottle')
                    an_model = dropdown('anomaly', 'anomaly-model')
                    an_btn = gr.Button('Find anomalies', variant='primary')
                with gr.Column():
                    an_msg = gr.Markdown()
                    an_out = gr.Image(label='Image | anomaly heat map', interactive=False,
                                      format='png')
            if osp.isfile(example):
                gr.Examples([[example, 'ball']], inputs=[an_img, an_name])
            an_btn.click(lambda i, n, m: demo.anomaly(_path(i), n, m)[::-1],
                         [an_img, an_name, an_model], [an_msg, an_out], preprocess=False)
        with gr.Tab(TAB_TITLES['affordance'], elem_id='tab-affordance'):
            with gr.Row():
                with gr.Column():
                    af_img = gr.Image(type='filepath', label='Image', sources=['upload'])
                    af_prompt = gr.Textbox(label='Actions (";" between them)',
                                           placeholder='hold; drink with')
                    af_model = dropdown('affordance', 'affordance-model')
                    af_btn = gr.Button('Show where', variant='primary')
                with gr.Column():
                    af_msg = gr.Markdown()
                    af_out = gr.Image(label='Image | one heat map per action',
                                      interactive=False, format='png')
            if osp.isfile(example):
                gr.Examples([[example, 'hold; drink with']], inputs=[af_img, af_prompt])
            af_btn.click(lambda i, p, m: demo.affordance(_path(i), p, m)[::-1],
                         [af_img, af_prompt, af_model], [af_msg, af_out], preprocess=False)
    return page


def _path(value):
    """The file of an image widget's raw value (``{'path': ...}`` or a
    path; None when empty)."""
    if isinstance(value, dict):
        return value.get('path')
    return getattr(value, 'path', value)


def _reorder(out):
    overlay, legend, heat, msg = out
    return msg, overlay, legend or '', heat


def main(argv=None):
    args = parse_args().parse_args(argv)
    if not 0.0 <= args.opacity <= 1.0:
        raise SystemExit(f'error: --opacity must be in [0, 1], got {args.opacity}')
    if args.config and not osp.isfile(args.config):
        raise SystemExit(f'error: config file not found: {args.config}')
    if args.checkpoint and not osp.isfile(args.checkpoint):
        raise SystemExit(f'error: checkpoint not found: {args.checkpoint}')
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise SystemExit('error: the web demo needs gradio: pip install -r '
                         'requirements/runtime.txt (or make setup)')
    demo = WebDemo(args)
    page = build_ui(demo)
    import clipdense.apis  # noqa: F401  (imported now, not at the first click)
    print(f'clipdense web demo on http://{args.host}:{args.port} '
          f'(device {args.device}; Ctrl+C stops it)', flush=True)
    if args.host not in ('127.0.0.1', 'localhost', '::1'):
        print(f'note: listening on {args.host}: anyone who reaches this machine '
              'can use the demo (and its compute); there is no login', flush=True)
    page.queue(default_concurrency_limit=1).launch(
        server_name=args.host, server_port=args.port, share=False, inbrowser=False,
        show_error=False, allowed_paths=[osp.join(ROOT, 'demo')])


if __name__ == '__main__':
    main()
