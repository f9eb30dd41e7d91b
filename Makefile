# Two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := run

# Rasa 3.6 needs Python 3.10: the first candidate that really is 3.10
# (pyenv's shim named python3.10 may point at nothing).
PYTHON310 ?= $(shell for p in $$HOME/.pyenv/versions/3.10*/bin/python3.10 $$(command -v python3.10) /usr/bin/python3.10; do \
  [ -x "$$p" ] && "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null && { echo "$$p"; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= embedded

export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL := 3
export RASA_TELEMETRY_ENABLED := false
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export PYTHONWARNINGS := ignore::DeprecationWarning

.PHONY: run test bench install spacy model validate clean

$(VENV)/.installed: requirements.txt
	@test -n "$(PYTHON310)" || { echo "Python 3.10 not found (install pyenv 3.10.13)"; exit 1; }
	@test -x $(PY) || $(PYTHON310) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip check
	@touch $@

install: $(VENV)/.installed

models/spacy_nl/config.cfg: $(VENV)/.installed scripts/build_spacy.py
	$(PY) scripts/build_spacy.py models/spacy_nl

spacy: models/spacy_nl/config.cfg

model: spacy
	@$(PY) scripts/model.py

run: model
	@PROFILE=$(PROFILE) bash scripts/run.sh

test: model
	bash scripts/ensure_chromium.sh
	$(PY) -m pytest tests -q -p no:cacheprovider

bench: model
	$(PY) scripts/bench.py

validate: install
	$(PY) -m rasa data validate --fail-on-warnings

clean:
	rm -rf models/*.tar.gz var .rasa results
