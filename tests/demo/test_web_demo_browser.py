"""demo/web_demo.py in a real browser: the server runs as a subprocess on a
free port of 127.0.0.1, headless Chromium (the Debian package, driven by
Playwright) uploads an image, types a vocabulary, runs and waits; the
overlay must be shown and differ from the input, the legend must list the
typed classes, and bad input must show its message in the page.

The model is the default of the demo (MaskCLIP on the synthetic world's
tiny CLIP) with random weights written where ``make quickstart`` puts the
trained ones (``work_dirs/quickstart/tiny_clip.pt``, relative to the
server's working directory, here a temporary folder).

A screenshot of the page is saved under the test's temporary folder, and
also to ``$CLIPDENSE_WEB_DEMO_SCREENSHOT`` when set; ``docs/web_demo.png``
is written by::

    CLIPDENSE_WEB_DEMO_SCREENSHOT=docs/web_demo.png \\
        python -m pytest tests/demo/test_web_demo_browser.py
"""
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HOW = ('install it with `bash tools/install_browser.sh` (Debian packages chromium '
       'and chromium-driver) and `pip install -r requirements/tests.txt` (playwright)')
# $CLIPDENSE_CHROMIUM: another Chromium binary
CHROMIUM = (os.environ.get('CLIPDENSE_CHROMIUM') or shutil.which('chromium')
            or '/usr/bin/chromium')
if not osp.isfile(CHROMIUM):
    pytest.skip(f'headless Chromium not found: {HOW}', allow_module_level=True)
sync_api = pytest.importorskip('playwright.sync_api',
                               reason=f'Playwright is not installed: {HOW}')

CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
                  '--no-first-run', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync']
IMAGE = osp.join(ROOT, 'demo', 'demo.png')
VOCABULARY = 'under the sky, on the grass|on a lawn, a ball'
TYPED = ['under the sky', 'on the grass|on a lawn', 'a ball']  # the legend's names
pytestmark = pytest.mark.slow


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def server(quickstart_dir):
    work = quickstart_dir  # random tiny CLIP where make quickstart writes it
    port = free_port()
    log = open(work / 'server.log', 'w+')
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1',
               GRADIO_ANALYTICS_ENABLED='False',
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.Popen([sys.executable, osp.join(ROOT, 'demo', 'web_demo.py'),
                             '--port', str(port)], cwd=str(work), env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}/'

    def output():
        log.flush()
        log.seek(0)
        return log.read()[-4000:]

    try:
        deadline = time.time() + 300
        while True:
            if proc.poll() is not None:
                raise AssertionError(f'web demo exited ({proc.returncode}):\n{output()}')
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise AssertionError(f'web demo did not answer on {url}:\n{output()}')
            time.sleep(1)
        yield dict(url=url, output=output, work=work)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def message(page):
    return page.inner_text('#seg-message')


def wait_message(page, text, timeout=180000):
    page.wait_for_function(
        '([sel, t]) => { const e = document.querySelector(sel); '
        'return e && e.innerText.includes(t); }', arg=['#seg-message', text],
        timeout=timeout)
    return message(page)


def test_browser_segmentation(server, tmp_path):
    import cv2
    with sync_api.sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={'width': 1280, 'height': 900})
        try:
            page = ctx.new_page()
            page.goto(server['url'])
            page.wait_for_selector('#seg-run', timeout=120000)

            # no image yet: the page says so
            page.fill('#seg-vocabulary textarea', VOCABULARY)
            page.click('#seg-run')
            assert 'no image' in wait_message(page, 'Error')

            # a file that is not an image: the page says so
            broken = tmp_path / 'holiday.png'
            broken.write_bytes(b'not an image at all')
            page.set_input_files('#seg-image input[type=file]', str(broken))
            page.click('#seg-run')
            msg = wait_message(page, 'cannot read the uploaded file')
            assert 'holiday.png is not an image' in msg, msg
            page.click('#seg-image button[aria-label="Remove Image"]')

            # an image and an empty vocabulary: the page says so
            page.set_input_files('#seg-image input[type=file]', IMAGE)
            page.wait_for_selector('#seg-image img', timeout=60000)
            page.fill('#seg-vocabulary textarea', '  ,  ')
            page.click('#seg-run')
            msg = wait_message(page, 'vocabulary is empty')
            assert msg.startswith('Error:'), msg
            assert 'Traceback' not in page.content()

            # a vocabulary (and the heat map of one class, named by a synonym):
            # overlay, legend, heat map
            page.fill('#seg-vocabulary textarea', VOCABULARY)
            page.fill('#seg-heat-class textarea', 'on a lawn')
            page.click('#seg-run')
            msg = wait_message(page, '3 classes')
            assert 'Error' not in msg, msg
            page.wait_for_selector('#seg-overlay img', timeout=60000)
            page.wait_for_selector('#seg-heatmap img', timeout=60000)
            names = page.locator('#seg-legend .legend-name').all_inner_texts()
            assert sorted(names) == sorted(TYPED), (names, server['output']())

            src = page.get_attribute('#seg-overlay img', 'src')
            resp = page.request.get(src if src.startswith('http')
                                    else server['url'].rstrip('/') + src)
            assert resp.ok, resp.status
            shown = cv2.imdecode(np.frombuffer(resp.body(), np.uint8), cv2.IMREAD_COLOR)
            assert shown is not None, 'the overlay is not an image'
            original = cv2.imread(IMAGE, cv2.IMREAD_COLOR)
            assert shown.shape == original.shape
            diff = np.abs(shown.astype(np.int16) - original.astype(np.int16)).mean()
            assert diff > 5, f'overlay hardly differs from the input ({diff:.2f})'

            shot = str(tmp_path / 'web_demo.png')
            page.screenshot(path=shot, full_page=True)
            target = os.environ.get('CLIPDENSE_WEB_DEMO_SCREENSHOT')
            if target:
                os.makedirs(osp.dirname(osp.abspath(target)), exist_ok=True)
                shutil.copyfile(shot, target)
        finally:
            ctx.close()
    assert 'Traceback' not in server['output'](), server['output']()
