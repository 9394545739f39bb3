"""Real JupyterLab 4 and Notebook 7 servers, and Debian's chromium driven by Playwright.

A :class:`JupyterServer` is ``jupyter lab`` or ``jupyter notebook`` on a free loopback port
with a token, private Jupyter config/data/runtime dirs, a fresh workspaces dir and fastkernel's
kernelspec (running this Python) as the only kernel it can start. Nothing in it reaches the
network: no extension manager listing, no news feed, no update check, no browser opened.

A :class:`NotebookPage` is a notebook opened in a Playwright page, with the steps a user takes
(run all cells from the Run menu, Shift+Enter on a cell) and readers of what the page shows
(output text, execution counts, the kernel's name and status). Waits are on conditions of the
page or the server, never on the clock.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import nbformat
from playwright.sync_api import Locator, Page, ViewportSize, expect

from fastkernel.kernelspec import DEFAULT_DISPLAY_NAME, DEFAULT_NAME, kernel_json, write_spec_dir
from tests.rest import api_call

App = Literal["lab", "notebook"]

CHROMIUM = os.environ.get("FASTKERNEL_CHROMIUM", "/usr/bin/chromium")
# --headless and a fresh --user-data-dir come with Playwright's launch(); the rest keep chromium
# off the network (this machine reaches package registries only) and out of the user's profile.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KERNEL_NAME = DEFAULT_NAME
KERNEL_DISPLAY_NAME = DEFAULT_DISPLAY_NAME
SERVER_START_TIMEOUT = 60.0  # seconds: `jupyter lab` imports a lot on a busy 2-core machine
UI_TIMEOUT_MS = 60_000  # Playwright waits: Lab's first load compiles ~10 MB of JavaScript
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def install_fastkernel_spec(data_dir: Path) -> Path:
    """fastkernel's own kernelspec (name, display name, logos), running this Python, in ``data_dir``."""
    return write_spec_dir(data_dir / "kernels" / KERNEL_NAME, kernel_json(python=sys.executable))


def server_config(workspaces_dir: Path) -> dict[str, Any]:
    """The ``jupyter_server_config.json`` of a test server: loopback, no browser, no network."""
    return {
        "ServerApp": {
            "open_browser": False,
            "ip": "127.0.0.1",
            "port_retries": 0,
            "terminals_enabled": False,
        },
        # Only fastkernel: a notebook never silently runs in another kernel.
        "KernelSpecManager": {"ensure_native_kernel": False, "allowed_kernelspecs": [KERNEL_NAME]},
        "LabApp": {
            "workspaces_dir": str(workspaces_dir),
            "extension_manager": "readonly",  # the default "pypi" manager queries PyPI
            "news_url": None,
            "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
            # window.jupyterapp: tests may wait on the app's state where the page shows none.
            "expose_app_in_browser": True,
        },
        # Notebook 7 is a LabServerApp too: same workspaces, no extension manager listing.
        "JupyterNotebookApp": {"workspaces_dir": str(workspaces_dir), "expose_app_in_browser": True},
    }


# The news and update plugins ask the user (a toast) on the first load; nothing here is to ask.
PAGE_CONFIG = {
    "disabledExtensions": {
        "@jupyterlab/apputils-extension:announcements": True,
    }
}


@dataclass
class JupyterServer:
    """A running ``jupyter lab`` or ``jupyter notebook`` server."""

    app: App
    proc: subprocess.Popen[bytes]
    port: int
    token: str
    root: Path
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def url(self, path: str, **query: str) -> str:
        """``path`` on this server, with the token (the browser then keeps a cookie)."""
        params = urllib.parse.urlencode({**query, "token": self.token})
        return f"{self.base_url}/{path.lstrip('/')}?{params}"

    def api(self, method: str, path: str, body: Any = None, timeout: float = 20) -> tuple[int, Any]:
        return api_call(self.base_url, self.token, method, path, body, timeout)

    def wait_ready(self, timeout: float = SERVER_START_TIMEOUT) -> None:
        """Poll ``/api/status`` until the server answers (it has bound its port and loaded)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter {self.app} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                status, _ = self.api("GET", "/api/status", timeout=5)
                if status == 200:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter {self.app} not ready after {timeout}s:\n{self.log()}")
            time.sleep(0.1)

    def kernels(self) -> list[dict[str, Any]]:
        status, kernels = self.api("GET", "/api/kernels")
        assert status == 200, kernels
        return list(kernels)

    def shutdown_kernels(self) -> None:
        """End every session and kernel (tests leave none running for the next)."""
        status, sessions = self.api("GET", "/api/sessions")
        if status == 200:
            for session in sessions:
                self.api("DELETE", f"/api/sessions/{session['id']}")
        for kernel in self.kernels():
            self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM: the server shuts its kernels down and exits; SIGKILL if it does not."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)


def start_server(app: App, base: Path) -> JupyterServer:
    """Start ``jupyter lab`` or ``jupyter notebook`` with everything private under ``base``."""
    root = base / "root"
    config_dir = base / "config"
    data_dir = base / "data"
    for d in (root, config_dir, data_dir, base / "runtime", base / "workspaces"):
        d.mkdir(parents=True, exist_ok=True)
    install_fastkernel_spec(data_dir)
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps(server_config(base / "workspaces"), indent=1)
    )
    (config_dir / "labconfig").mkdir(exist_ok=True)
    (config_dir / "labconfig" / "page_config.json").write_text(json.dumps(PAGE_CONFIG, indent=1))
    port = free_port()
    token = secrets.token_hex(16)
    env = dict(os.environ)
    env.pop("JUPYTER_PATH", None)  # tests/conftest.py's fastkernel-test spec: not this server's
    env.update(
        JUPYTER_CONFIG_DIR=str(config_dir),
        JUPYTER_DATA_DIR=str(data_dir),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        IPYTHONDIR=str(base / "ipython"),
    )
    log_path = base / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                {"lab": "jupyterlab", "notebook": "notebook"}[app],
                f"--ServerApp.port={port}",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
                *(["--allow-root"] if os.geteuid() == 0 else []),
            ],
            env=env,
            cwd=str(root),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = JupyterServer(app, proc, port, token, root, log_path)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


def write_notebook(
    path: Path, cells: Sequence[str | nbformat.NotebookNode], kernel_name: str = KERNEL_NAME
) -> Path:
    """A notebook for fastkernel: each ``str`` a code cell; other cells as given
    (``nbformat.v4.new_markdown_cell(...)``, a code cell with outputs or metadata...)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": kernel_name,
        "display_name": KERNEL_DISPLAY_NAME,
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for cell in cells:
        nb.cells.append(nbformat.v4.new_code_cell(cell) if isinstance(cell, str) else cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


@dataclass
class Screenshots:
    """Saves what the page shows as ``<dir>/<test>-<nn>-<step>.png``; the directory is kept."""

    directory: Path
    test_name: str
    saved: list[Path] = field(default_factory=list)

    def take(self, page: Page, step: str, full_page: bool = True) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.test_name}-{len(self.saved) + 1:02d}-{step}")
        path = self.directory / f"{safe}.png"
        page.screenshot(path=str(path), full_page=full_page)
        self.saved.append(path)
        return path


# Selectors shared by JupyterLab 4 and Notebook 7 (Notebook 7 is built from Lab's widgets).
CELL = ".jp-Notebook .jp-Cell"
CODE_CELL = ".jp-Notebook .jp-CodeCell"
OUTPUT = ".jp-OutputArea-output"
EXECUTION_INDICATOR = ".jp-Notebook-ExecutionIndicator"


@dataclass
class NotebookPage:
    """A notebook file opened in a browser page of JupyterLab (``/lab``) or Notebook 7."""

    page: Page
    server: JupyterServer
    path: str  # relative to the server's root
    shots: Screenshots

    # -- opening --------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, page: Page, server: JupyterServer, path: str, shots: Screenshots, workspace: str | None = None
    ) -> NotebookPage:
        """Open ``path`` as a user would by URL; return once the kernel is started and idle.

        In Lab each call may name its own ``workspace`` (a fresh one: no tabs of other tests).
        """
        quoted = urllib.parse.quote(path)
        if server.app == "lab":
            ws = f"workspaces/{workspace}/" if workspace else ""
            url = server.url(f"lab/{ws}tree/{quoted}", reset="")
        else:
            url = server.url(f"notebooks/{quoted}")
        page.goto(url)
        nb = cls(page, server, path, shots)
        nb.panel.locator(CELL).first.wait_for(state="visible")
        nb.wait_kernel_idle()
        return nb

    @property
    def panel(self) -> Locator:
        """The notebook's panel (in Lab, the current tab: the one showing this file)."""
        if self.server.app == "lab":
            return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").filter(
                has=self.page.locator(".jp-Notebook")
            )
        return self.page.locator(".jp-NotebookPanel")

    # -- kernel ---------------------------------------------------------------------------------

    def kernel_status(self) -> str:
        """The toolbar's execution indicator: ``idle``, ``busy``... as the page has it."""
        return self.panel.locator(EXECUTION_INDICATOR).first.get_attribute("data-status") or ""

    def kernel_name(self) -> str:
        """The kernel's display name on the notebook's toolbar button (``No Kernel`` before one)."""
        return self.panel.locator(".jp-Toolbar-kernelName").first.inner_text().strip()

    def server_kernel(self) -> dict[str, Any] | None:
        """The server's model of this notebook's kernel (``execution_state``, ``connections``)."""
        status, sessions = self.server.api("GET", "/api/sessions")
        assert status == 200, sessions
        for session in sessions:
            if session["path"] == self.path and session.get("kernel"):
                return dict(session["kernel"])
        return None

    def wait_kernel_idle(self, timeout_ms: float = UI_TIMEOUT_MS) -> None:
        """Wait until the page shows fastkernel idle and the server has it idle and connected.

        The toolbar's indicator reads ``idle`` before any kernel too, so the page must also show
        the kernel's name, and the server (which sees the kernel's own status messages) agree.
        """
        deadline = time.monotonic() + timeout_ms / 1000
        expect(self.panel.locator(".jp-Spinner")).to_have_count(0, timeout=timeout_ms)
        expect(self.panel.locator(".jp-Toolbar-kernelName").first).to_have_text(
            KERNEL_DISPLAY_NAME, timeout=timeout_ms
        )
        while True:
            kernel = self.server_kernel()
            if kernel and kernel["execution_state"] == "idle" and kernel["connections"] > 0:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"kernel of {self.path} not idle and connected: {kernel}")
            self.page.wait_for_timeout(50)  # poll the server; the page keeps processing events
        expect(self.panel.locator(EXECUTION_INDICATOR).first).to_have_attribute(
            "data-status", "idle", timeout=max(1.0, deadline - time.monotonic()) * 1000
        )

    # -- running --------------------------------------------------------------------------------

    def cells(self) -> Locator:
        return self.panel.locator(CELL)

    def code_cells(self) -> Locator:
        return self.panel.locator(CODE_CELL)

    def run_all(self, timeout_ms: float = UI_TIMEOUT_MS) -> None:
        """Run > Run All Cells from the menu bar; wait until every code cell has run."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        self.wait_executed(timeout_ms=timeout_ms)

    def run_cell(self, index: int, timeout_ms: float = UI_TIMEOUT_MS) -> None:
        """Select code cell ``index`` (0-based among code cells) and press Shift+Enter; wait until it ran."""
        cell = self.code_cells().nth(index)
        before = self.execution_count(index)
        cell.locator(".jp-InputPrompt").click()  # selects the cell, command mode
        self.page.keyboard.press("Shift+Enter")
        expect(cell.locator(".jp-InputArea-prompt")).not_to_have_text(
            re.compile(r"^\[(\*|\s*|" + (str(before) if before else "-") + r")\]:$"), timeout=timeout_ms
        )
        self.wait_kernel_idle(timeout_ms)

    def start_cell(self, index: int, timeout_ms: float = UI_TIMEOUT_MS) -> None:
        """Shift+Enter on code cell ``index`` and return once it shows ``[*]`` (not waiting for its end)."""
        cell = self.code_cells().nth(index)
        cell.locator(".jp-InputPrompt").click()
        self.page.keyboard.press("Shift+Enter")
        expect(cell.locator(".jp-InputArea-prompt")).to_have_text("[*]:", timeout=timeout_ms)

    def wait_executed(self, timeout_ms: float = UI_TIMEOUT_MS) -> None:
        """Wait until every code cell shows an execution count and the kernel is idle."""
        prompts = self.code_cells().locator(".jp-InputArea-prompt")
        expect(prompts).to_have_text(
            [re.compile(r"^\[\d+\]:$")] * self.code_cells().count(), timeout=timeout_ms
        )
        self.wait_kernel_idle(timeout_ms)

    # -- reading --------------------------------------------------------------------------------

    def execution_count(self, index: int) -> int | None:
        text = self.code_cells().nth(index).locator(".jp-InputArea-prompt").inner_text()
        match = re.search(r"\[(\d+)\]", text)
        return int(match.group(1)) if match else None

    def outputs(self, index: int) -> Locator:
        """The output nodes (one per output) of code cell ``index``."""
        return self.code_cells().nth(index).locator(OUTPUT)

    def outputs_of_type(self, index: int, mime_type: str) -> Locator:
        """The output nodes of code cell ``index`` rendered from ``mime_type`` (stdout and stderr:
        ``application/vnd.jupyter.stdout`` / ``.stderr``; errors render as stderr)."""
        return self.code_cells().nth(index).locator(f'{OUTPUT}[data-mime-type="{mime_type}"]')

    def output_text(self, index: int) -> str:
        """All output text of code cell ``index`` as the page renders it (each without its final newline)."""
        return "\n".join(text.rstrip("\n") for text in self.outputs(index).all_inner_texts())

    def output_prompt(self, index: int) -> str:
        """The ``Out[n]``-style prompt of the execute result of code cell ``index`` (``[n]:``)."""
        prompt = self.code_cells().nth(index).locator(".jp-OutputArea-executeResult .jp-OutputArea-prompt")
        return prompt.first.inner_text().strip()

    def screenshot(self, step: str, full_page: bool = True) -> Path:
        return self.shots.take(self.page, step, full_page=full_page)

    # -- consoles -------------------------------------------------------------------------------

    def open_console(self, subshell: bool = False) -> ConsolePage:
        """Lab only: "New Console for Notebook" from the command palette (the notebook's kernel,
        its main shell), or with ``subshell`` "New Subshell Console for Notebook" (a subshell of
        that kernel, JEP 91; Lab offers it when kernel_info lists "kernel subshells")."""
        assert self.server.app == "lab", "Notebook 7 has no consoles"
        command = "New Subshell Console for Notebook" if subshell else "New Console for Notebook"
        consoles = self.page.locator(".jp-CodeConsole")
        before = consoles.count()
        self.panel.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})  # notebook is current
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("Control+Shift+C")
        palette = self.page.locator(".lm-CommandPalette")
        palette.locator("input").fill(command)
        palette.locator(".lm-CommandPalette-item", has_text=re.compile(f"^{command}")).first.click()
        expect(consoles).to_have_count(before + 1)
        console = ConsolePage(self.page, consoles.nth(before), self.shots)
        console.prompt_editor().wait_for(state="visible")
        if subshell:
            # Lab shows the console at once and asks for its subshell afterwards: code run
            # before the reply goes to the main shell. Wait, as a user would see nothing of it.
            console.wait_for_subshell()
        return console


# The main-area widget holding a console node -> its kernel connection's subshellId (or null).
_CONSOLE_SUBSHELL_JS = """node => {
    for (const widget of window.jupyterapp.shell.widgets('main')) {
        if (widget.node.contains(node) && widget.sessionContext) {
            const kernel = widget.sessionContext.session && widget.sessionContext.session.kernel;
            return (kernel && kernel.subshellId) || null;
        }
    }
    return null;
}"""


@dataclass
class ConsolePage:
    """A JupyterLab code console (``.jp-CodeConsole``) in a page."""

    page: Page
    root: Locator
    shots: Screenshots

    def prompt_editor(self) -> Locator:
        return self.root.locator(".jp-CodeConsole-promptCell .cm-content")

    def subshell_id(self) -> str | None:
        """The subshell of this console's kernel connection (None: the main shell), from
        ``window.jupyterapp`` (``LabApp.expose_app_in_browser``)."""
        result = self.root.evaluate(_CONSOLE_SUBSHELL_JS)
        return str(result) if result else None

    def wait_for_subshell(self, timeout_ms: float = UI_TIMEOUT_MS) -> str:
        """Wait until Lab has created this console's subshell and will send its code there."""
        self.page.wait_for_function(
            f"node => ({_CONSOLE_SUBSHELL_JS})(node) !== null",
            arg=self.root.element_handle(),
            timeout=timeout_ms,
        )
        subshell = self.subshell_id()
        assert subshell
        return subshell

    def cells(self) -> Locator:
        """The console's executed (or executing) cells, oldest first."""
        return self.root.locator(".jp-CodeConsole-content .jp-CodeCell")

    def run(self, code: str, timeout_ms: float = UI_TIMEOUT_MS) -> Locator:
        """Type ``code`` in the prompt, Shift+Enter; return the cell once it has its count."""
        index = self.cells().count()
        self.prompt_editor().click()
        self.page.keyboard.insert_text(code)
        self.page.keyboard.press("Shift+Enter")
        cell = self.cells().nth(index)
        expect(cell.locator(".jp-InputArea-prompt")).to_have_text(
            re.compile(r"^\[\d+\]:$"), timeout=timeout_ms
        )
        return cell

    def output_text(self, cell: Locator) -> str:
        return "\n".join(text.rstrip("\n") for text in cell.locator(OUTPUT).all_inner_texts())

    def screenshot(self, step: str, full_page: bool = True) -> Path:
        return self.shots.take(self.page, step, full_page=full_page)
