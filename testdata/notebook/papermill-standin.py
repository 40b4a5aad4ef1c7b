#!/usr/bin/env python3
"""TEST-ONLY STAND-IN for papermill's command line. Not papermill.

wflow's notebook steps run the real `papermill` CLI, installed by the default
Dockerfile template (docs/notebooks.md). On the machines wflow is tested on,
PyPI is out of reach and Debian packages no papermill, so the test image
(scripts/build-test-images.sh, wflow-test/python) gets this script as
/usr/local/bin/papermill instead. It implements only the subset of papermill
that wflow uses, with nbclient:

    papermill INPUT OUTPUT [-f PARAMS.yaml]... [-p NAME VALUE]... [-k KERNEL] [--cwd DIR]

- parameters from -f files (YAML or JSON) and -p pairs are injected as a new
  code cell tagged "injected-parameters", after the cell tagged "parameters"
  (or first, when there is none), as papermill does;
- cells run in order; the output notebook is written after every cell;
- each cell gets metadata.papermill {"status", "exception"}, and the notebook
  metadata.papermill {"parameters", "input_path", "output_path", "exception"};
- the first failing cell stops the run: its status is "failed", its
  exception true, the error is printed to stderr and the exit code is 1.
"""
import argparse
import sys

import nbformat
import yaml
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def main():
    ap = argparse.ArgumentParser(prog="papermill", description="TEST-ONLY papermill stand-in")
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("-f", "--parameters_file", action="append", default=[])
    ap.add_argument("-p", "--parameters", nargs=2, action="append", default=[])
    ap.add_argument("-k", "--kernel", default=None)
    ap.add_argument("--cwd", default=None)
    ap.add_argument("--log-output", action="store_true")
    args = ap.parse_args()

    params = {}
    for path in args.parameters_file:
        with open(path) as f:
            params.update(yaml.safe_load(f) or {})
    for name, value in args.parameters:
        params[name] = yaml.safe_load(value)

    nb = nbformat.read(args.input, as_version=4)
    source = "# Parameters\n" + "".join("%s = %r\n" % (k, v) for k, v in params.items())
    injected = nbformat.v4.new_code_cell(source=source, metadata={"tags": ["injected-parameters"]})
    at = next((i + 1 for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), 0)
    nb.cells.insert(at, injected)
    for cell in nb.cells:
        cell.metadata["papermill"] = {"status": "pending", "exception": None}
    nb.metadata["papermill"] = {
        "parameters": params, "input_path": args.input, "output_path": args.output,
        "exception": None, "stand_in": "wflow test-only papermill stand-in",
    }
    kernel = args.kernel or nb.metadata.get("kernelspec", {}).get("name", "python3")
    client = NotebookClient(nb, kernel_name=kernel, resources={"metadata": {"path": args.cwd or "."}})
    failed = None
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            cell.metadata.papermill["status"] = "running"
            try:
                client.execute_cell(cell, index)
                cell.metadata.papermill["status"] = "completed"
            except CellExecutionError as e:
                cell.metadata.papermill.update(status="failed", exception=True)
                nb.metadata.papermill["exception"] = True
                failed = e
            nbformat.write(nb, args.output)
            if failed is not None:
                break
    if failed is not None:
        sys.stderr.write("papermill stand-in: cell %d failed:\n%s\n" % (index, failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
