"""Each bad flow file gives one clear error with its position; nothing is imported
before the file passed its syntax, schema and allow-list checks."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from routilux import Flow
from routilux.exceptions import FlowFileError

ALLOW = ["flowfile_routines"]
GOOD_TAIL = """\
routines:
  source: {class: flowfile_routines:Source}
  sink: {class: flowfile_routines:Sink}
connections:
  - {from: source.item, to: sink.input}
"""

# (id, suffix, text, line, column, message pattern)
CASES = [
    ("yaml-unclosed-bracket", ".yaml", "routines: {a: [1, 2}\n", 1, 20, r"malformed YAML"),
    ("yaml-bad-indentation", ".yaml", "routines:\n  a:\n    class: X\n   bad: 1\n", 4, 4,
     r"malformed YAML"),
    ("yaml-duplicate-key", ".yaml", "flow_id: a\nflow_id: b\n" + GOOD_TAIL, 2, 1,
     r"duplicate key 'flow_id'"),
    ("yaml-python-tag", ".yaml", "flow_id: !!python/object/apply:os.system ['echo hi']\n"
     + GOOD_TAIL, 1, 10, r"could not determine a constructor|unsupported YAML tag"),
    ("yaml-date", ".yaml", "flow_id: 2024-01-01\n" + GOOD_TAIL, 1, 10,
     r"'2024-01-01' reads as a date, which JSON cannot hold; quote it"),
    ("yaml-non-string-key", ".yaml", "routines:\n  1: {class: Mapper}\n", 2, 3,
     r"mapping keys must be strings"),
    ("yaml-recursive-alias", ".yaml", "routines: &a\n  x: *a\n", 1, 11,
     r"an alias refers to a value that contains it"),
    ("empty", ".yaml", "\n  \n", 1, 1, r"the file is empty"),
    ("json-trailing-comma", ".json", '{"routines": {"a": {"class": "Mapper"},}}', 1, 40,
     r"malformed JSON: Expecting property name"),
    ("json-duplicate-key", ".json",
     '{"routines": {"a": {"class": "Mapper"}},\n "routines": {}}', 2, 2,
     r"duplicate key 'routines'"),
    ("json-nan", ".json", '{"max_workers": NaN, "routines": {"a": {"class": "Mapper"}}}', 1, 17,
     r"NaN and Infinity are not JSON"),
    ("schema-top-level-list", ".yaml", "- routines\n", 1, 1,
     r"the top level must be a mapping, got a list"),
    ("schema-unknown-key", ".yaml", "flow_id: x\nexecution_stratgy: concurrent\n" + GOOD_TAIL,
     2, 1, r"unknown key 'execution_stratgy'; did you mean 'execution_strategy'\?"),
    ("schema-wrong-type", ".yaml", "max_workers: many\n" + GOOD_TAIL, 1, 14,
     r"max_workers must be an integer, got 'many'"),
    ("schema-missing-class", ".yaml", "routines:\n  a:\n    config: {}\n", 3, 5,
     r"routines.a: the key 'class' is missing"),
    ("schema-bad-execution", ".yaml",
     "routines:\n  a:\n    class: Mapper\n    execution: gpu\n", 4, 16,
     r"routines.a.execution must be one of 'thread', 'process', 'ray', got 'gpu'"),
    ("ray-options-without-ray", ".yaml",
     "routines:\n  a:\n    class: Mapper\n    ray_options: {num_cpus: 2}\n", 4, 18,
     r"ray_options needs execution: ray \(got 'thread'\)"),
    ("ray-options-unknown-key", ".yaml",
     "routines:\n  a:\n    class: Mapper\n    execution: ray\n    ray_options: {num_cpu: 2}\n",
     5, 18, r"ray_options has unknown key 'num_cpu'; accepted keys: num_cpus"),
    ("schema-bad-endpoint", ".yaml", GOOD_TAIL + "  - {from: source, to: sink.input}\n", 6, 12,
     r"connections\[1\].from 'source' is not valid: expected 'routine.event'"),
    ("allow-list", ".yaml", "routines:\n  shell: {class: 'os:system'}\n", 2, 18,
     r"class 'os:system': module 'os' is not in the allow-list \(allowed: flowfile_routines\)"),
    ("allow-list-exception", ".yaml",
     "error_handler: {retryable_exceptions: ['os:error']}\n" + GOOD_TAIL, 1, 40,
     r"module 'os' is not in the allow-list"),
    ("allow-list-reexport", ".yaml", "routines:\n  r: {class: 'flowfile_routines:Routine'}\n",
     2, 14, r"'Routine' is defined in module 'routilux.routine', which is not in the allow-list"),
    ("private-name", ".yaml",
     "routines:\n  r: {class: 'flowfile_routines:Source.__init__.__globals__'}\n", 2, 14,
     r"names a private attribute; flow files name public classes only"),
    ("unknown-builtin", ".yaml", "routines:\n  a: {class: Mappr}\n", 2, 14,
     r"'Mappr' is not a built-in routine \(built-ins: .*Mapper"),
    ("not-a-routine", ".yaml", "routines:\n  a: {class: 'flowfile_routines:NotARoutine'}\n",
     2, 14, r"'flowfile_routines:NotARoutine' is a class, not a Routine class"),
    ("not-a-class", ".yaml", "routines:\n  a: {class: 'flowfile_routines:not_a_class'}\n",
     2, 14, r"is a function, not a Routine class"),
    ("no-such-class", ".yaml", "routines:\n  a: {class: 'flowfile_routines:Nope'}\n", 2, 14,
     r"module 'flowfile_routines' has no attribute 'Nope'"),
    ("constructor-needs-arguments", ".yaml",
     "routines:\n  a: {class: 'flowfile_routines:NeedsArgument'}\n", 2, 14,
     r"NeedsArgument\(\) raised TypeError: .*builds each routine with no arguments"),
    ("config-key-of-a-builtin", ".yaml",
     "routines:\n  clip:\n    class: TextClipper\n    config: {max_lenght: 3}\n", 4, 14,
     r"TextClipper has no config key 'max_lenght'; its keys: .*max_length"),
    ("config-key-declared", ".yaml",
     "routines:\n  d:\n    class: flowfile_routines:Declared\n    config:\n      colour: 1\n",
     5, 7, r"Declared has no config key 'colour'; its keys: name, size"),
    ("config-value", ".yaml",
     "routines:\n  b:\n    class: Batcher\n    config: {batch_size: 0}\n", 4, 26,
     r"routine 'b': Batcher: config 'batch_size' must be an int >= 1"),
    ("unsafe-condition", ".yaml",
     "routines:\n  r:\n    class: ConditionalRouter\n    config:\n      routes:\n"
     "        - [x, \"__import__('os').system('true')\"]\n", 6, 9,
     r"routine 'r': ConditionalRouter route 'x': .*not allowed"),
    ("timeout-on-a-thread", ".yaml",
     "routines:\n  a:\n    class: Mapper\n    timeout: 1\n", 4, 14,
     r"timeout needs execution: process"),
    ("restart-policy", ".yaml",
     "restart: {max_restarts: 1, within: 1, backoff: 0, backoff_max: 0}\n"
     "routines:\n  a:\n    class: Mapper\n    restart: {within: 0.5, backoff_max: 1e3}\n",
     5, 41, r"routines.a.restart.backoff_max must be a number, got '1e3'"),
    ("unknown-event", ".yaml", GOOD_TAIL.replace("source.item", "source.items"), 5, 12,
     r"routine 'source' \(Source\) has no event 'items' \(did you mean 'item'\?\); "
     r"its events: item"),
    ("unknown-slot", ".yaml", GOOD_TAIL.replace("sink.input", "sink.inpt"), 5, 29,
     r"routine 'sink' \(Sink\) has no slot 'inpt' \(did you mean 'input'\?\); its slots: input"),
    ("unknown-routine", ".yaml", GOOD_TAIL.replace("to: sink.input", "to: snk.input"), 5, 29,
     r"no routine 'snk' \(did you mean 'sink'\?\); routines: sink, source"),
    ("entry-slot", ".yaml", "entry: source.start\n" + GOOD_TAIL, 1, 8,
     r"routine 'source' \(Source\) has no slot 'start'; its slots: trigger"),
]


def write(tmp_path, suffix: str, text: str):
    path = tmp_path / f"flow{suffix}"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "suffix, text, line, column, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_one_clear_error_with_its_position(tmp_path, suffix, text, line, column, pattern):
    path = write(tmp_path, suffix, text)
    with pytest.raises(FlowFileError) as caught:
        Flow.from_file(path, ALLOW)
    error = caught.value
    assert len(error.problems) == 1, [str(p) for p in error.problems]
    problem = error.problems[0]
    assert (problem.line, problem.column) == (line, column), str(problem)
    assert re.search(pattern, problem.message), problem.message
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}:{column}: error: ")


def test_ray_execution_without_the_backend_is_refused_when_built(tmp_path):
    path = write(tmp_path, ".yaml", "routines:\n  a:\n    class: Mapper\n    execution: ray\n")
    code = (
        "import sys\n"
        "sys.modules['ray'] = None  # as if the ray extra were not installed\n"
        "from routilux import Flow\n"
        "from routilux.exceptions import FlowFileError\n"
        "try:\n"
        f"    Flow.from_file({str(path)!r})\n"
        "except FlowFileError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    assert out.startswith(f"{path}:4:16: error: routine 'a': execution 'ray' "
                          "needs the Ray backend"), out
    assert "pip install 'routilux[ray]'" in out and "\n" not in out


def test_every_problem_of_a_phase_is_reported_at_once(tmp_path):
    path = write(tmp_path, ".yaml", textwrap.dedent("""\
        execution_strategy: parallel
        max_workers: 0
        routines:
          a: {class: 'os:system'}
          b: {class: Mapper, workers: two}
        connections:
          - {from: a, to: b.input}
        """))
    with pytest.raises(FlowFileError) as caught:
        Flow.from_file(path)
    found = [(p.line, p.column) for p in caught.value.problems]
    assert found == [(1, 21), (2, 14), (4, 14), (5, 31), (7, 12)]
    assert "(and 4 more; `routilux validate" in str(caught.value)


def test_the_semantic_phase_reports_every_routine_at_once(tmp_path):
    path = write(tmp_path, ".yaml", textwrap.dedent("""\
        routines:
          a: {class: Batcher, config: {batch_size: 0, colour: red}}
          b: {class: 'flowfile_routines:NotARoutine'}
          c: {class: Mapper, timeout: 3}
        """))
    with pytest.raises(FlowFileError) as caught:
        Flow.from_file(path, ALLOW)
    assert [p.line for p in caught.value.problems] == [2, 2, 3, 4]


def write_module(tmp_path, name: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""\
        from routilux import Routine

        class Marked(Routine):
            def __init__(self):
                super().__init__()
                self.define_slot("trigger")
        """))


@pytest.mark.parametrize("mistake", ["schema", "allow-list"])
def test_nothing_is_imported_before_validation_passes(tmp_path, monkeypatch, mistake):
    name = f"marker_{mistake.replace('-', '_')}_{tmp_path.name.replace('-', '_')}"
    write_module(tmp_path, name)
    monkeypatch.syspath_prepend(str(tmp_path))  # importable, whatever the loader does
    flow_text = f"routines:\n  m: {{class: '{name}:Marked'}}\n"
    allowed = [name]
    if mistake == "schema":
        flow_text += "max_workers: -1\n"
    else:
        allowed = ["somewhere.else"]
    path = write(tmp_path, ".yaml", flow_text)
    with pytest.raises(FlowFileError):
        Flow.from_file(path, allowed)
    assert name not in sys.modules
    # The same file, once valid, does import it: the check above can fail.
    path.write_text(f"routines:\n  m: {{class: '{name}:Marked'}}\n")
    Flow.from_file(path, [name])
    assert name in sys.modules


def test_a_package_entry_allows_its_modules(tmp_path, monkeypatch):
    package = tmp_path / f"pkg_{tmp_path.name.replace('-', '_')}"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    write_module(package / "sub", "routines")
    monkeypatch.syspath_prepend(str(tmp_path))
    ref = f"{package.name}.sub.routines:Marked"
    path = write(tmp_path, ".yaml", f"routines:\n  m: {{class: '{ref}'}}\n")
    assert Flow.from_file(path, [f"{package.name}.*"]).routines["m"]
    assert Flow.from_file(path, [f"{package.name}.sub.routines"]).routines["m"]
    with pytest.raises(FlowFileError, match="not in the allow-list"):
        Flow.from_file(path, [package.name])  # the package alone, not its modules


def test_a_malformed_allow_list_entry_is_refused(tmp_path):
    path = write(tmp_path, ".yaml", "routines:\n  a: {class: Mapper}\n")
    with pytest.raises(ValueError, match=r"allowed_modules entry 'os\.\*\*' is not a module"):
        Flow.from_file(path, ["os.**"])


def test_a_missing_file_is_one_error(tmp_path):
    with pytest.raises(FlowFileError, match=r"missing.yaml: error: cannot read the file"):
        Flow.from_file(tmp_path / "missing.yaml")
