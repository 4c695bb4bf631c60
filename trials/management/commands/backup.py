"""manage.py backup [--output FILE | --output-dir DIR] [--database-url URL]

A pg_dump custom-format archive of the PostgreSQL database (DATABASE_URL unless --database-url),
written to backups/<database>-<UTC timestamp>.dump and read back with pg_restore --list before
it is reported. `manage.py restore` (or `make restore FILE=...`) puts it back.
"""
import os
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import environ
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

POSTGRES_ENGINES = ("django.db.backends.postgresql", "django.contrib.gis.db.backends.postgis")


def database_settings(url: str | None) -> dict:
    """Connection settings from a database URL, or those of the default database (DATABASE_URL)."""
    db = environ.Env.db_url_config(url) if url else settings.DATABASES["default"]
    if db.get("ENGINE") not in POSTGRES_ENGINES:
        where = "the given URL" if url else "DATABASE_URL"
        raise CommandError(
            f"Backup and restore need PostgreSQL, but {where} names a {db.get('ENGINE', '?')} database. "
            "Set DATABASE_URL=postgres://user:password@host:5432/name (a SQLite database is one file: copy it)."
        )
    if not db.get("NAME"):
        raise CommandError("The database URL names no database.")
    return db


def libpq_environment(db: dict) -> dict:
    """pg_dump/pg_restore read the connection from PG* variables: the password never appears
    on a command line (where `ps` would show it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    values = {
        "PGHOST": db.get("HOST"), "PGPORT": db.get("PORT"), "PGUSER": db.get("USER"),
        "PGPASSWORD": db.get("PASSWORD"), "PGDATABASE": db.get("NAME"),
        "PGSSLMODE": (db.get("OPTIONS") or {}).get("sslmode"),
    }
    env.update({k: str(v) for k, v in values.items() if v not in (None, "")})
    return env


def tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise CommandError(f"{name} was not found on PATH: install the PostgreSQL client (e.g. apt-get install postgresql-client).")
    return path


def run(argv: list[str], env: dict, what: str) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise CommandError(f"{what} failed (exit {done.returncode}):\n{done.stderr.strip()}")
    return done


def archive_entries(path: Path) -> int:
    """The number of table-of-contents entries of a custom-format archive; fails if it is not one."""
    listing = run([tool("pg_restore"), "--list", str(path)], dict(os.environ), f"reading {path}")
    return sum(1 for line in listing.stdout.splitlines() if line.strip() and not line.startswith(";"))


class Command(BaseCommand):
    help = "Back up the PostgreSQL database with pg_dump --format=custom into backups/."

    def add_arguments(self, parser):
        parser.add_argument("--output", help="archive file to write (default: <output-dir>/<database>-<timestamp>.dump)")
        parser.add_argument("--output-dir", default=str(Path(settings.BASE_DIR) / "backups"))
        parser.add_argument("--database-url", help="database to back up (default: DATABASE_URL)")

    def handle(self, output=None, output_dir=None, database_url=None, **options):
        db = database_settings(database_url)
        if output:
            target = Path(output)
        else:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            target = Path(output_dir) / f"{db['NAME']}-{stamp}.dump"
        if target.exists():
            raise CommandError(f"{target} exists already: not overwriting a backup.")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")  # a failed dump never looks like a backup
        try:
            run([tool("pg_dump"), "--format=custom", "--no-password", f"--file={partial}"],
                libpq_environment(db), f"pg_dump of {db['NAME']}")
            entries = archive_entries(partial)
            partial.rename(target)
        finally:
            partial.unlink(missing_ok=True)
        self.stdout.write(f"Backup of {db['NAME']} written to {target} ({target.stat().st_size} bytes, {entries} archive entries).")
