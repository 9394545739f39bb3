"""The jupyter_kernel_test conformance suite against fastkernel.

Every sample is filled in, so no test of the suite skips: execution, errors, display_data,
clear_output, the pager (``zip?``), completion, inspection, is_complete and history.
"""

from __future__ import annotations

import jupyter_kernel_test

import tests.spec  # noqa: F401  (teaches msgspec_v5 the iopub_welcome / comm schemas)
from tests.kernels import KERNEL_NAME


class FastKernelConformanceTests(jupyter_kernel_test.KernelTests):
    kernel_name = KERNEL_NAME
    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('oops', file=sys.stderr)"

    complete_code_samples = [
        "1",
        "print('hello, world')",
        "def f(x):\n    return x\n\n",
        "import os",
        "for i in range(3):\n    pass\n\n",
        "await something()",
    ]
    incomplete_code_samples = [
        "print('hello'",
        "def f(x):",
        "for i in range(3):\n    pass",
        "x = [1,\n 2,",
        "s = '''abc",
        "@decorator",
    ]
    # "print('hello" (unterminated one-line string) is deliberately absent: IPython calls it
    # incomplete, Python's compiler and fastkernel call it invalid (no next line can fix it).
    invalid_code_samples = [
        "import = 7q",
        "1 +* 2",
        "def f(:\n",
        "x = )",
    ]

    code_generate_error = "raise ValueError('conformance boom')"

    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": "'a' + 'b'", "result": "'ab'"},
        {"code": "x = [1, 2]\nx + [3]", "result": "[1, 2, 3]"},
        {"code": "None or 1.5", "result": "1.5"},
    ]

    # Matches that jedi and the namespace fallback (when jedi is cut off at 0.5 s) agree on.
    completion_samples = [
        {"text": "zi", "matches": ["zip"]},
        {"text": "print", "matches": ["print"]},
        {"text": "xyzzy_not_defined", "matches": []},
    ]
    code_inspect_sample = "zip"
    # A glob for the history search, matching one cell of code_execute_result.
    code_history_pattern = "6 * 7"
    supported_history_operations = ("tail", "range", "search")
    code_display_data = [
        {"code": "display({'text/html': '<b>hi</b>', 'text/plain': 'hi'}, raw=True)", "mime": "text/html"},
        {"code": "display({'text/markdown': '*hi*', 'text/plain': 'hi'}, raw=True)", "mime": "text/markdown"},
    ]
    code_clear_output = "from fastkernel.display import clear_output; clear_output()"
    code_page_something = "zip?"

    def test_is_complete_block_ended_by_one_blank_line(self) -> None:
        self.flush_channels()
        # What jupyter console sends when Enter is pressed on the auto-indented empty line.
        self.check_is_complete("if True:\n    x = 1\n    ", "complete")
        self.check_is_complete("for i in range(3):\n    pass\n", "complete")


class FastKernelIopubWelcomeTests(jupyter_kernel_test.IopubWelcomeTests):
    kernel_name = KERNEL_NAME
    support_iopub_welcome = True
