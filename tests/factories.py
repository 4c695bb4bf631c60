"""factory_boy factories for set-up rows, and helpers that write clinical rows through the services."""
import itertools
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import factory
from django.contrib.auth import get_user_model

from trials import services
from trials.models import Cohort, Site, Trial


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password("correct-horse-battery")


class TrialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Trial

    protocol_code = factory.Sequence(lambda n: f"CART-T-{n:03d}")
    title = "Test trial"
    phase = "1"
    sponsor = "Test sponsor"
    status = "active"


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    trial = factory.SubFactory(TrialFactory)
    site_number = factory.Sequence(lambda n: f"{101 + n}")
    name = factory.Sequence(lambda n: f"Site {n}")
    country = "DE"
    timezone = "Europe/Berlin"


class CohortFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cohort

    trial = factory.SubFactory(TrialFactory)
    name = factory.Sequence(lambda n: f"DL{n}")
    dose_level_cells_per_kg = 1.0e6


_subject_numbers = itertools.count(1)


def subject_fields(site, cohort, **overrides):
    today = date.today()
    fields = dict(
        trial=site.trial,
        site=site,
        cohort=cohort,
        subject_id=f"{site.site_number}-{next(_subject_numbers):04d}",
        enrolled_on=today - timedelta(days=30),
        sex="female",
        date_of_birth=date(1970, 6, 1),
        diagnosis="dlbcl",
        baseline_weight_kg=Decimal("70.0"),
    )
    fields.update(overrides)
    return fields


def make_subject(user, site, cohort, **overrides):
    return services.subject_create(user=user, **subject_fields(site, cohort, **overrides))


def infusion_fields(site, *, days_ago=20, **overrides):
    day = date.today() - timedelta(days=days_ago)
    fields = dict(
        infusion_number=1,
        product="tisagenlecleucel",
        lot_number="LOT-1",
        infused_at=datetime.combine(day, time(10, 0), tzinfo=ZoneInfo(site.timezone)),
        dose_cells_per_kg=1.0e6,
        weight_kg=Decimal("70.0"),
        lymphodepletion_regimen="flu_cy",
        lymphodepletion_start_date=day - timedelta(days=5),
    )
    fields.update(overrides)
    return fields


def make_infusion(user, subject, **overrides):
    return services.infusion_create(user=user, subject=subject, **infusion_fields(subject.site, **overrides))
