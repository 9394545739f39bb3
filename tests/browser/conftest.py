"""Fixtures of the browser tests: one JupyterLab and one Notebook 7 server, one chromium.

They are package-scoped: all of it stops when the last test of tests/browser has run. That
matters beyond tidiness: while Playwright's sync API is started, its asyncio loop counts as
running in the main thread, and the rest of the suite (cells with top-level ``await``,
``asyncio.run``) must not see it.

Each test gets a fresh browser context (no cookies, storage or tabs of other tests) and a
:class:`~tests.browser.harness.Screenshots` for its name; a failing test's page is saved too.
Screenshots go to ``tests/browser/screenshots/`` (or ``$FASTKERNEL_BROWSER_SCREENSHOTS``),
emptied at the start of a run and kept after it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path

import pytest
from nbformat import NotebookNode
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.browser.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    UI_TIMEOUT_MS,
    VIEWPORT,
    JupyterServer,
    NotebookPage,
    Screenshots,
    start_server,
    write_notebook,
)

SCREENSHOTS = Path(
    os.environ.get("FASTKERNEL_BROWSER_SCREENSHOTS", Path(__file__).parent / "screenshots")
).resolve()

OpenNotebook = Callable[..., NotebookPage]


_SCREENSHOTS_USED = pytest.StashKey[bool]()


BROWSER_TEST_TIMEOUT = 120  # seconds: the first test also starts a server and loads Lab cold


@pytest.hookimpl(tryfirst=True)  # before -m selects by these markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/browser is ``browser`` and has a timeout fit for a cold Lab load."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            if item.get_closest_marker("browser") is None:
                item.add_marker(pytest.mark.browser)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(BROWSER_TEST_TIMEOUT))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    return report


_FAILED = pytest.StashKey[bool]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if config.stash.get(_SCREENSHOTS_USED, False):
        terminalreporter.write_line(f"browser tests: screenshots in {SCREENSHOTS}")


@pytest.fixture(scope="package")
def screenshot_dir(pytestconfig: pytest.Config) -> Path:
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    pytestconfig.stash[_SCREENSHOTS_USED] = True
    return SCREENSHOTS


@pytest.fixture(scope="package")
def browser_home() -> Iterator[Path]:
    """HOME and XDG dirs of chromium: its crash database and caches stay out of the user's."""
    home = Path(tempfile.mkdtemp(prefix="fastkernel-chromium-"))
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: Playwright, browser_home: Path) -> Iterator[Browser]:
    """Debian's chromium, headless; Playwright gives each launch a fresh --user-data-dir."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} not found: the browser tests need Debian's chromium "
            "(`make browser-deps` installs it as root; or set FASTKERNEL_CHROMIUM)",
            pytrace=False,
        )
    env: dict[str, str | float | bool] = {
        **os.environ,
        "HOME": str(browser_home),
        "XDG_CONFIG_HOME": str(browser_home / "config"),
        "XDG_CACHE_HOME": str(browser_home / "cache"),
    }
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, env=env)
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """``jupyter lab``, started on first use, stopped at the end of the run."""
    server = start_server("lab", tmp_path_factory.mktemp("jupyterlab"))
    yield server
    server.stop()


@pytest.fixture(scope="package")
def notebook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """``jupyter notebook`` (Notebook 7), started on first use, stopped at the end of the run."""
    server = start_server("notebook", tmp_path_factory.mktemp("notebook7"))
    yield server
    server.stop()


@pytest.fixture
def shots(request: pytest.FixtureRequest, screenshot_dir: Path) -> Screenshots:
    return Screenshots(screenshot_dir, request.node.name)


@pytest.fixture
def page(browser: Browser, shots: Screenshots, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh browser context; saved as ``...-failed.png`` if the test fails."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    pg = context.new_page()
    yield pg
    if request.node.stash.get(_FAILED, False):
        try:
            shots.take(pg, "failed")
        except Exception as err:  # a page that crashed: the test's own error says more
            print(f"no failure screenshot: {err}")
    context.close()


def _opener(
    server: JupyterServer, page: Page, shots: Screenshots, request: pytest.FixtureRequest
) -> Iterator[OpenNotebook]:
    opened = 0

    def open_notebook(cells: Sequence[str | NotebookNode], name: str | None = None) -> NotebookPage:
        nonlocal opened
        opened += 1
        stem = name or f"{request.node.name}-{opened}"
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)
        write_notebook(server.root / f"{stem}.ipynb", cells)
        return NotebookPage.open(page, server, f"{stem}.ipynb", shots, workspace=stem)

    yield open_notebook
    if request.node.stash.get(_FAILED, False):  # shown under "Captured stdout teardown"
        tail = server.log().splitlines()[-60:]
        print(f"--- last lines of {server.log_path} ---", *tail, sep="\n")
    server.shutdown_kernels()


@pytest.fixture
def open_in_lab(
    lab_server: JupyterServer, page: Page, shots: Screenshots, request: pytest.FixtureRequest
) -> Iterator[OpenNotebook]:
    """``open_in_lab(cells, name=None) -> NotebookPage``: write a fastkernel notebook, open it in Lab.

    Each notebook opens in a workspace of its own; its kernel is shut down after the test.
    """
    yield from _opener(lab_server, page, shots, request)


@pytest.fixture
def open_in_notebook(
    notebook_server: JupyterServer, page: Page, shots: Screenshots, request: pytest.FixtureRequest
) -> Iterator[OpenNotebook]:
    """``open_in_notebook(cells, name=None) -> NotebookPage``: the same in Notebook 7."""
    yield from _opener(notebook_server, page, shots, request)
