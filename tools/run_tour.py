"""Execute a notebook through fastkernel headless (nbclient) and print each cell's outputs.

Used by ``make run``. Exits non-zero if a cell fails unexpectedly.
"""

from __future__ import annotations

import argparse
import sys

import nbformat
from nbclient import NotebookClient


def describe(output: dict) -> str:
    kind = output["output_type"]
    if kind == "stream":
        return f"[{output['name']}] {output['text'].rstrip()}"
    if kind == "error":
        return f"[error] {output['ename']}: {output['evalue']}"
    data = output.get("data", {})
    label = "Out" if kind == "execute_result" else "display"
    mimes = ", ".join(sorted(data))
    return f"[{label}: {mimes}] {str(data.get('text/plain', '')).rstrip()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebook")
    parser.add_argument("--kernel", default="fastkernel")
    parser.add_argument("--timeout", type=int, default=60)
    args = parser.parse_args()
    nb = nbformat.read(args.notebook, as_version=4)
    client = NotebookClient(nb, kernel_name=args.kernel, timeout=args.timeout, allow_errors=True)
    client.execute()
    failures = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        print(f"--- In [{cell.get('execution_count')}] (cell {index}) ---")
        print(cell.source)
        for output in cell.outputs:
            print("  " + describe(output).replace("\n", "\n  "))
            expected = "raises-exception" in cell.metadata.get("tags", [])
            failures += output["output_type"] == "error" and not expected
    print(f"\nExecuted {args.notebook} with kernel {args.kernel!r}: {failures} unexpected error(s).")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
