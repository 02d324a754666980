# The book's two jobs, for a fresh machine with Python 3.11 and make:
#   make book   set up, execute every notebook, build the static site into _build/html
#   make test   set up, run the library tests, nbval over the notebooks, the book build
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# The workshop page comes last: it reads the chapters' recorded execution times.
NOTEBOOKS := book/concepts.ipynb $(sort $(wildcard notebooks/*.ipynb)) book/bars.ipynb book/inspect.ipynb book/workshop.ipynb

.PHONY: all setup book execute site test retrain-check clean

all: book

$(STAMP): pyproject.toml constraints.txt
	@echo "==> creating $(VENV) and installing pinned dependencies (a few minutes the first time)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --progress-bar off -c constraints.txt -e ".[book,test]"
	@touch $(STAMP)

setup: $(STAMP)

# Executes the notebooks in reading order, printing each cell as it runs, and stores the
# outputs (with a fingerprint of the code that made them) in the notebooks.
execute: setup
	$(VENV)/bin/mobileopt execute $(NOTEBOOKS)

# Builds the site from the stored outputs; warnings are errors.
site: setup
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

book: execute site
	@echo "==> the book is in _build/html/index.html"

test: setup
	$(PY) -m pytest

# Retrains the shipped models from scratch and checks they match the shipped weights.
retrain-check: setup
	$(VENV)/bin/mobileopt retrain-check

clean:
	rm -rf _build
