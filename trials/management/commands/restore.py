"""manage.py restore FILE [--target-database-url URL] [--noinput]

Restores a `manage.py backup` archive with pg_restore --clean --if-exists into the target
database (DATABASE_URL unless --target-database-url): tables, data, history tables and
sequences of the archive replace those in the target, in one transaction (all or nothing).
Objects of the target that the archive does not have are left alone: for an exact copy,
restore into a freshly created database.
"""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from trials.management.commands.backup import archive_entries, database_settings, libpq_environment, run, tool


class Command(BaseCommand):
    help = "Restore a pg_dump custom-format backup into the PostgreSQL database (replaces its contents)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="a .dump file written by `manage.py backup`")
        parser.add_argument("--target-database-url", help="database to restore into (default: DATABASE_URL)")
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive",
                            help="do not ask for confirmation")

    def handle(self, file, target_database_url=None, interactive=True, **options):
        archive = Path(file)
        if not archive.is_file():
            raise CommandError(f"No backup file {archive}.")
        db = database_settings(target_database_url)
        entries = archive_entries(archive)  # refuses anything that is not a custom-format archive
        where = f"{db['NAME']} on {db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}"
        if interactive:
            answer = input(
                f"This replaces the contents of the database {where} with {archive} ({entries} archive entries).\n"
                "Type 'yes' to continue, or anything else to cancel: "
            )
            if answer.strip() != "yes":
                raise CommandError("Restore cancelled.")
        run([tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error",
             "--no-password", f"--dbname={db['NAME']}", str(archive)],
            libpq_environment(db), f"pg_restore into {db['NAME']}")
        self.stdout.write(f"Restored {archive} into {where}.")
