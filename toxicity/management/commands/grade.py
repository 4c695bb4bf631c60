"""manage.py grade [FILE] [--csv] [--jobs N]: grade daily assessments offline, one JSON per input.

The CLI of data-dictionary.md "Grading input and output": JSON Lines in (a file, or stdin when
FILE is absent or "-"), JSON Lines out, in order. A line that cannot be graded gives an
`{"error": {field: [messages]}, "line": N}` line in its place and the rest go on; the exit
status is 1 at the end if any line failed.

The input is read in chunks of whole lines (CHUNK_SIZE) and each chunk's output written at
once, so memory stays flat however long the file. An input longer than one chunk is graded by
--jobs worker processes (default: one per CPU), a few chunks at a time, and written in input
order. The per-line loop does no Django work.
"""

import csv
import io
import json
import multiprocessing
import os
import sys
from collections import deque
from itertools import chain, islice

from django.core.management.base import BaseCommand, CommandError

from toxicity.grading import GradingInputError, grade
from toxicity.grading.inputs import BOOLEAN_FIELDS

CHUNK_SIZE = 1 << 20  # characters (bytes) of whole lines read, graded and written together
CHUNKS_IN_FLIGHT_PER_JOB = 2  # bounds the memory of the worker pipeline
CSV_BOOLEAN_WORDS = {"yes": "true", "no": "false"}  # spreadsheet habits, booleans only
CSV_BLOCK_ROWS = 1000  # CSV rows graded before each write
UTF8_BOM = b"\xef\xbb\xbf"
_scan_once = json.JSONDecoder().scan_once  # the C scanner inside json.loads


def _error_line(errors: dict, number: int) -> str:
    return json.dumps({"error": errors, "line": number}, separators=(",", ":"))


def grade_chunk(chunk: bytes | str, first_number: int) -> tuple[str, int, int]:
    """Grade the JSON lines of a chunk, numbered from first_number: (output, graded, failed).

    The output has one line per non-blank input line, each ending in a newline.
    """
    loads, scan, grade_, input_error = json.loads, _scan_once, grade, GradingInputError
    if isinstance(chunk, bytes):
        if first_number == 1 and chunk.startswith(UTF8_BOM):
            chunk = chunk[len(UTF8_BOM):]
        lines, decode = chunk.split(b"\n"), bytes.decode  # strict UTF-8, line by line
    else:
        lines, decode = chunk.split("\n"), str  # already text: str(line) is the line
    if not lines[-1]:
        lines.pop()  # after the last newline
    out: list[str] = []
    append = out.append
    graded = failed = 0
    for number, line in enumerate(lines, first_number):
        if not line or line.isspace():
            continue
        graded += 1
        try:  # json.loads without its wrappers; anything unusual goes through json.loads
            text = decode(line)
            data, end = scan(text, 0)
            if end != len(text) and not text[end:].isspace():
                raise ValueError("extra data")
        except (ValueError, StopIteration):
            try:
                data = loads(decode(line))
            except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
                failed += 1
                append(_error_line({"non_field_errors": [f"not valid JSON: {exc}"]}, number))
                continue
        try:
            append(grade_(data).as_json())
        except input_error as exc:  # not an object, or a bad field
            failed += 1
            append(_error_line(exc.errors, number))
    if out:
        out.append("")  # a final newline
    return "\n".join(out), graded, failed


def _grade_span(fd: int, offset: int, length: int, first_number: int) -> tuple[str, int, int]:
    """grade_chunk for bytes [offset, offset + length) of a file the worker shares by fork."""
    return grade_chunk(os.pread(fd, length, offset), first_number)


def _chunks(stream):
    """(first line number, whole lines of about CHUNK_SIZE) until the input ends."""
    number = 1
    while chunk := stream.read(CHUNK_SIZE):
        newline = b"\n" if isinstance(chunk, bytes) else "\n"
        if not chunk.endswith(newline):
            chunk += stream.readline()  # the rest of the last line
        yield number, chunk
        number += chunk.count(newline)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Command(BaseCommand):
    help = (
        "Grade daily assessments (CRS, ICANS, CTCAE v5.0 CRS) from JSON Lines: one JSON object "
        "per line with the grading-input fields of the data dictionary, read from FILE or from "
        "stdin (no FILE, or '-'). Writes one JSON result per input line to stdout, in order. "
        "Blank lines are skipped (no output line). A line that is not valid JSON, not an object, "
        "or not valid grading input gives {\"error\": {field: [messages]}, \"line\": N} "
        "instead (N counts every line of the file, blank ones included) and grading goes on; "
        "the exit status is 1 if any line failed. --csv reads a CSV file whose header names "
        "the same fields: an empty cell is a missing value, vasopressors are a ';'- or "
        "','-separated list in one cell, booleans are true/false, 1/0 or yes/no; rows with "
        "only empty cells are skipped, and N is the CSV line (the header is line 1)."
    )
    requires_system_checks = []  # pure computation: no database, no models
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", default="-",
                            help="JSON Lines (or CSV with --csv) file; '-' or absent: stdin")
        parser.add_argument("--csv", action="store_true", dest="as_csv",
                            help="the input is CSV with a header row of field names")
        parser.add_argument("--jobs", type=int, default=_cpus(),
                            help="worker processes for JSON Lines longer than "
                                 f"{CHUNK_SIZE >> 20} MiB (default: one per CPU, here "
                                 "%(default)s; 1: grade in this process)")

    def handle(self, *args, file="-", as_csv=False, jobs=1, **options):
        if jobs < 1:
            raise CommandError("--jobs must be 1 or more.")
        stream = self._open(file, options.get("stdin"), as_csv)
        write = self.stdout.write
        try:
            if as_csv:
                graded, failed = self._grade_csv(stream, write)
            else:
                shared_fd = stream.fileno() if file != "-" else None
                graded, failed = self._grade_jsonl(stream, write, jobs, shared_fd)
        finally:
            if file != "-":
                stream.close()
            self.stdout.flush()
        if failed:
            raise CommandError(f"{failed} of {graded} assessments could not be graded: see the "
                               f"error lines.")

    def _open(self, file, stdin, as_csv):
        if file != "-":
            try:
                if as_csv:
                    return open(file, encoding="utf-8-sig", newline="")
                return open(file, "rb")  # decoded line by line: a bad byte fails one line
            except OSError as exc:
                raise CommandError(f"cannot read {file}: {exc.strerror}") from exc
        stream = stdin if stdin is not None else sys.stdin
        if as_csv:
            if hasattr(stream, "buffer"):  # the real stdin: undo newline translation for csv
                return io.TextIOWrapper(stream.buffer, encoding="utf-8-sig", newline="")
            return stream
        return getattr(stream, "buffer", stream)

    @staticmethod
    def _grade_jsonl(stream, write, jobs, shared_fd=None):
        """Grade every chunk, in this process or in workers; returns (graded, failed).

        With shared_fd (the file, opened at its start), a worker reads its chunk itself: only
        the offset goes through the pipe, and the results come back in input order.
        """
        chunks = _chunks(stream)
        read = list(islice(chunks, 2))  # a second chunk: worth starting workers
        chunks = chain(read, chunks)
        if len(read) < 2 or jobs == 1 or "fork" not in multiprocessing.get_all_start_methods():
            return Command._write_all((grade_chunk(c, n) for n, c in chunks), write)
        # fork: the workers start with the engine already imported, and share nothing after
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            pending = deque()

            def results():
                offset = 0
                for number, chunk in chunks:
                    if shared_fd is None:
                        task = pool.apply_async(grade_chunk, (chunk, number))
                    else:
                        task = pool.apply_async(_grade_span,
                                                (shared_fd, offset, len(chunk), number))
                        offset += len(chunk)
                    pending.append(task)
                    if len(pending) > jobs * CHUNKS_IN_FLIGHT_PER_JOB:
                        yield pending.popleft().get()
                while pending:
                    yield pending.popleft().get()

            return Command._write_all(results(), write)

    @staticmethod
    def _write_all(results, write):
        graded = failed = 0
        for text, block_graded, block_failed in results:
            write(text, ending="")
            graded += block_graded
            failed += block_failed
        return graded, failed

    @staticmethod
    def _grade_csv(stream, write):
        """Grade every CSV row as a grading input; returns (rows graded, rows failed)."""
        return Command._write_all(_csv_blocks(stream), write)


def _csv_blocks(stream):
    """(output, graded, failed) for every CSV_BLOCK_ROWS rows of the CSV input."""
    reader = csv.reader(stream)
    header = [name.strip() for name in next(reader, [])]
    booleans = {i for i, name in enumerate(header) if name in BOOLEAN_FIELDS}
    out: list[str] = []
    graded = failed = 0
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        graded += 1
        number = reader.line_num
        if len(cells) != len(header):
            failed += 1
            out.append(_error_line({"non_field_errors": [
                f"row has {len(cells)} cells; the header has {len(header)}"]}, number))
        else:
            data = {}
            for i, cell in enumerate(cells):
                value = cell.strip()
                if value:  # an empty cell is a missing value
                    if i in booleans:
                        value = CSV_BOOLEAN_WORDS.get(value.lower(), value)
                    data[header[i]] = value
            try:
                out.append(grade(data).as_json())
            except GradingInputError as exc:
                failed += 1
                out.append(_error_line(exc.errors, number))
        if len(out) >= CSV_BLOCK_ROWS:
            yield "\n".join(out) + "\n", graded, failed
            out, graded, failed = [], 0, 0
    if out:
        yield "\n".join(out) + "\n", graded, failed
