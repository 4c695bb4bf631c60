"""manage.py import_csv <dataset> <path or -> --trial <protocol_code> --user <username> [--dry-run]

The same import as POST /api/v1/imports/{dataset}/ (toxicity/imports.py), as the named user:
every row is checked and audited as that user's entry; all or nothing. Prints one line per
error ("row 7, temperature_max_c: ...") and exits non-zero when any row failed.
"""
import sys

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from toxicity import imports
from trials.models import Trial


class Command(BaseCommand):
    help = "Import daily assessments or a rescue-therapy log from a CSV file (data-dictionary column names)."

    def add_arguments(self, parser):
        parser.add_argument("dataset", choices=sorted(imports.DATASETS))
        parser.add_argument("path", help="the CSV file, or - for standard input")
        parser.add_argument("--trial", required=True, help="protocol code, e.g. CART-19-001")
        parser.add_argument("--user", required=True, help="the coordinator or investigator entering the data")
        parser.add_argument("--dry-run", action="store_true", help="check every row, store nothing")

    def handle(self, dataset, path, trial, user, dry_run=False, **options):
        trial_obj = Trial.objects.filter(protocol_code=trial).first()
        if trial_obj is None:
            raise CommandError(f"No trial '{trial}'.")
        user_obj = get_user_model().objects.filter(username=user, is_active=True).first()
        if user_obj is None:
            raise CommandError(f"No active user '{user}'.")
        try:
            stream = sys.stdin.buffer if path == "-" else open(path, "rb")
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.")
        try:
            report = imports.import_csv(user=user_obj, trial=trial_obj, dataset=dataset, stream_or_text=stream,
                                        dry_run=dry_run, row_limit=None)  # the command has no request timeout
        except Http404:
            raise CommandError(f"{user} holds no coordinator or investigator role in {trial}.")
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages))
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
        for error in report.errors:
            self.stdout.write(f"row {error['row']}, {error['field']}: {error['message']}")
        summary = f"{report.dataset}: {report.rows} rows read, {report.created} passed"
        if report.errors:
            n = len(report.failed_rows)
            raise CommandError(f"{summary}, {n} row{'s' if n != 1 else ''} with errors; nothing was stored.")
        if dry_run:
            self.stdout.write(self.style.SUCCESS(f"{summary}; dry run: nothing was stored."))
        else:
            self.stdout.write(self.style.SUCCESS(f"{summary}; {report.created} stored."))
