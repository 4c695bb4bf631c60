"""manage.py grade: JSON Lines (or CSV) in, one JSON result per input line out, in order."""

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from toxicity.grading import grade
from toxicity.management.commands import grade as grade_command

MANAGE_PY = Path(__file__).resolve().parents[2] / "manage.py"
ADULT = {"age_years": 45, "ice_score": 10}


def jsonl(*rows):
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def run(text, *args):
    """call_command with stdin; returns (output lines as JSON, CommandError or None)."""
    out = StringIO()
    try:
        call_command("grade", *args, stdin=StringIO(text), stdout=out)
        error = None
    except CommandError as exc:
        error = exc
    return [json.loads(line) for line in out.getvalue().splitlines()], error


def test_one_result_per_line_in_order():
    rows = [{**ADULT, "temperature_max_c": t} for t in (39.0, 37.0, None, 38.5)]
    rows.append({**ADULT, "temperature_max_c": 39.5, "hypotension": True,
                 "vasopressors": ["norepinephrine", "epinephrine"]})
    out, error = run(jsonl(*rows))
    assert error is None
    assert out == [grade(row).as_dict() for row in rows]
    assert [line["crs_grade"] for line in out] == [1, 0, "NE", 1, 4]


def test_boundary_pair_37_9_and_38_0():
    out, error = run(jsonl({**ADULT, "temperature_max_c": 37.9},
                           {**ADULT, "temperature_max_c": 38.0}))
    assert error is None
    assert [(o["crs_grade"], o["ctcae_crs_grade"]) for o in out] == [(0, 0), (1, 1)]
    assert "R-CRS-1: temperature 37.9 C is not fever (< 38.0 C)." in out[0]["reasons"]
    assert "R-CRS-1: temperature 38.0 C is fever (>= 38.0 C)." in out[1]["reasons"]


def test_a_bad_line_names_the_field_and_the_others_are_still_graded():
    rows = [{**ADULT, "temperature_max_c": 38.2}, {**ADULT, "temperature_max_c": 46},
            {**ADULT, "temperature_max_c": 37.0, "vasopressors": ["norepinephrine"]},
            {**ADULT, "temperature_max_c": 38.9}]
    out, error = run(jsonl(*rows))
    assert len(out) == 4
    assert out[0] == grade(rows[0]).as_dict()
    assert out[1] == {"error": {"temperature_max_c": ["must be between 25.0 and 45.0 (got 46)"]},
                      "line": 2}
    assert set(out[2]) == {"error", "line"}
    assert list(out[2]["error"]) == ["vasopressors"]
    assert out[2]["line"] == 3
    assert out[3] == grade(rows[3]).as_dict()
    assert isinstance(error, CommandError)
    assert "2 of 4" in str(error)


@pytest.mark.parametrize("line, message", [
    ("{not json", "not valid JSON"),
    ('{"temperature_max_c": 38.0', "not valid JSON"),
    ("[1, 2]", "grading input must be a JSON object"),
    ('"temperature_max_c"', "grading input must be a JSON object"),
    ("null", "grading input must be a JSON object"),
    ('{"age_years": 40} x', "not valid JSON: Extra data"),
])
def test_malformed_json_line(line, message):
    out, error = run(jsonl({**ADULT, "temperature_max_c": 38.0}, line,
                           {**ADULT, "temperature_max_c": 37.0}))
    assert [o.get("crs_grade") for o in out] == [1, None, 0]
    assert out[1]["line"] == 2
    assert list(out[1]["error"]) == ["non_field_errors"]
    assert message in out[1]["error"]["non_field_errors"][0]
    assert error is not None


def test_blank_lines_are_skipped_but_counted_in_line_numbers():
    text = "\n" + jsonl({**ADULT, "temperature_max_c": 38.0}) + "   \n\t\n" + jsonl(
        {**ADULT, "temperature_max_c": "hot"}) + "\n"
    out, error = run(text)
    assert len(out) == 2
    assert out[0]["crs_grade"] == 1
    assert out[1] == {"error": {"temperature_max_c": ["must be a number (got 'hot')"]},
                      "line": 5}
    assert "1 of 2" in str(error)


def test_empty_input_writes_nothing():
    assert run("") == ([], None)
    assert run("\n\n") == ([], None)


def test_stdin_as_dash_and_a_file(tmp_path):
    rows = [{**ADULT, "temperature_max_c": 38.0}, {**ADULT, "temperature_max_c": 37.9}]
    assert run(jsonl(*rows), "-")[0] == [grade(row).as_dict() for row in rows]
    path = tmp_path / "day.jsonl"
    path.write_text(jsonl(*rows))
    out = StringIO()
    call_command("grade", str(path), stdout=out)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [
        grade(row).as_dict() for row in rows]


def test_file_bytes_bom_and_bad_utf8(tmp_path):
    # a UTF-8 BOM before the first line is skipped; a line that is not UTF-8 fails alone
    path = tmp_path / "days.jsonl"
    good = json.dumps({**ADULT, "temperature_max_c": 38.0}).encode()
    path.write_bytes(b"\xef\xbb\xbf" + good + b"\n  " + good + b"  \r\n\xff\xfe\n" + good + b"\n")
    out = StringIO()
    with pytest.raises(CommandError, match="1 of 4"):
        call_command("grade", str(path), stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line.get("crs_grade") for line in lines] == [1, 1, None, 1]
    assert lines[2]["line"] == 3
    assert "not valid JSON" in lines[2]["error"]["non_field_errors"][0]


def test_missing_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("grade", str(tmp_path / "nope.jsonl"), stdout=StringIO())


class _WatchedInput(StringIO):
    """stdin that notes, at each read, how many result lines were already written."""

    def __init__(self, text, out):
        super().__init__(text)
        self.out, self.written_at_reads = out, []

    def read(self, size=-1):
        self.written_at_reads.append(self.out.getvalue().count("\n"))
        return super().read(size)


def test_streams_chunk_by_chunk(monkeypatch):
    monkeypatch.setattr(grade_command, "CHUNK_SIZE", 1000)  # about 15 lines a chunk
    line = jsonl({**ADULT, "temperature_max_c": 38.0})
    out = StringIO()
    watched = _WatchedInput(line * 300, out)
    call_command("grade", "--jobs", "1", stdin=watched, stdout=out)
    assert out.getvalue().count("\n") == 300
    # two chunks are read ahead, then one more after each chunk is written: the whole input
    # is never held at once
    written = watched.written_at_reads
    assert len(written) > 10
    assert written[:2] == [0, 0]
    assert all(later > earlier for earlier, later in zip(written[1:], written[2:]))
    assert written[-1] == 300  # the read that finds the end of the input


@pytest.mark.parametrize("jobs, source", [("1", "stdin"), ("2", "stdin"), ("2", "file")])
def test_many_chunks_keep_order_and_line_numbers(monkeypatch, tmp_path, jobs, source):
    monkeypatch.setattr(grade_command, "CHUNK_SIZE", 700)  # a few lines a chunk
    lines, expected = [], []
    for i in range(400):
        if i % 37 == 5:
            lines.append("\r\n")  # a blank line (CRLF), no output
            continue
        if i % 53 == 7:
            lines.append('{"temperature_max_c": "hot", "age_years": 45, "ice_score": 10}\n')
            expected.append({"error": {"temperature_max_c": ["must be a number (got 'hot')"]},
                             "line": i + 1})
            continue
        row = {**ADULT, "temperature_max_c": 37.0 + (i % 30) / 10}
        lines.append(json.dumps(row) + "\n")
        expected.append(grade(row).as_dict())
    if source == "file":  # the workers read their chunks from the file themselves
        path = tmp_path / "days.jsonl"
        path.write_text("".join(lines))
        out, error = run("", "--jobs", jobs, str(path))
    else:
        out, error = run("".join(lines), "--jobs", jobs)
    assert out == expected
    failed = sum(1 for o in expected if "error" in o)
    assert f"{failed} of {len(expected)}" in str(error)


def test_output_is_compact_json_of_as_dict():
    # the result lines are json.dumps(as_dict(), separators=(",", ":")), byte for byte
    rows = [{**ADULT, "temperature_max_c": 39.5, "hypotension": True,
             "vasopressors": ["vasopressin"], "crs_grade_reported": 1, "hypoxia": True,
             "oxygen_device": "high_flow_nasal_cannula", "oxygen_flow_l_min": 5},
            {"age_years": 8, "ice_score": 9, "temperature_max_c": 36.6,
             "cerebral_edema": "diffuse_or_signs", "cerebral_edema_other_cause": True}]
    out = StringIO()
    call_command("grade", stdin=StringIO(jsonl(*rows)), stdout=out)
    assert out.getvalue() == "".join(
        json.dumps(grade(row).as_dict(), separators=(",", ":")) + "\n" for row in rows)


# --- CSV --------------------------------------------------------------------------------------

CSV_HEADER = ("subject_id,temperature_max_c,hypotension,vasopressors,hypoxia,oxygen_device,"
              "oxygen_flow_l_min,fio2_percent,age_years,ice_score,consciousness,"
              "developmental_delay,crs_scale\n")


def test_csv_rows():
    text = CSV_HEADER + (
        '101-0001,38.0,no,,no,,,,45,10,,no,\n'  # empty cells are missing values
        '101-0002,37.9,,,,,,,45,10,alert,,\n'
        '101-0003,39.5,yes,norepinephrine;vasopressin,1,nasal_cannula,6.0,30,45,10,,0,\n'
        '101-0004,39.5,true,"norepinephrine, epinephrine",true,nasal_cannula,6.5,30,45,8,,'
        'false,ctcae_v5\n'
        '101-0005,39.5,TRUE,vasopressin,No,,,,8,,awakens_to_voice,Yes,\n'
    )
    out, error = run(text, "--csv")
    assert error is None
    assert [(o["crs_grade"], o["ctcae_crs_grade"], o["icans_grade"]) for o in out] == [
        (1, 1, 0), (0, 0, 0), (3, 4, 0), (4, 4, 1), (3, 3, "NE")]
    assert out[2] == grade({"temperature_max_c": "39.5", "hypotension": True,
                            "vasopressors": ["norepinephrine", "vasopressin"], "hypoxia": True,
                            "oxygen_device": "nasal_cannula", "oxygen_flow_l_min": "6.0",
                            "fio2_percent": 30, "age_years": 45, "ice_score": 10}).as_dict()
    assert out[3]["crs_scale"] == "ctcae_v5"
    # row 5: developmental delay (yes) makes the CAPD the tool and none was recorded: the level
    # of consciousness proves at least grade 2, the missing CAPD could make it 3 (R-CRS-15)
    assert out[4]["flags"] == ["ICANS-NOT-EVALUABLE", "VASOPRESSIN-ALONE"]
    assert (out[4]["minimum_icans_grade"], out[0]["minimum_icans_grade"]) == (2, None)


def test_fever_masked_by_and_the_minimum_grades_on_the_command_line():
    """data-dictionary.md: the CLI takes the platform's context as given and returns the floors."""
    line = ('{"temperature_max_c": 37.2, "hypotension": true, "vasopressors": ["norepinephrine"], '
            '"hypoxia": true, "age_years": 45, "ice_score": 10, "consciousness": "alert", '
            '"fever_masked_by": {"drug": "tocilizumab", "date": "2026-03-12"}}\n')
    out, error = run(line)
    assert error is None
    (result,) = out
    assert (result["crs_grade"], result["minimum_crs_grade"]) == ("NE", 3)  # device missing
    assert "CRS-FEVER-MASKED" in result["flags"]
    assert any("tocilizumab on 2026-03-12" in r for r in result["reasons"])


def test_csv_errors_name_the_field_and_the_csv_line():
    text = CSV_HEADER + (
        "101-0001,38.0,,,,,,,45,10,,,\n"
        "101-0002,38.0,maybe,,,,,,45,10,,,\n"  # not a boolean
        ",,,,,,,,,,,,\n"  # a row of empty cells is skipped
        "101-0003,38.0,,norepinephrine,,,,,45,10,,,\n"  # vasopressors without hypotension
        "101-0004,38.0,,,,,,,45\n"  # too few cells
        "101-0005,37.0,,,,,,,45,10,,,\n"
    )
    out, error = run(text, "--csv")
    assert len(out) == 5
    assert out[0]["crs_grade"] == 1
    assert out[1] == {"error": {"hypotension": ["must be true or false (got 'maybe')"]},
                      "line": 3}
    assert (list(out[2]["error"]), out[2]["line"]) == (["vasopressors"], 5)
    assert out[3] == {"error": {"non_field_errors": ["row has 9 cells; the header has 13"]},
                      "line": 6}
    assert out[4]["crs_grade"] == 0
    assert "3 of 5" in str(error)


# --- the real command line --------------------------------------------------------------------

def _manage(*args, stdin=None):
    return subprocess.run([sys.executable, str(MANAGE_PY), "grade", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_command_line_on_a_file(tmp_path):
    rows = [{**ADULT, "temperature_max_c": 37.9}, {**ADULT, "temperature_max_c": 38.0},
            {**ADULT, "temperature_max_c": 38.0, "hypoxia": True,
             "oxygen_device": "nasal_cannula", "oxygen_flow_l_min": 6.0, "fio2_percent": 30},
            {**ADULT, "temperature_max_c": 38.0, "hypoxia": True,
             "oxygen_device": "nasal_cannula", "oxygen_flow_l_min": 6.5, "fio2_percent": 30}]
    path = tmp_path / "days.jsonl"
    path.write_text(jsonl(*rows) + "\n")
    done = _manage(str(path))
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert out == [grade(row).as_dict() for row in rows]
    assert [o["crs_grade"] for o in out] == [0, 1, 2, 3]

    path.write_text(jsonl(rows[0], {**ADULT, "ice_score": 11}, rows[1]))
    done = _manage(str(path))
    assert done.returncode == 1
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [o.get("crs_grade") for o in out] == [0, None, 1]
    assert out[1] == {"error": {"ice_score": ["must be between 0 and 10 (got 11)"]}, "line": 2}
    assert "1 of 3" in done.stderr


def test_command_line_csv_from_stdin():
    done = _manage("--csv", "-", stdin=CSV_HEADER + "101-0001,38.0,,,,,,,45,10,,,\n"
                                                    "101-0002,37.9,,,,,,,45,10,,,\n")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["crs_grade"] for line in done.stdout.splitlines()] == [1, 0]
