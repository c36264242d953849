from __future__ import annotations

import pytest

from routilux.builtin_routines import TextClipper

TEXT = "alpha\nbravo\ncharlie\ndelta\n"  # lines of 6, 6, 8, 6 characters


def run(collect, routine, **message):
    got = collect(routine)["output"]
    routine.get_slot("input").receive(message)
    assert len(got) == 1
    return got[0]


def test_short_text_passes_unchanged(collect):
    out = run(collect, TextClipper(max_length=100), text=TEXT)
    assert out == {"clipped_text": TEXT, "was_clipped": False, "original_length": len(TEXT)}


def test_text_of_exactly_max_length_is_not_clipped(collect):
    out = run(collect, TextClipper(max_length=len(TEXT)), text=TEXT)
    assert out["was_clipped"] is False and out["clipped_text"] == TEXT


def test_clips_by_whole_lines_and_counts_the_lines_left_out(collect):
    # kept while the running total of len(line) + 1 stays below max_length; the
    # empty string after the last line break counts as a line, as in 0.10
    out = run(collect, TextClipper(max_length=13), text=TEXT)
    assert out["clipped_text"] == "alpha\nbravo\n...(省略了3行)"
    assert out["was_clipped"] is True
    assert out["original_length"] == len(TEXT)


def test_the_running_total_must_stay_strictly_below_max_length(collect):
    out = run(collect, TextClipper(max_length=20), text=TEXT)
    assert out["clipped_text"] == "alpha\nbravo\n...(省略了3行)"
    out = run(collect, TextClipper(max_length=21), text=TEXT)
    assert out["clipped_text"] == "alpha\nbravo\ncharlie\n...(省略了2行)"


def test_truncation_message_is_configurable(collect):
    clipper = TextClipper(max_length=21, truncation_message="[{remaining} more lines]")
    out = run(collect, clipper, text=TEXT)
    assert out["clipped_text"] == "alpha\nbravo\ncharlie\n[2 more lines]"


def test_last_line_without_newline(collect):
    out = run(collect, TextClipper(max_length=12), text="abc\ndefghijkl\nmnop")
    assert out["clipped_text"] == "abc\n...(省略了2行)"


def test_first_line_longer_than_max_gives_the_message_alone(collect):
    out = run(collect, TextClipper(max_length=4), text="abcdefgh\nij")
    assert out["clipped_text"] == "\n...(省略了2行)"
    assert out["was_clipped"] is True
    assert run(collect, TextClipper(max_length=3), text="ab\ncd")["clipped_text"] == (
        "\n...(省略了2行)"
    )


def test_single_long_line(collect):
    out = run(collect, TextClipper(max_length=3), text="x" * 10)
    assert out["clipped_text"] == "\n...(省略了1行)"


def test_text_mentioning_traceback_anywhere_is_never_clipped(collect):
    out = run(collect, TextClipper(max_length=5), text="see the Traceback above\nmore")
    assert out["was_clipped"] is False


def test_traceback_is_never_clipped(collect):
    tb = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "ZeroDivisionError: division by zero\n"
    )
    out = run(collect, TextClipper(max_length=10), text="log line\n" + tb)
    assert out["clipped_text"] == "log line\n" + tb
    assert out["was_clipped"] is False


def test_traceback_preservation_can_be_turned_off(collect):
    tb = "Traceback (most recent call last):\n  boom\n"
    out = run(collect, TextClipper(max_length=10, preserve_tracebacks=False), text=tb)
    assert out["was_clipped"] is True


def test_empty_text(collect):
    out = run(collect, TextClipper(max_length=5), text="")
    assert out == {"clipped_text": "", "was_clipped": False, "original_length": 0}


def test_windows_line_endings(collect):
    out = run(collect, TextClipper(max_length=8), text="ab\r\ncd\r\nef\r\n")
    assert out["clipped_text"] == "ab\r\n...(省略了3行)"


@pytest.mark.parametrize(
    "value, text",
    [(42, "42"), (b"bytes", "b'bytes'"), (["a"], "['a']"), ({"n": 1, "body": "hi"}, "hi"),
     ({"message": "m", "content": "c"}, "c"), ({"n": 1}, "{'n': 1}")],
)
def test_non_str_input_becomes_text(collect, value, text):
    out = run(collect, TextClipper(), text=value)
    assert out["clipped_text"] == text and out["original_length"] == len(text)


def test_input_rule_without_a_text_key(collect):
    assert run(collect, TextClipper(), body="x")["clipped_text"] == "x"
    assert run(collect, TextClipper(), data="y", other=1)["clipped_text"] == "y"
    assert run(collect, TextClipper(), text=None, data="z")["clipped_text"] == "z"


def test_message_max_length_overrides_the_config(collect):
    out = run(collect, TextClipper(max_length=100), text="a\nbcdefg", max_length=5)
    assert out["clipped_text"] == "a\n...(省略了1行)"
    assert run(collect, TextClipper(max_length=5), text="abcdefg", max_length=0)["was_clipped"]


def test_input_key_reads_another_field(collect):
    out = run(collect, TextClipper(max_length=5, input_key="body"), body="a\nbcdefg", x=1)
    assert out["clipped_text"] == "a\n...(省略了1行)"


def test_stats_count_clipped_texts(collect):
    clipper = TextClipper(max_length=3)
    collect(clipper)
    clipper.get_slot("input").receive({"text": "ab"})
    clipper.get_slot("input").receive({"text": "abcd\nef"})
    assert clipper.stats() == {"clipped": 1}


def test_in_a_flow(flow_runner):
    run_ = flow_runner.run(TextClipper(max_length=13), {"text": TEXT})
    assert run_.events["output"] == [
        {
            "clipped_text": "alpha\nbravo\n...(省略了3行)",
            "was_clipped": True,
            "original_length": len(TEXT),
        }
    ]


def test_bad_truncation_message_fails_the_job_with_the_message(flow_runner):
    clipper = TextClipper(max_length=3, truncation_message="{missing} lines")
    run_ = flow_runner.run(clipper, {"text": "abcdef\ngh"}, expect="failed")
    assert "missing" in str(run_.job.error) + str(run_.job.failures)
    assert run_.events["output"] == []
