"""A synthetic demo trial: two sites, two cohorts, twelve subjects with index infusions.

Every record is written through the services as a demo coordinator, so the demo data carry the
same audit trail and derived values as real entries. Dates are relative to today.
"""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from django.utils import timezone

from trials import services
from trials.models import Cohort, Site, Subject, Trial
from trials.roles import Role

PROTOCOL_CODE = "CART-19-001"

# username, role, site number (None for trial roles)
DEMO_USERS = [
    ("coordinator101", Role.COORDINATOR, "101"),
    ("coordinator102", Role.COORDINATOR, "102"),
    ("investigator101", Role.INVESTIGATOR, "101"),
    ("investigator102", Role.INVESTIGATOR, "102"),
    ("monitor101", Role.MONITOR, "101"),
    ("monitor102", Role.MONITOR, "102"),
    ("datamanager", Role.DATA_MANAGER, None),
    ("sponsor", Role.SPONSOR, None),
    ("dsmb", Role.DSMB, None),
]
ADMIN_USERNAME = "admin"


def demo_password(username: str) -> str:
    """Demo credentials are public by design; load_demo refuses to run with DEBUG off."""
    return f"demo-{username}-pass"


@dataclass(frozen=True)
class DemoSubject:
    number: str
    site: str
    cohort: str
    sex: str
    age: int
    diagnosis: str
    weight_kg: str
    infused_days_ago: int
    developmental_delay: bool = False
    capd_baseline: int | None = None


DEMO_SUBJECTS = [
    DemoSubject("101-0001", "101", "DL1", "female", 54, "dlbcl", "68.0", 40),
    DemoSubject("101-0002", "101", "DL1", "male", 67, "dlbcl", "82.5", 36),
    DemoSubject("101-0003", "101", "DL2", "female", 9, "b_all", "27.4", 30, capd_baseline=2),
    DemoSubject("101-0004", "101", "DL2", "male", 12, "b_all", "41.0", 25),
    DemoSubject("101-0005", "101", "DL2", "male", 23, "b_all", "70.2", 18),
    DemoSubject("101-0006", "101", "DL1", "female", 71, "mcl", "59.8", 9),
    DemoSubject("102-0001", "102", "DL1", "male", 45, "fl", "91.3", 38),
    DemoSubject("102-0002", "102", "DL1", "female", 62, "mm", "64.0", 33),
    DemoSubject("102-0003", "102", "DL2", "male", 6, "b_all", "21.5", 27, capd_baseline=4),
    DemoSubject("102-0004", "102", "DL2", "female", 15, "b_all", "48.9", 20, developmental_delay=True, capd_baseline=6),
    DemoSubject("102-0005", "102", "DL2", "male", 58, "dlbcl", "77.0", 12),
    DemoSubject("102-0006", "102", "DL1", "female", 49, "cll", "55.5", 5),
]


def _user(username: str, *, superuser: bool = False):
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.org"})
    user.set_password(demo_password(username))
    user.is_superuser = superuser
    user.is_staff = superuser or username == "datamanager"  # data managers set trials up in the admin
    user.save()
    if username == "datamanager":
        user.user_permissions.set(
            Permission.objects.filter(
                content_type__app_label="trials",
                content_type__model__in=["trial", "site", "cohort", "membership", "subject", "infusion", "death"],
            )
        )
    return user


@transaction.atomic
def load_demo(*, today: date | None = None) -> tuple[Trial, list[tuple[str, str, str]]]:
    """Create (or refresh the users of) the demo trial. Returns the trial and (user, role, password)."""
    today = today or timezone.localdate()
    trial, created = Trial.objects.get_or_create(
        protocol_code=PROTOCOL_CODE,
        defaults={
            "title": "Phase 1/2 dose escalation of an anti-CD19 CAR-T in relapsed B-cell malignancies (demo)",
            "phase": "1/2",
            "sponsor": "Demo Cell Therapies",
            "status": "active",
        },
    )
    sites = {
        number: Site.objects.get_or_create(trial=trial, site_number=number, defaults=defaults)[0]
        for number, defaults in [
            ("101", {"name": "University Hospital Berlin", "country": "DE", "timezone": "Europe/Berlin"}),
            ("102", {"name": "Lakeside Cancer Center", "country": "US", "timezone": "America/Chicago"}),
        ]
    }
    cohorts = {
        name: Cohort.objects.get_or_create(trial=trial, name=name, defaults={"dose_level_cells_per_kg": dose})[0]
        for name, dose in [("DL1", 0.5e6), ("DL2", 1.0e6)]
    }
    credentials = []
    admin = _user(ADMIN_USERNAME, superuser=True)
    services.membership_grant(user=admin, role=Role.DATA_MANAGER, trial=trial)
    credentials.append((ADMIN_USERNAME, "superuser + data_manager", demo_password(ADMIN_USERNAME)))
    coordinators = {}
    for username, role, site_number in DEMO_USERS:
        user = _user(username)
        services.membership_grant(user=user, role=role, trial=trial, site=sites[site_number] if site_number else None)
        credentials.append((username, f"{role}" + (f" site {site_number}" if site_number else ""), demo_password(username)))
        if role == Role.COORDINATOR:
            coordinators[site_number] = user
    if created or not Subject.objects.filter(trial=trial).exists():
        for spec in DEMO_SUBJECTS:
            _demo_subject(spec, trial=trial, site=sites[spec.site], cohort=cohorts[spec.cohort],
                          user=coordinators[spec.site], today=today)
    for config in apps.get_app_configs():  # later apps add their demo data (daily courses, ...)
        if hasattr(config, "load_demo"):
            config.load_demo(trial, coordinators, today=today)
    return trial, credentials


def _demo_subject(spec: DemoSubject, *, trial, site, cohort, user, today: date) -> Subject:
    infusion_day = today - timedelta(days=spec.infused_days_ago)
    enrolled_on = infusion_day - timedelta(days=14)
    born = date(enrolled_on.year - spec.age - 1, 1 + int(spec.number[-1]) % 12, 15)
    if (infusion_day - born).days // 365.25 > spec.age:  # keep the intended age at day 0
        born = date(born.year + 1, born.month, born.day)
    subject = services.subject_create(
        user=user,
        trial=trial,
        site=site,
        cohort=cohort,
        subject_id=spec.number,
        enrolled_on=enrolled_on,
        sex=spec.sex,
        date_of_birth=born,
        diagnosis=spec.diagnosis,
        baseline_weight_kg=Decimal(spec.weight_kg),
        developmental_delay=spec.developmental_delay,
        capd_baseline=spec.capd_baseline,
    )
    infused_at = datetime.combine(infusion_day, time(10, 30), tzinfo=ZoneInfo(site.timezone))
    services.infusion_create(
        user=user,
        subject=subject,
        infusion_number=1,
        product="investigational",
        lot_number=f"LOT-{spec.number.replace('-', '')}",
        infused_at=infused_at,
        dose_cells_per_kg=cohort.dose_level_cells_per_kg * (1.0 if int(spec.number[-1]) % 3 else 0.95),
        weight_kg=Decimal(spec.weight_kg),
        lymphodepletion_regimen="flu_cy",
        lymphodepletion_start_date=infusion_day - timedelta(days=5),
    )
    subject.refresh_from_db()
    return subject
