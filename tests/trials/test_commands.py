"""manage.py grant and load_demo."""
import pytest
from django.core.management import CommandError, call_command

from trials.models import Cohort, Infusion, Membership, Site, Subject
from trials.selectors import subject_list


def test_grant_and_revoke_a_site_role(world):
    user = world.users["nobody"]
    call_command("grant", user.username, "monitor", world.trial.protocol_code, "--site", "102")
    membership = Membership.objects.get(user=user)
    assert (membership.role, membership.site) == ("monitor", world.site_b)
    user.__dict__.pop("_role_index", None)
    assert set(subject_list(user=user)) == {world.subject_b}
    call_command("grant", user.username, "monitor", world.trial.protocol_code, "--site", "102", "--revoke")
    assert not Membership.objects.filter(user=user).exists()
    user.__dict__.pop("_role_index", None)
    assert not subject_list(user=user).exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["coordinator"], "granted per site"),
        (["sponsor", "--site", "101"], "covers the whole trial"),
        (["coordinator", "--site", "999"], "has no site '999'"),
    ],
)
def test_grant_refuses_inconsistent_requests(world, args, message):
    role, *rest = args
    with pytest.raises(CommandError, match=message):
        call_command("grant", world.users["nobody"].username, role, world.trial.protocol_code, *rest)
    assert not Membership.objects.filter(user=world.users["nobody"]).exists()


def test_grant_unknown_user_or_trial(world):
    with pytest.raises(CommandError, match="No user"):
        call_command("grant", "ghost", "sponsor", world.trial.protocol_code)
    with pytest.raises(CommandError, match="No trial"):
        call_command("grant", world.users["nobody"].username, "sponsor", "NOPE-1")


def test_load_demo_builds_the_demo_trial_idempotently(db, capsys, settings):
    settings.DEBUG = True
    call_command("load_demo")
    call_command("load_demo")
    out = capsys.readouterr().out
    assert "coordinator101" in out and "demo-coordinator101-pass" in out
    assert Site.objects.count() == 2 and Cohort.objects.count() == 2
    assert Subject.objects.count() == 12
    assert Infusion.objects.filter(infusion_number=1).count() == 12
    assert Subject.objects.filter(day0__isnull=False, status__in=["infused", "died"]).count() == 12
    ages = sorted(Subject.objects.values_list("age_years", flat=True))
    assert ages[0] < 12 and ages[-1] >= 65  # children and adults
    roles = set(Membership.objects.values_list("role", flat=True))
    assert roles == {"coordinator", "investigator", "monitor", "data_manager", "sponsor", "dsmb"}
    # daily courses (toxicity app): every CRS and ICANS grade, NE, children graded with CAPD, all rescue logs
    from toxicity import models as tox

    assessments = tox.DailyAssessment.objects.all()
    assert set(assessments.values_list("crs_grade_derived", flat=True)) == {0, 1, 2, 3, 4, 5, None}
    assert set(assessments.values_list("icans_grade_derived", flat=True)) >= {0, 1, 2, 3, 4, 5}
    assert assessments.filter(capd_score__gte=9, subject__age_years__lt=12).exists()
    for log in (tox.TocilizumabDose, tox.CorticosteroidDose, tox.AnticytokineDose, tox.PlasmaExchange,
                tox.HemofiltrationSession, tox.IcuStay):
        assert log.objects.exists(), log
    assert Subject.objects.filter(status="died").count() == 2
    count = assessments.count()
    call_command("load_demo")
    assert tox.DailyAssessment.objects.count() == count  # idempotent


def test_load_demo_refuses_production(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DJANGO_DEBUG=1"):
        call_command("load_demo")
