"""manage.py generate_synthetic <protocol_code> --subjects N --days D --seed S"""
import time

from django.core.management.base import BaseCommand, CommandError

from toxicity.synthetic import generate


class Command(BaseCommand):
    help = "Create a reproducible synthetic trial (bulk inserts with audit history) for benchmarks and tests."

    def add_arguments(self, parser):
        parser.add_argument("protocol_code")
        parser.add_argument("--subjects", type=int, default=100)
        parser.add_argument("--days", type=int, default=35)
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, protocol_code, subjects, days, seed, **options):
        if subjects < 1 or not 1 <= days <= 400:
            raise CommandError("--subjects must be >= 1 and --days between 1 and 400.")
        started = time.perf_counter()
        out = generate(protocol_code, subjects=subjects, days=days, seed=seed)
        seconds = time.perf_counter() - started
        self.stdout.write(self.style.SUCCESS(
            f"{protocol_code}: {out.subjects} subjects, {out.assessments} assessments, {out.interventions} "
            f"intervention records in {seconds:.1f} s ({out.assessments / seconds:,.0f} assessments/s)."
        ))
