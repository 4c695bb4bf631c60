"""manage.py grant <username> <role> <protocol_code> [--site N] [--revoke] (api.md)."""
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from trials import services
from trials.models import Site, Trial
from trials.roles import SITE_ROLES, Role


class Command(BaseCommand):
    help = "Give a user a role in a trial (site roles need --site); --revoke takes it back."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", choices=[r.value for r in Role])
        parser.add_argument("protocol_code")
        parser.add_argument("--site", help="site number, required for coordinator, investigator and monitor")
        parser.add_argument("--revoke", action="store_true")

    def handle(self, username, role, protocol_code, site=None, revoke=False, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user '{username}'.")
        try:
            trial = Trial.objects.get(protocol_code=protocol_code)
        except Trial.DoesNotExist:
            raise CommandError(f"No trial '{protocol_code}'.")
        site_obj = None
        if site is not None:
            site_obj = Site.objects.filter(trial=trial, site_number=site).first()
            if site_obj is None:
                raise CommandError(f"Trial {protocol_code} has no site '{site}'.")
        if not revoke and role in SITE_ROLES and site_obj is None:
            raise CommandError(f"The {role} role is granted per site: add --site <site_number>.")
        if role not in SITE_ROLES and site_obj is not None:
            raise CommandError(f"The {role} role covers the whole trial: do not give --site.")
        where = f" at site {site}" if site_obj else ""
        if revoke:
            count = services.membership_revoke(user=user, role=role, trial=trial, site=site_obj)
            if not count:
                raise CommandError(f"{username} has no {role} role in {protocol_code}{where}.")
            self.stdout.write(self.style.SUCCESS(f"Revoked {role} from {username} in {protocol_code}{where}."))
            return
        try:
            services.membership_grant(user=user, role=role, trial=trial, site=site_obj)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()))
        self.stdout.write(self.style.SUCCESS(f"Granted {role} to {username} in {protocol_code}{where}."))
