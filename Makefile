# clipdense: the two commands of the README.
#   make test        set up .venv (once; rebuilt when requirements change) and run the tests
#   make quickstart  set up .venv and run the main job on the embedded synthetic world
#   make proxy-clip  build (once, cached) the proxy CLIP for the method benchmarks (~1 h on 2 cores)
# Variables: PYTHON (interpreter for the venv), VENV (relative to this folder,
# or absolute), TORCH_SPEC and TORCH_INDEX_URL (another torch build, e.g. CUDA),
# CLIPDENSE_CACHE (mmcv wheel cache), MAX_JOBS (compile jobs), PYTEST_ARGS,
# QUICKSTART_ARGS, PROXY_ARGS.
PYTHON ?= python3
VENV ?= .venv
VPY = $(VENV)/bin/python
export PYTHON VENV TORCH_SPEC TORCH_INDEX_URL CLIPDENSE_CACHE MAX_JOBS

.PHONY: setup test quickstart proxy-clip clean-venv

setup:
	@bash tools/setup_env.sh

test: setup
	"$(VPY)" -m pytest tests $(PYTEST_ARGS)

quickstart: setup
	"$(VPY)" tools/quickstart.py $(QUICKSTART_ARGS)

proxy-clip: setup
	"$(VPY)" tools/proxy_clip.py $(PROXY_ARGS)

clean-venv:
	rm -rf "$(VENV)"
