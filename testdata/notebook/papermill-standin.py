#!/usr/bin/env python3
"""TEST-ONLY STAND-IN for papermill's command line. Not papermill.

wflow's notebook steps run the real `papermill` CLI, installed by the default
Dockerfile template (docs/notebooks.md). On the machines wflow is tested on,
PyPI is out of reach and Debian packages no papermill, so the test image
(scripts/build-test-images.sh, wflow-test/python) gets this script as
/usr/local/bin/papermill instead. It implements, with nbclient, the subset of
papermill 2.6's CLI that wflow uses:

    papermill INPUT OUTPUT [-f PARAMS.yaml]... [-p NAME VALUE]... [-k KERNEL] [--cwd DIR]

and mirrors what papermill 2.6 does that a user or wflow can observe (written
from papermill's documented behaviour and source, not copied from it):

- the input is read with nbformat and upgraded to the latest 4.x; a notebook
  without papermill metadata gets metadata.papermill {default_parameters,
  parameters, environment_variables, version}, every cell metadata.tags and
  metadata.papermill;
- parameters (-f files read as YAML 1.1 without timestamps, then -p pairs
  typed as papermill types them) are injected only when there are some: a code
  cell "# Parameters" tagged "injected-parameters" replaces an earlier
  injected cell, else follows the cell tagged "parameters", else goes first
  with the warning "Input notebook does not contain a cell with tag
  'parameters'"; a name the parameters cell does not assign is logged as
  "Passed unknown parameter: NAME";
- the input and output paths are formatted with the parameters (Python's
  str.format, with a built-in "pm"): "{name}" is a parameter's value, "{{" a
  brace, and a missing name fails with "Missing parameter";
- marker cells of an earlier papermill failure are removed;
- a notebook naming no kernel (metadata.kernelspec.name) and run without -k
  fails with "ValueError: No kernel name found in notebook and no override
  provided.";
- the output is written before the first cell runs ("output folder X doesn't
  exist." when its folder is missing), then as each cell starts and ends;
  cells get metadata.papermill {exception, start_time, end_time, duration,
  status}; the first failing cell stops the run;
- a kernel the image lacks fails with jupyter_client's NoSuchKernel, and the
  output notebook keeps its cells unexecuted; a kernel that dies exits 138;
- a cell that raised SystemExit with code 0 or no code ends the run with
  success (the cells after it do not run);
- on a failing cell, two markdown cells tagged "papermill-error-cell-tag" are
  inserted, one just before the failing cell and one at the top, the output
  is written, and the error (PapermillExecutionError) ends the process with a
  traceback and exit code 1;
- a usage error exits 2 with click's "Usage:" / "Error:" lines.
"""
import argparse
import datetime
import logging
import os
import re
import sys
import uuid

import nbformat
import yaml
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

VERSION = "2.6.0"  # the papermill release this stand-in mirrors
MARKER_TAG = "papermill-error-cell-tag"
STYLE = 'style="color:red; font-family:Helvetica Neue, Helvetica, Arial, sans-serif; font-size:2em;"'

log = logging.getLogger("papermill")


class PapermillExecutionError(Exception):
    """A cell raised; str() is papermill's message."""

    def __init__(self, index, count, ename, evalue, traceback):
        super().__init__(index, count, ename, evalue)
        self.index, self.count, self.ename, self.evalue, self.traceback = index, count, ename, evalue, traceback

    def __str__(self):
        return '\n%s\nException encountered at "In [%s]":\n%s\n' % (
            "-" * 75, self.count, re.sub("\x1b\\[(K|.*?m)", "", "\n".join(self.traceback)))


class PapermillMissingParameterException(Exception):
    """A path names a parameter that was not given."""


def format_path(path, params):
    """Format a path with the parameters (and the built-in "pm"), as papermill does."""
    values = {"pm": {"run_uuid": str(uuid.uuid4()), "current_datetime_local": datetime.datetime.now(),
                     "current_datetime_utc": now()}}
    values.update(params)
    try:
        return path.format(**values)
    except KeyError as e:
        raise PapermillMissingParameterException("Missing parameter %s" % e)


class NoDatesLoader(yaml.SafeLoader):
    """PyYAML's safe loader without timestamps, as papermill reads parameters."""


NoDatesLoader.yaml_implicit_resolvers = {
    k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class Usage(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise Usage(message)


def typed(value):
    """A -p value, typed as papermill types it."""
    for word, v in (("True", True), ("False", False), ("None", None)):
        if value == word:
            return v
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def tags(cell):
    return cell.metadata.get("tags", [])


def first_tagged(nb, tag):
    return next((i for i, c in enumerate(nb.cells) if tag in tags(c)), -1)


def py_value(v):
    """Python source for a parameter value, as papermill's Python translator writes it."""
    if isinstance(v, str):
        return '"%s"' % v.encode("unicode_escape").decode("utf-8").replace('"', '\\"')
    if isinstance(v, bool) or v is None or isinstance(v, int):
        return repr(v)
    if isinstance(v, float):
        if v != v:
            return "float('nan')"
        if v in (float("inf"), float("-inf")):
            return "float('%sinf')" % ("-" if v < 0 else "")
        return repr(v)
    if isinstance(v, dict):
        return "{%s}" % ", ".join("%s: %s" % (py_value(str(k)), py_value(x)) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return "[%s]" % ", ".join(py_value(x) for x in v)
    return repr(str(v))


ASSIGNED = re.compile(r"^(\w[\w_]*)\s*(:[^=]*)?=")


def write(nb, path):
    folder = os.path.dirname(path)
    if folder and not os.path.exists(folder):
        raise FileNotFoundError("output folder %s doesn't exist." % folder)
    with open(path, "w", encoding="utf-8") as f:
        f.write(nbformat.writes(nb))


def load(path):
    with open(path, encoding="utf-8") as f:
        nb = nbformat.reads(f.read(), as_version=4)
    nb = nbformat.v4.upgrade(nb) or nb
    if "papermill" not in nb.metadata:
        nb.metadata["papermill"] = {"default_parameters": {}, "parameters": {},
                                    "environment_variables": {}, "version": VERSION}
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
        cell.metadata.setdefault("papermill", {})
    return nb


def kernel_of(nb, override):
    name = override or nb.metadata.get("kernelspec", {}).get("name")
    if not name:
        raise ValueError("No kernel name found in notebook and no override provided.")
    return name


def parameterize(nb, params, kernel):
    kernel_of(nb, kernel)
    at = first_tagged(nb, "parameters")
    known = set()
    if at >= 0:
        for line in "".join(nb.cells[at].source).splitlines():
            m = ASSIGNED.match(line)
            if m:
                known.add(m.group(1))
    for name in params:
        if name not in known:
            log.warning("Passed unknown parameter: %s", name)
    source = "# Parameters\n" + "".join("%s = %s\n" % (k, py_value(v)) for k, v in params.items())
    cell = nbformat.v4.new_code_cell(source=source)
    cell.metadata["tags"] = ["injected-parameters"]
    cell.metadata["papermill"] = {}
    injected = first_tagged(nb, "injected-parameters")
    if injected >= 0:
        nb.cells[injected] = cell
    elif at >= 0:
        nb.cells.insert(at + 1, cell)
    else:
        log.warning("Input notebook does not contain a cell with tag 'parameters'")
        nb.cells.insert(0, cell)
    nb.metadata.papermill["parameters"] = params


class Manager:
    """The output notebook's metadata as cells run, saved at every change."""

    def __init__(self, nb, output):
        self.nb, self.output, self.started = nb, output, None

    def start(self):
        self.started = now()
        pm = self.nb.metadata.papermill
        pm.update(start_time=self.started.isoformat(), end_time=None, duration=None, exception=None)
        for cell in self.nb.cells:
            cell.metadata["papermill"] = {"exception": None, "start_time": None, "end_time": None,
                                          "duration": None, "status": "pending"}
            if cell.cell_type == "code":
                cell.execution_count = None
                cell.outputs = []
        write(self.nb, self.output)

    def cell_start(self, cell):
        cell.metadata.papermill.update(start_time=now().isoformat(), status="running", exception=False)
        write(self.nb, self.output)

    def cell_failed(self, cell):
        cell.metadata.papermill.update(exception=True, status="failed")
        self.nb.metadata.papermill["exception"] = True

    def cell_end(self, cell):
        end = now()
        pm = cell.metadata.papermill
        pm["end_time"] = end.isoformat()
        if pm.get("start_time"):
            pm["duration"] = (end - datetime.datetime.fromisoformat(pm["start_time"])).total_seconds()
        if pm["status"] != "failed":
            pm["status"] = "completed"
        write(self.nb, self.output)

    def end(self):
        end = now()
        pm = self.nb.metadata.papermill
        pm["end_time"] = end.isoformat()
        if self.started:
            pm["duration"] = (end - self.started).total_seconds()
        for cell in self.nb.cells:
            if cell.metadata.papermill["status"] == "failed":
                break
            if cell.metadata.papermill["status"] == "pending":
                cell.metadata.papermill["status"] = "completed"
        write(self.nb, self.output)


def execute(nb, output, kernel):
    man = Manager(nb, output)
    man.start()
    try:
        client = NotebookClient(nb, kernel_name=kernel)
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                try:
                    man.cell_start(cell)
                    client.execute_cell(cell, index)
                except CellExecutionError:
                    man.cell_failed(cell)
                    break
                finally:
                    man.cell_end(cell)
    finally:
        man.end()


def raise_for_errors(nb, output):
    error = None
    for index, cell in enumerate(nb.cells):
        exited = False
        for out in cell.get("outputs", []):
            if out.output_type != "error":
                continue
            if out.ename == "SystemExit" and out.evalue in ("", "0"):
                exited = True
                continue
            error = PapermillExecutionError(index, cell.execution_count, out.ename, out.evalue, out.traceback)
            break
        if error is None and not exited and cell.metadata.get("papermill", {}).get("exception") is True:
            error = PapermillExecutionError(index, cell.execution_count, "CellExecutionError", "", [])
        if error is not None:
            break
    if error is None:
        return
    top = nbformat.v4.new_markdown_cell(
        "<span %s>An Exception was encountered at '<a href=\"#papermill-error-cell\">In [%s]</a>'.</span>" % (STYLE, error.count))
    top.metadata["tags"] = [MARKER_TAG]
    anchor = nbformat.v4.new_markdown_cell(
        '<span id="papermill-error-cell" %s>Execution using papermill encountered an exception here and stopped:</span>' % STYLE)
    anchor.metadata["tags"] = [MARKER_TAG]
    nb = nbformat.v4.upgrade(nb) or nb
    nb.cells.insert(error.index, anchor)
    nb.cells.insert(0, top)
    write(nb, output)
    raise error


def main(argv):
    ap = Parser(prog="papermill", add_help=False)
    ap.add_argument("input", nargs="?")
    ap.add_argument("output", nargs="?", default="")
    ap.add_argument("-f", "--parameters_file", action="append", default=[])
    ap.add_argument("-p", "--parameters", nargs=2, action="append", default=[])
    ap.add_argument("-k", "--kernel", default=None)
    ap.add_argument("--cwd", default=None)
    ap.add_argument("--log-output", action="store_true")
    ap.add_argument("--progress-bar", action="store_true")
    ap.add_argument("--no-progress-bar", action="store_true")
    try:
        args = ap.parse_args(argv)
        if not args.input:
            raise Usage("Missing argument 'NOTEBOOK_PATH'.")
        if not args.output:
            raise Usage("Missing argument 'OUTPUT_PATH'")
    except Usage as e:
        sys.stderr.write("Usage: papermill [OPTIONS] NOTEBOOK_PATH [OUTPUT_PATH]\n"
                         "Try 'papermill -h' for help.\n\nError: %s\n" % e)
        return 2
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    logging.basicConfig(level="INFO", format="%(message)s")

    params = {}
    for path in args.parameters_file:
        with open(path, encoding="utf-8") as f:
            params.update(yaml.load(f.read(), Loader=NoDatesLoader) or {})
    for name, value in args.parameters:
        params[name] = typed(value)

    args.input = format_path(args.input, params)
    args.output = format_path(args.output, params)
    log.info("Input Notebook:  %s", args.input)
    log.info("Output Notebook: %s", args.output)
    nb = load(args.input)
    if params:
        parameterize(nb, params, args.kernel)
    nb.metadata.papermill["input_path"] = args.input
    nb.metadata.papermill["output_path"] = args.output
    nb.cells = [c for c in nb.cells if MARKER_TAG not in tags(c)]
    kernel = kernel_of(nb, args.kernel)
    output = os.path.abspath(args.output)
    if args.cwd is not None:
        os.chdir(args.cwd)  # papermill runs the notebook in --cwd
    try:
        execute(nb, output, kernel)
    except DeadKernelError:
        import traceback
        traceback.print_exc()
        return 138
    raise_for_errors(nb, output)
    write(nb, output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
