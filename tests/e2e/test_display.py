"""display(), update_display() and clear_output() in cells, through a real kernel."""

from __future__ import annotations

from tests.harness import KernelHarness

BADGE = (
    "class Badge:\n"
    "    def __init__(self, text): self.text = text\n"
    "    def _repr_html_(self): return f'<b>{self.text}</b>'\n"
    "    def __repr__(self): return f'Badge({self.text!r})'\n"
)


def test_display_is_a_builtin_that_sends_display_data_after_earlier_prints(kernel: KernelHarness) -> None:
    ex = kernel.execute(BADGE + "print('before')\ndisplay(Badge('x'), metadata={'k': 1})\nprint('after')")
    assert ex.content["status"] == "ok"
    kinds = [m["msg_type"] for m in ex.iopub if m["msg_type"] in ("stream", "display_data")]
    assert kinds == ["stream", "display_data", "stream"], ex.types
    (shown,) = ex.of_type("display_data")
    assert shown["content"]["data"] == {"text/html": "<b>x</b>", "text/plain": "Badge('x')"}
    assert shown["content"]["metadata"] == {"k": 1}


def test_display_handle_updates_by_display_id(kernel: KernelHarness) -> None:
    first = kernel.execute("handle = display('one', display_id=True)")
    (shown,) = first.of_type("display_data")
    display_id = shown["content"]["transient"]["display_id"]
    later = kernel.execute("handle.update('two')")
    (update,) = later.of_type("update_display_data")
    assert update["content"]["transient"] == {"display_id": display_id}
    assert update["content"]["data"] == {"text/plain": "'two'"}


def test_clear_output_raw_bundles_and_import_path(kernel: KernelHarness) -> None:
    ex = kernel.execute(
        "from fastkernel.display import clear_output, display\n"
        "clear_output(wait=True)\n"
        "display({'text/plain': 'raw', 'text/markdown': '**raw**'}, raw=True)"
    )
    (cleared,) = ex.of_type("clear_output")
    assert cleared["content"] == {"wait": True}
    (shown,) = ex.of_type("display_data")
    assert shown["content"]["data"] == {"text/plain": "raw", "text/markdown": "**raw**"}


def test_display_from_a_thread_goes_to_the_cell_that_started_it(kernel: KernelHarness) -> None:
    start = kernel.kc.execute(
        "import threading\n"
        "go = threading.Event()\n"
        "t = threading.Thread(target=lambda: (go.wait(10), display('late')))\n"
        "t.start()"
    )
    kernel.get_reply(start)
    kernel.collect_iopub(start)
    kernel.execute("go.set(); t.join()")
    late = kernel.wait_for_iopub(lambda m: m["msg_type"] == "display_data")
    assert late["parent_header"]["msg_id"] == start
    assert late["content"]["data"] == {"text/plain": "'late'"}
