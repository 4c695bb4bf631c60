"""manage.py load_demo: the demo trial and one demo user per role, with printed credentials."""
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from trials.demo import load_demo


class Command(BaseCommand):
    help = "Load the synthetic demo trial (idempotent) and print the demo users' credentials."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("The demo has public passwords: load it only with DJANGO_DEBUG=1.")
        # Queries raised while the demo courses are entered would print one e-mail each on the
        # console backend and bury the credentials; demo data notify nobody.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            trial, credentials = load_demo()
        subjects = trial.subjects.filter(voided=False).count()
        self.stdout.write(self.style.SUCCESS(f"Demo trial {trial.protocol_code}: {subjects} subjects."))
        self.stdout.write("Demo users (log in at http://127.0.0.1:8000/):")
        for username, role, password in credentials:
            self.stdout.write(f"  {username:<16} {password:<28} {role}")
