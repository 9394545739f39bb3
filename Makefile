# Set-up and main jobs. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.test-installed
# Debian's chromium, driven by Playwright in tests/browser (Playwright's own browsers cannot be
# downloaded here). FASTKERNEL_CHROMIUM names another binary, for the tests too.
CHROMIUM := $(or $(FASTKERNEL_CHROMIUM),/usr/bin/chromium)

.PHONY: run test test-browser browser-deps remote-deps lint bench stress install clean

# The kernelspec is written at install: reinstall when what it is made from changes.
$(STAMP): pyproject.toml src/fastkernel/kernelspec.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m fastkernel install --sys-prefix
	touch $@

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m pip install --quiet nbclient nbformat ipywidgets matplotlib
	$(BIN)/python tools/run_tour.py docs/examples/tour.ipynb

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/mypy
	$(BIN)/lint-imports

# Installs chromium with apt-get when it is missing: as root (CI), or through `sudo -n`.
browser-deps:
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	  echo "error: the browser tests (tests/browser) need Debian's chromium at $(CHROMIUM)," >&2; \
	  echo "  and this user cannot install it. As root: apt-get install chromium" >&2; \
	  echo "  (or set FASTKERNEL_CHROMIUM to a chromium binary; or run pytest -m 'not browser')." >&2; \
	  exit 1; fi; \
	echo "Installing Debian's chromium for tests/browser (apt-get)"; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	$$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null \
	  || { echo "error: apt-get could not install chromium (needed by tests/browser)" >&2; exit 1; }; \
	[ -x "$(CHROMIUM)" ] || { echo "error: chromium installed, but $(CHROMIUM) is missing" >&2; exit 1; }

# Debian's openssh-server for tests/remote (sshd on 127.0.0.2, started and stopped by the tests):
# installed with apt-get when missing, as root (CI) or through `sudo -n`.
SSHD := /usr/sbin/sshd
remote-deps:
	@if [ -x "$(SSHD)" ] && command -v ssh-keygen >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	  echo "error: the remote kernel tests (tests/remote) need Debian's openssh-server ($(SSHD))," >&2; \
	  echo "  and this user cannot install it. As root: apt-get install openssh-server" >&2; \
	  exit 1; fi; \
	echo "Installing Debian's openssh-server for tests/remote (apt-get)"; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	$$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends openssh-server openssh-client >/dev/null \
	  || { echo "error: apt-get could not install openssh-server (needed by tests/remote)" >&2; exit 1; }; \
	[ -x "$(SSHD)" ] || { echo "error: openssh-server installed, but $(SSHD) is missing" >&2; exit 1; }

test: $(TEST_STAMP) lint browser-deps remote-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not stress" tests

# The browser tests alone (JupyterLab 4 and Notebook 7 in headless chromium); screenshots in
# tests/browser/screenshots/.
test-browser: $(TEST_STAMP) browser-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider -m browser tests/browser

stress: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m stress tests/reliability

bench: $(TEST_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build dist
