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

# Installs Debian packages with apt-get when tests need them and they are missing: as root (CI),
# or through `sudo -n`. $(call apt_install,CHECK,PACKAGES,TESTS,APT OPTIONS,REMEDY): CHECK is a
# shell test that holds once they are there; TESTS names the tests that need them; REMEDY
# (optional) is a further hint when they cannot be installed.
define apt_install
	@if $(1); then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	  echo "error: $(3) need Debian's $(2) ($(1)), and this user cannot install it." >&2; \
	  echo "  As root: apt-get install $(2)" >&2; \
	  $(if $(5),echo "  $(5)" >&2;) \
	  exit 1; fi; \
	echo "Installing Debian's $(2) for $(3) (apt-get)"; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	$$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq $(4) $(2) >/dev/null \
	  || { echo "error: apt-get could not install $(2) (needed by $(3))" >&2; exit 1; }; \
	$(1) || { echo "error: $(2) installed, but the check '$(1)' fails" >&2; exit 1; }
endef

# Debian's chromium for tests/browser.
browser-deps:
	$(call apt_install,[ -x "$(CHROMIUM)" ],chromium,tests/browser,,(or set FASTKERNEL_CHROMIUM to a chromium binary; or run pytest -m 'not browser').)

# Debian's openssh-server for tests/remote (sshd on 127.0.0.2, started and stopped by the tests).
SSHD := /usr/sbin/sshd
remote-deps:
	$(call apt_install,[ -x "$(SSHD)" ] && command -v ssh-keygen >/dev/null,openssh-server openssh-client,tests/remote,--no-install-recommends)

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
