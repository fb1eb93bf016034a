# clipdense: the two commands of the README.
#   make test        set up .venv (once; rebuilt when requirements change) and run the tests
#   make quickstart  set up .venv and run the main job on the embedded synthetic world
# Variables: PYTHON (interpreter for the venv), VENV (relative to this folder,
# or absolute), TORCH_SPEC and TORCH_INDEX_URL (another torch build, e.g. CUDA),
# CLIPDENSE_CACHE (mmcv wheel cache), MAX_JOBS (compile jobs), PYTEST_ARGS,
# QUICKSTART_ARGS.
PYTHON ?= python3
VENV ?= .venv
VPY = $(VENV)/bin/python
export PYTHON VENV TORCH_SPEC TORCH_INDEX_URL CLIPDENSE_CACHE MAX_JOBS

.PHONY: setup test quickstart clean-venv

setup:
	@bash tools/setup_env.sh

test: setup
	"$(VPY)" -m pytest tests $(PYTEST_ARGS)

quickstart: setup
	"$(VPY)" tools/quickstart.py $(QUICKSTART_ARGS)

clean-venv:
	rm -rf "$(VENV)"
