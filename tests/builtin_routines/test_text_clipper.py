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
    out = run(collect, TextClipper(max_length=13), text=TEXT)
    assert out["clipped_text"] == "alpha\nbravo\n...[2 more lines clipped]"
    assert out["was_clipped"] is True
    assert out["original_length"] == len(TEXT)


def test_one_line_left_out_is_singular(collect):
    out = run(collect, TextClipper(max_length=20), text=TEXT)
    assert out["clipped_text"] == "alpha\nbravo\ncharlie\n...[1 more line clipped]"


def test_last_line_without_newline(collect):
    out = run(collect, TextClipper(max_length=12), text="abc\ndefghijkl\nmnop")
    assert out["clipped_text"] == "abc\n...[2 more lines clipped]"


def test_first_line_longer_than_max_is_cut_and_says_so(collect):
    out = run(collect, TextClipper(max_length=4), text="abcdefgh\nij")
    assert out["clipped_text"] == "abcd\n...[line 1 cut at 4 characters; 1 more line clipped]"
    assert out["was_clipped"] is True


def test_single_long_line(collect):
    out = run(collect, TextClipper(max_length=3), text="x" * 10)
    assert out["clipped_text"].startswith("xxx\n...[line 1 cut at 3 characters; 0 more lines")


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
    assert out["clipped_text"] == "ab\r\ncd\r\n...[1 more line clipped]"


@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["a"]])
def test_non_str_text_is_a_type_error(collect, bad):
    with pytest.raises(TypeError, match="TextClipper needs a str"):
        run(collect, TextClipper(), text=bad)


def test_missing_text_key_is_explained(collect):
    with pytest.raises(ValueError, match=r"reads the 'text' key.*\['body'\]"):
        run(collect, TextClipper(), body="x")


def test_input_key_reads_another_field(collect):
    out = run(collect, TextClipper(max_length=5, input_key="body"), body="a\nbcdefg")
    assert out["clipped_text"] == "a\n...[1 more line clipped]"


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
            "clipped_text": "alpha\nbravo\n...[2 more lines clipped]",
            "was_clipped": True,
            "original_length": len(TEXT),
        }
    ]


def test_wrong_type_fails_the_job_with_the_message(flow_runner):
    run_ = flow_runner.run(TextClipper(), {"text": 5}, expect="failed")
    assert "TextClipper needs a str" in str(run_.job.error) + str(run_.job.failures)
    assert run_.events["output"] == []
