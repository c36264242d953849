"""Warnings: cycles no connection leaves, unreachable routines, doubled connections.
They do not stop a flow from loading; from_file logs them."""

from __future__ import annotations

import logging
import textwrap

from routilux import Flow
from routilux.flowfile import WARNING, check_text

HEAD = """\
routines:
  source: {class: 'flowfile_routines:Source'}
  a: {class: 'flowfile_routines:Scale'}
  b: {class: 'flowfile_routines:Scale'}
  sink: {class: 'flowfile_routines:Sink'}
connections:
  - {from: source.item, to: a.input}
"""
ALLOW = ["flowfile_routines"]


def warnings_of(text: str) -> list[tuple[int, str]]:
    checked = check_text(textwrap.dedent(text), "w.yaml", "yaml", ALLOW)
    assert checked.ok, [str(p) for p in checked.problems]
    assert all(p.severity == WARNING for p in checked.problems)
    return [(p.line, p.message) for p in checked.problems]


def test_a_cycle_that_no_connection_leaves_is_a_warning():
    found = warnings_of(
        HEAD + "  - {from: a.scaled, to: b.input}\n  - {from: b.scaled, to: a.input}\n"
    )
    assert found[0][0] == 8  # the first connection inside the cycle
    assert found[0][1].startswith("routines 'a', 'b' form a cycle that no connection leaves")
    assert len(found) == 1  # without an entry, sink (fed by nothing) may start a job


def test_a_cycle_with_an_exit_is_fine():
    text = HEAD + (
        "  - {from: a.scaled, to: b.input}\n"
        "  - {from: b.scaled, to: a.input}\n"
        "  - {from: b.scaled, to: sink.input}\n"
    )
    assert warnings_of(text) == []


def test_a_routine_feeding_itself_without_exit_is_a_warning():
    found = warnings_of(HEAD + "  - {from: a.scaled, to: a.input}\n")
    assert "routine 'a' feeds itself and no connection leaves it" in found[0][1]


def test_unreachable_routines_are_warnings_from_the_entry():
    text = "entry: a.input\n" + HEAD + "  - {from: b.scaled, to: sink.input}\n"
    found = warnings_of(text)
    assert [message.split(" cannot")[0] for _, message in found] == [
        "routine 'source'",
        "routine 'b'",
        "routine 'sink'",
    ]
    assert "from the entry 'a'" in found[0][1]


def test_a_doubled_connection_is_a_warning():
    found = warnings_of(
        HEAD
        + "  - {from: a.scaled, to: sink.input}\n"
        + "  - {from: a.scaled, to: sink.input}\n"
        + "  - {from: source.item, to: b.input}\n"
        + "  - {from: b.scaled, to: sink.input}\n"
    )
    assert found == [
        (9, "a.scaled -> sink.input is connected twice: each connection delivers, so the "
            "slot gets every message twice")
    ]


def test_from_file_loads_despite_warnings_and_logs_them(tmp_path, caplog):
    path = tmp_path / "w.yaml"
    path.write_text("entry: source.trigger\n" + HEAD)
    with caplog.at_level(logging.WARNING, logger="routilux.flowfile"):
        flow = Flow.from_file(path, ALLOW)
    assert sorted(flow.routines) == ["a", "b", "sink", "source"]
    assert [r.getMessage().split(": warning: ")[1].split(" cannot")[0] for r in caplog.records] \
        == ["routine 'b'", "routine 'sink'"]
