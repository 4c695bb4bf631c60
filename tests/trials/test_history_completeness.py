"""Every write has exactly one history row (issue 8, "No lost data").

A seeded random workload drives every write path -- subjects, infusions, deaths, assessments,
each rescue-therapy log and adverse events through the services (and some through the REST API);
source verification, locks,
signatures, queries and memberships; the CSV import; synthetic bulk generation; the admin's edit
form and its delete action -- including writes that must be refused (stale version, locked
casebook, duplicate day), which must leave no history row at all. Then, for every audited model:

- a versioned clinical row has exactly ``version`` history rows, versions 1..n once each (every
  version bump, the system re-derivations included, writes one row);
- the newest history row of every row equals the row itself (no write skipped the history);
- the history rows not written by the system are exactly the writes this workload counted;
- the other audited rows follow their own lifecycle (a lock: locked, unlocked; a query: one
  row per transition message; a signature: signed, voided).

A second test races threads on the same versions (PostgreSQL in CI): one writer per version
wins, the others are refused, and nothing is overwritten silently.
"""
import csv
import io
import random
import threading
from collections import Counter
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from simple_history.manager import HistoryManager

from tests.factories import UserFactory, infusion_fields, subject_fields
from toxicity import imports, queries, reviews, services
from toxicity.course.derive import derive_course
from toxicity.course.load import load_course
from toxicity.models import (
    AdverseEvent,
    EpisodeReview,
    AnticytokineDose,
    CorticosteroidDose,
    DailyAssessment,
    HemofiltrationSession,
    IcuStay,
    PlasmaExchange,
    Query,
    TocilizumabDose,
)
from toxicity.synthetic import generate
from trials import services as trial_services
from trials import workflow_services as wf
from trials.audit import SYSTEM_REASON_PREFIX, ClinicalModel, RecordLockedError, StaleVersionError, tracked_fields
from trials.models import Cohort, Death, Infusion, Membership, Site, Subject, Trial
from trials.workflow import CasebookSignature, Lock, SourceVerification

SEED = 20260808
OPERATIONS = 150
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory
REFUSALS = (ValidationError, StaleVersionError, RecordLockedError)

# History rows the system writes on its own, by model (not counted as the workload's writes).
SYSTEM_REASONS = {
    Query: {"raised by rule", "auto-closed: the rule passes"},
    CasebookSignature: {"voided: signed data changed"},
}

LOGS = (TocilizumabDose, CorticosteroidDose, AnticytokineDose, PlasmaExchange, HemofiltrationSession, IcuStay,
        AdverseEvent)
NORMAL = dict(temperature_max_c=Decimal("36.8"), ice_score=10, consciousness="alert")
DAY_TEMPLATES = [
    NORMAL,
    {**NORMAL, "temperature_max_c": Decimal("38.6")},
    {**NORMAL, "temperature_max_c": Decimal("39.2"), "hypotension": True},
    {**NORMAL, "temperature_max_c": Decimal("39.5"), "hypoxia": True, "oxygen_device": "nasal_cannula",
     "oxygen_flow_l_min": Decimal("2"), "crs_grade_reported": 1},
    {**NORMAL, "ice_score": 6, "consciousness": "awakens_to_voice", "icans_grade_reported": 2},
]


def audited_models():
    return [m for m in apps.get_models() if isinstance(getattr(m, "history", None), HistoryManager)]


def history_total() -> int:
    return sum(m.history.count() for m in audited_models())


def user_rows(model) -> int:
    """History rows of ``model`` that a person's write produced (not the system's re-derivations)."""
    qs = model.history.exclude(history_change_reason__startswith=SYSTEM_REASON_PREFIX)
    return qs.exclude(history_change_reason__in=SYSTEM_REASONS.get(model, ())).count()


class Workload:
    """Seeded random operations over every write path; counts the writes it makes per model."""

    def __init__(self, world, seed: int):
        self.w, self.rng = world, random.Random(seed)
        self.writes: Counter = Counter()  # model -> history rows our successful operations wrote
        self.done: Counter = Counter()
        self.refused: Counter = Counter()
        self.generated = False
        self.new_users = []
        root = UserFactory(username="history-root", is_staff=True, is_superuser=True)
        self.admin = Client()
        self.admin.force_login(root)

    # --- picking -------------------------------------------------------------------------------

    def user(self, role, subject):
        return self.w.users[f"{role}_{'a' if subject.site_id == self.w.site_a.pk else 'b'}"]

    def subjects(self, *, infused=None):
        qs = Subject.objects.filter(trial=self.w.trial, voided=False).select_related("site", "trial")
        if infused is not None:
            qs = qs.filter(day0__isnull=not infused)
        return list(qs.order_by("pk"))

    def pick(self, rows):
        if not rows:
            raise Skip
        return self.rng.choice(rows)

    def records(self, model, **filters):
        return list(model.objects.filter(subject__trial=self.w.trial, voided=False, **filters).order_by("pk"))

    def moment(self, subject, days_after_day0, hour):
        day = subject.day0 + timedelta(days=days_after_day0)
        return datetime.combine(day, time(hour, self.rng.choice([0, 15, 30])), tzinfo=ZoneInfo(subject.site.timezone))

    def day_offset(self, subject):
        today = timezone.localtime(timezone.now(), ZoneInfo(subject.site.timezone)).date()
        return self.rng.randint(0, min(14, (today - subject.day0).days - 1))

    # --- trials: subjects, infusions, deaths ----------------------------------------------------

    def subject_create(self):
        site = self.rng.choice([self.w.site_a, self.w.site_b])
        user = self.w.users[f"coordinator_{'a' if site.pk == self.w.site_a.pk else 'b'}"]
        trial_services.subject_create(user=user, **subject_fields(site, self.w.cohort))
        self.writes[Subject] += 1

    def subject_update(self):
        s = self.pick(self.subjects())
        stale = self.rng.random() < 0.15 and s.version > 1
        changes = self.rng.choice([
            {"baseline_weight_kg": Decimal(f"{self.rng.randint(50, 95)}.{self.rng.choice([0, 25, 50])}")},
            {"date_of_birth": date(self.rng.randint(1950, 1990), self.rng.randint(1, 12), 1)},  # age: re-grades
            {"developmental_delay": not s.developmental_delay},
        ])
        changed = any(getattr(s, k) != v for k, v in changes.items())
        trial_services.subject_update(subject=s, user=self.user("coordinator", s), version=s.version - stale,
                                      reason="source updated", changes=changes)
        self.writes[Subject] += changed

    def subject_void(self):
        extra = [s for s in self.subjects() if s.pk not in (self.w.subject_a.pk, self.w.subject_b.pk)]
        s = self.pick(extra)
        trial_services.subject_void(subject=s, user=self.user("coordinator", s), version=s.version,
                                    reason="enrolled in error")
        self.writes[Subject] += 1

    def infusion_create(self):
        s = self.pick(self.subjects())
        active = list(Infusion.objects.filter(subject=s, voided=False).order_by("infusion_number"))
        if not active:
            fields = infusion_fields(s.site, days_ago=self.rng.randint(16, 25))
        else:
            index_days_ago = (date.today() - active[0].infused_at.date()).days
            fields = infusion_fields(s.site, days_ago=self.rng.randint(2, max(2, index_days_ago - 1)),
                                     infusion_number=active[-1].infusion_number + 1)
        trial_services.infusion_create(user=self.user("coordinator", s), subject=s, **fields)
        self.writes[Infusion] += 1

    def infusion_update(self):
        i = self.pick(self.records(Infusion))
        trial_services.infusion_update(infusion=i, user=self.user("coordinator", i.subject), version=i.version,
                                       reason="transcription error", changes={"lot_number": f"LOT-{self.rng.randint(2, 99)}"})
        self.writes[Infusion] += 1

    def death_record(self):
        # Not for a subject whose death record was voided: re-entering it is a known defect
        # (test_a_voided_death_can_be_entered_again below).
        voided = set(Death.objects.filter(voided=True).values_list("subject_id", flat=True))
        s = self.pick([s for s in self.subjects(infused=True) if s.pk not in voided])
        existing = Death.objects.filter(subject=s, voided=False).first()
        fields = {"death_date": s.day0 + timedelta(days=self.day_offset(s) + 1),
                  "death_primary_cause": self.rng.choice(["crs", "disease_progression", "infection"])}
        if existing is None:
            trial_services.death_record(subject=s, user=self.user("coordinator", s), **fields)
        else:
            fields["death_primary_cause"] = "icans" if existing.death_primary_cause != "icans" else "crs"
            trial_services.death_record(subject=s, user=self.user("coordinator", s), version=existing.version,
                                        reason="source updated", **fields)
        self.writes[Death] += 1

    def death_void(self):
        d = self.pick(self.records(Death))
        trial_services.death_void(death=d, user=self.user("coordinator", d.subject), version=d.version,
                                  reason="wrong subject")
        self.writes[Death] += 1

    # --- toxicity: assessments, rescue logs, adverse events -------------------------------------

    def assessment_create(self):
        s = self.pick(self.subjects(infused=True))
        services.assessment_create(user=self.user("coordinator", s), subject=s,
                                   assessment_date=s.day0 + timedelta(days=self.day_offset(s)),
                                   **self.rng.choice(DAY_TEMPLATES))
        self.writes[DailyAssessment] += 1

    def assessment_update(self):
        a = self.pick(self.records(DailyAssessment))
        t = Decimal(f"{self.rng.choice([36, 37, 38, 39])}.{self.rng.randint(0, 9)}")
        changed = a.temperature_max_c != t
        services.assessment_update(assessment=a, user=self.user("coordinator", a.subject), version=a.version,
                                   reason="transcription error", changes={"temperature_max_c": t})
        self.writes[DailyAssessment] += changed

    def assessment_void(self):
        a = self.pick(self.records(DailyAssessment))
        services.assessment_void(assessment=a, user=self.user("coordinator", a.subject), version=a.version,
                                 reason="entered for the wrong day")
        self.writes[DailyAssessment] += 1

    def log_body(self, model, s):
        n, r = self.day_offset(s) or 1, self.rng
        w = s.baseline_weight_kg
        return {
            TocilizumabDose: lambda: dict(administered_at=self.moment(s, n, r.randint(8, 20)),
                                          dose_mg=r.choice([Decimal("560"), Decimal("700")]), weight_kg=Decimal("70"),
                                          indication="crs"),
            CorticosteroidDose: lambda: dict(drug="dexamethasone", administered_at=self.moment(s, n, r.randint(8, 20)),
                                             dose_mg=Decimal("10"), route="iv", indication="icans"),
            AnticytokineDose: lambda: dict(drug="anakinra", administered_at=self.moment(s, n, r.randint(8, 20)),
                                           dose_mg=Decimal("100"), weight_kg=w, route="iv", indication="icans"),
            PlasmaExchange: lambda: dict(started_at=self.moment(s, n, 8), ended_at=self.moment(s, n, 11),
                                         plasma_volume_exchanged_ml=3000, replacement_fluid="albumin_5",
                                         hematocrit_fraction=Decimal("0.30"), weight_kg=w),
            HemofiltrationSession: lambda: dict(modality="cvvhdf", started_at=self.moment(s, n, 8),
                                                ended_at=self.moment(s, n + 1, 8), effluent_rate_ml_h=1750, weight_kg=w),
            IcuStay: lambda: dict(admitted_at=self.moment(s, n, 12), discharged_at=self.moment(s, n + 1, 12),
                                  reason="crs"),
            AdverseEvent: lambda: dict(ctcae_term="Febrile neutropenia", ctcae_version="v5.0", grade=r.choice([2, 3]),
                                       onset_date=s.day0 + timedelta(days=n), resolution_date=None, serious=False,
                                       seriousness=[], relatedness="probable", outcome="not_recovered"),
        }[model]()

    LOG_CHANGES = {
        TocilizumabDose: lambda r: {"dose_mg": r.choice([Decimal("560"), Decimal("600"), Decimal("700")])},
        CorticosteroidDose: lambda r: {"dose_mg": r.choice([Decimal("8"), Decimal("10"), Decimal("20")])},
        AnticytokineDose: lambda r: {"dose_mg": r.choice([Decimal("100"), Decimal("200")])},
        PlasmaExchange: lambda r: {"plasma_volume_exchanged_ml": r.choice([2500, 3000, 3500])},
        HemofiltrationSession: lambda r: {"effluent_rate_ml_h": r.choice([1500, 1750, 2000])},
        IcuStay: lambda r: {"reason": r.choice(["crs", "icans", "other"])},
        AdverseEvent: lambda r: {"grade": r.choice([1, 2, 3])},
    }

    def log_create(self, model):
        s = self.pick(self.subjects(infused=True))
        services.log_create(model, user=self.user("coordinator", s), subject=s, **self.log_body(model, s))
        self.writes[model] += 1

    def log_update(self, model):
        rec = self.pick(self.records(model))
        changes = self.LOG_CHANGES[model](self.rng)
        changed = any(getattr(rec, k) != v for k, v in changes.items())
        services.log_update(rec, user=self.user("coordinator", rec.subject), version=rec.version,
                            reason="source updated", changes=changes)
        self.writes[model] += changed

    def log_void(self, model):
        rec = self.pick(self.records(model))
        services.log_void(rec, user=self.user("coordinator", rec.subject), version=rec.version, reason="duplicate")
        self.writes[model] += 1

    # --- the investigator's episode reviews --------------------------------------------------------

    def review_create(self):
        candidates = []
        for s in self.subjects(infused=True):
            course = load_course(s.pk)
            reviewed = {(r.kind, r.onset_date) for r in course.reviews}
            candidates += [(s, e) for e in derive_course(course, now=timezone.now()).episodes
                           if (e.kind, e.onset_date) not in reviewed]
        s, e = self.pick(candidates)
        reviews.episode_review_create(user=self.user("investigator", s), subject=s, kind=e.kind,
                                      onset_date=e.onset_date, serious=False, seriousness=[],
                                      relatedness="possible", outcome="not_recovered")
        self.writes[EpisodeReview] += 1

    def review_update(self):
        r = self.pick(self.records(EpisodeReview))
        updated = reviews.episode_review_update(
            review=r, user=self.user("investigator", r.subject), version=r.version, reason="review corrected",
            changes={"relatedness": self.rng.choice(["probable", "definite", "unlikely"])})
        self.writes[EpisodeReview] += updated.version - r.version

    def review_void(self):
        r = self.pick(self.records(EpisodeReview))
        reviews.episode_review_void(review=r, user=self.user("investigator", r.subject), version=r.version,
                                    reason="reviewed the wrong episode")
        self.writes[EpisodeReview] += 1

    def api(self, method, url, body, user):
        """The REST API path (the same services behind it); a 4xx is a refusal."""
        response = getattr(self.w.client(user), method)(url, body, format="json")
        if response.status_code in (400, 409, 423):
            raise ValidationError(f"{response.status_code}: {response.content[:200]!r}")
        assert response.status_code in (200, 201), response.content
        return response.json()

    def api_assessment_update(self):
        a = self.pick(self.records(DailyAssessment))
        t = f"{self.rng.choice([36, 37, 38, 39])}.{self.rng.randint(0, 9)}"
        changed = a.temperature_max_c != Decimal(t)
        user = "coordinator_a" if a.subject.site_id == self.w.site_a.pk else "coordinator_b"
        self.api("patch", f"/api/v1/assessments/{a.pk}/",
                 {"version": a.version, "reason": "source updated", "temperature_max_c": t}, user)
        self.writes[DailyAssessment] += changed

    def api_tocilizumab_create(self):
        s = self.pick(self.subjects(infused=True))
        body = self.log_body(TocilizumabDose, s)
        body = {"subject": s.pk, **{k: str(v) if not isinstance(v, datetime) else v.isoformat() for k, v in body.items()}}
        user = "coordinator_a" if s.site_id == self.w.site_a.pk else "coordinator_b"
        self.api("post", "/api/v1/tocilizumab-doses/", body, user)
        self.writes[TocilizumabDose] += 1

    # --- workflow: verification, locks, signatures, queries -------------------------------------

    def any_record(self):
        model = self.rng.choice([Subject, Infusion, DailyAssessment, *LOGS])
        rows = self.subjects() if model is Subject else self.records(model)
        return self.pick(rows)

    def verify(self):
        record = self.any_record()
        subject = record if isinstance(record, Subject) else record.subject
        wf.form_verify(user=self.user("monitor", subject), record=record)
        self.writes[SourceVerification] += 1

    def lock(self):
        scope = self.rng.choice(["form", "casebook", "casebook", "trial"])
        record = self.any_record() if scope == "form" else None
        subject = self.pick(self.subjects()) if scope == "casebook" else None
        wf.lock_create(user=self.w.users["data_manager"], scope=scope, trial=self.w.trial, subject=subject,
                       record=record, reason="interim review")
        self.writes[Lock] += 1

    def unlock(self):
        lock = self.pick(list(Lock.objects.filter(trial=self.w.trial, unlocked_at__isnull=True)))
        wf.lock_release(user=self.w.users["data_manager"], lock=lock, reason="review done")
        self.writes[Lock] += 1

    def sign(self):
        s = self.pick(self.subjects())
        wf.casebook_sign(user=self.user("investigator", s), subject=s, password=PASSWORD)
        self.writes[CasebookSignature] += 1

    def query_raise(self):
        record = self.any_record()
        subject = record if isinstance(record, Subject) else record.subject
        field = self.rng.choice([f.name for f in type(record)._meta.concrete_fields if f.editable and f.name != "id"])
        queries.query_raise(user=self.user("monitor", subject), record_type=record._meta.label_lower,
                            record_id=record.pk, field=field, text="Please check against the source.")
        self.writes[Query] += 1

    def query_transition(self):
        action = self.rng.choice(["answer", "close", "reopen"])
        q = self.pick(list(Query.objects.filter(trial=self.w.trial).order_by("pk")))
        who = self.user("coordinator" if action == "answer" else "monitor", q.subject)
        queries.query_transition(user=who, query=q, action=action, text=f"{action} in the workload")
        self.writes[Query] += 1

    def membership_grant(self):
        user = UserFactory(username=f"history-user-{len(self.new_users)}")
        self.new_users.append(user)
        trial_services.membership_grant(user=user, role="monitor", trial=self.w.trial, site=self.w.site_a,
                                        granted_by=self.w.users["data_manager"])
        self.writes[Membership] += 1

    def membership_revoke(self):
        user = self.pick([u for u in self.new_users if u.memberships.exists()])
        self.writes[Membership] += trial_services.membership_revoke(
            user=user, role="monitor", trial=self.w.trial, site=self.w.site_a, revoked_by=self.w.users["data_manager"])

    # --- bulk paths and the admin ----------------------------------------------------------------

    def import_csv(self):
        s = self.pick(self.subjects(infused=True))
        header = ["subject_id", "assessment_date", "temperature_max_c", "ice_score", "consciousness"]
        days = sorted({self.day_offset(s) for _ in range(self.rng.randint(1, 3))})
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        for n in days:
            writer.writerow([s.subject_id, (s.day0 + timedelta(days=n)).isoformat(),
                             self.rng.choice(["36.9", "38.4"]), "10", "alert"])
        report = imports.import_csv(user=self.user("coordinator", s), trial=self.w.trial, dataset="assessments",
                                    stream_or_text=out.getvalue())
        if not report.committed:  # a duplicate day: the whole file is refused, nothing stored
            raise ValidationError(report.errors)
        self.writes[DailyAssessment] += report.created

    def generate(self):
        if self.generated:
            raise Skip
        self.generated = True
        existed = {m: m.objects.count() for m in (Trial, Site, Cohort)}
        out = generate("HIST-SYN", subjects=3, days=5, seed=SEED)
        for m in (Trial, Site, Cohort):
            self.writes[m] += m.objects.count() - existed[m]
        self.writes[Subject] += out.subjects
        self.writes[Infusion] += out.subjects
        self.writes[DailyAssessment] += out.assessments
        for model in LOGS:
            self.writes[model] += out.counts.get(model._meta.model_name, 0)

    def admin_trial_edit(self):
        url = f"/admin/trials/trial/{self.w.trial.pk}/change/"
        form = self.admin.get(url).context["adminform"].form
        data = {k: v for k, v in form.initial.items() if v is not None}
        data.update({"title": f"Renamed {self.rng.randint(1, 10**6)}", "sites-TOTAL_FORMS": 0, "sites-INITIAL_FORMS": 0,
                     "cohorts-TOTAL_FORMS": 1, "cohorts-INITIAL_FORMS": 0,
                     "cohorts-0-name": f"DL{self.rng.randint(10, 10**6)}", "cohorts-0-dose_level_cells_per_kg": "2000000"})
        response = self.admin.post(url, data)
        assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
        self.writes[Trial] += 1
        self.writes[Cohort] += 1

    def admin_membership_delete(self):
        rows = list(Membership.objects.filter(user__in=self.new_users).order_by("pk"))
        m = self.pick(rows)
        response = self.admin.post("/admin/trials/membership/", {"action": "delete_selected",
                                                                 "_selected_action": [m.pk], "post": "yes"})
        assert response.status_code == 302 and not Membership.objects.filter(pk=m.pk).exists()
        self.writes[Membership] += 1

    # --- the run --------------------------------------------------------------------------------

    def operations(self):
        ops = {
            "subject_create": (self.subject_create, 3), "subject_update": (self.subject_update, 6),
            "subject_void": (self.subject_void, 1),
            "infusion_create": (self.infusion_create, 3), "infusion_update": (self.infusion_update, 3),
            "death_record": (self.death_record, 1), "death_void": (self.death_void, 2),
            "assessment_create": (self.assessment_create, 14), "assessment_update": (self.assessment_update, 6),
            "assessment_void": (self.assessment_void, 2),
            "verify": (self.verify, 3), "lock": (self.lock, 2), "unlock": (self.unlock, 6), "sign": (self.sign, 3),
            "query_raise": (self.query_raise, 3), "query_transition": (self.query_transition, 5),
            "membership_grant": (self.membership_grant, 2), "membership_revoke": (self.membership_revoke, 1),
            "import_csv": (self.import_csv, 3), "generate": (self.generate, 1),
            "api_assessment_update": (self.api_assessment_update, 2),
            "api_tocilizumab_create": (self.api_tocilizumab_create, 2),
            "admin_trial_edit": (self.admin_trial_edit, 1), "admin_membership_delete": (self.admin_membership_delete, 1),
            "episodereview_create": (self.review_create, 2), "episodereview_update": (self.review_update, 1),
            "episodereview_void": (self.review_void, 1),
        }
        for model in LOGS:
            name = model._meta.model_name
            ops[f"{name}_create"] = (lambda m=model: self.log_create(m), 3)
            ops[f"{name}_update"] = (lambda m=model: self.log_update(m), 1)
            ops[f"{name}_void"] = (lambda m=model: self.log_void(m), 1)
        return ops

    def _count(self, name, operation):
        """Run one operation; a refused one must leave no history row at all."""
        before = history_total()
        try:
            operation()
        except REFUSALS:
            self.refused[name] += 1
            assert history_total() == before, f"the refused {name} left history rows"
        else:
            self.done[name] += 1
            assert history_total() > before or name.endswith(("_update", "revoke")), f"{name} wrote no history"

    def run(self, n: int):
        ops = self.operations()
        names = sorted(ops)
        weights = [ops[name][1] for name in names]
        performed = 0
        while performed < n:
            name = self.rng.choices(names, weights)[0]
            try:
                self._count(name, ops[name][0])
            except Skip:
                continue  # nothing to act on yet: not an operation
            performed += 1
        # a final pass through any path the dice skipped, so each one ran at least once
        while Lock.objects.filter(trial=self.w.trial, unlocked_at__isnull=True).exists():
            self.unlock()
            self.done["unlock"] += 1
        for name in names:
            if name == "lock":
                continue  # last: a lock now would refuse the rest

            for _ in range(20):
                if self.done[name]:
                    break
                try:
                    ops[name][0]()
                except Skip:  # e.g. every adverse event voided already: enter one first
                    prerequisite = PREREQUISITES.get(name, name.rsplit("_", 1)[0] + "_create")
                    if prerequisite in ops:
                        self._count(prerequisite, ops[prerequisite][0])
                    continue
                except REFUSALS:
                    continue
                self.done[name] += 1
        if not self.done["lock"]:
            self.lock()
            self.done["lock"] += 1
        return set(names)


class Skip(Exception):
    """Nothing to operate on yet (e.g. no lock to release)."""


# What an operation needs first when there is nothing to act on (default: "<record>_create").
PREREQUISITES = {"admin_membership_delete": "membership_grant", "membership_revoke": "membership_grant"}


def assert_history_complete(writes_before: dict, writes: Counter):
    for model in audited_models():
        rows = list(model._base_manager.order_by("pk"))
        history = model.history.model
        newest = {}
        for h in history.objects.order_by("history_id"):
            newest[h.id] = h
        fields = [f.attname for f in tracked_fields(model)]  # derived subject_trial is not in the history
        for row in rows:
            h = newest.get(row.pk)
            assert h is not None, f"{model.__name__} {row.pk} has no history"
            assert h.history_type != "-"
            stored = {f: getattr(row, f) for f in fields}
            recorded = {f: getattr(h, f) for f in fields}
            assert recorded == stored, f"{model.__name__} {row.pk}: the newest history row is not the row"
        if issubclass(model, ClinicalModel):
            counts = Counter(history.objects.values_list("id", "version"))
            assert max(counts.values(), default=1) == 1, f"{model.__name__}: two history rows for one version"
            for row in rows:
                versions = sorted(v for (pk, v) in counts if pk == row.pk)
                assert versions == list(range(1, row.version + 1)), f"{model.__name__} {row.pk}: {versions}"
        elif model is Lock:
            for row in rows:
                assert row.history.count() == 1 + (row.unlocked_at is not None)
        elif model is CasebookSignature:
            for row in rows:
                assert row.history.count() == 1 + (row.voided_at is not None)
        elif model is SourceVerification:
            for row in rows:
                assert row.history.count() == 1
        elif model is Query:
            for row in rows:
                assert row.history.count() == row.messages.exclude(action="message").count()
        assert user_rows(model) - writes_before[model] == writes[model], (
            f"{model.__name__}: {user_rows(model) - writes_before[model]} history rows by people, "
            f"{writes[model]} writes made")


def test_every_write_path_leaves_exactly_one_history_row_per_write(world):
    writes_before = {m: user_rows(m) for m in audited_models()}
    workload = Workload(world, SEED)
    paths = workload.run(OPERATIONS)
    assert {p for p in paths if not workload.done[p]} == set(), workload.done
    assert sum(workload.refused.values()) > 0  # refusals were exercised too
    assert_history_complete(writes_before, workload.writes)
    # the workload wrote to every audited model (a model it never touched proves nothing)
    assert {m for m in audited_models() if workload.writes[m] == 0} == set()
    # and the system's own re-derivations were among the writes
    assert DailyAssessment.history.filter(history_change_reason__startswith=SYSTEM_REASON_PREFIX).exists()
    assert Subject.history.filter(history_change_reason__startswith=SYSTEM_REASON_PREFIX).exists()


def test_a_voided_death_can_be_entered_again(world):
    """Defect found by the workload (fixed): Death.subject was a OneToOneField, whose implicit
    UNIQUE(subject_id) also counted voided rows, so a death voided in error could not be re-entered."""
    user, subject = world.users["coordinator_a"], world.subject_a
    fields = {"death_date": subject.day0 + timedelta(days=3), "death_primary_cause": "crs"}
    death = trial_services.death_record(subject=subject, user=user, **fields)
    trial_services.death_void(death=death, user=user, version=death.version, reason="wrong subject")
    with transaction.atomic():
        again = trial_services.death_record(subject=Subject.objects.get(pk=subject.pk), user=user, **fields)
    assert again.history.count() == again.version == 1


# --- concurrent writers ---------------------------------------------------------------------------


def _race(jobs):
    """Run the callables at the same moment in threads; each returns "ok" or the refusal's name."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def run(i, job):
        try:
            barrier.wait()
            job()
            results[i] = "ok"
        except REFUSALS as exc:
            results[i] = type(exc).__name__
        except Exception as exc:  # noqa: BLE001 -- reported by the assertion below
            results[i] = repr(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_writers_on_one_version_never_overwrite_silently(world_tx):
    """Rounds of threads write the same record from the same version (assessment corrections,
    drug-log corrections, subject corrections) or the same new day: exactly one wins each round;
    the stored row, its history and its version say so."""
    w, rng = world_tx, random.Random(SEED)
    coordinator = w.users["coordinator_a"]
    w.subject_a.refresh_from_db()
    day = w.subject_a.day0
    a = services.assessment_create(user=coordinator, subject=w.subject_a, assessment_date=day + timedelta(days=1), **NORMAL)
    toci = services.log_create(TocilizumabDose, user=coordinator, subject=w.subject_a, weight_kg=Decimal("70"),
                               administered_at=datetime.combine(day + timedelta(days=2), time(9), tzinfo=ZoneInfo("UTC")),
                               dose_mg=Decimal("560"), indication="crs")
    writers = 3
    for round_ in range(8):
        kind = rng.choice(["assessment", "toci", "subject", "new day"])
        if kind == "assessment":
            row = DailyAssessment.objects.get(pk=a.pk)
            values = [Decimal(f"{37 + i}.{round_}") for i in range(writers)]
            jobs = [lambda v=v, i=i: services.assessment_update(
                assessment=row, user=coordinator, version=row.version, reason=f"round {round_} writer {i}",
                changes={"temperature_max_c": v}) for i, v in enumerate(values)]
            field = "temperature_max_c"
        elif kind == "toci":
            row = TocilizumabDose.objects.get(pk=toci.pk)
            values = [Decimal(500 + 10 * i + round_) for i in range(writers)]
            jobs = [lambda v=v, i=i: services.log_update(
                row, user=coordinator, version=row.version, reason=f"round {round_} writer {i}",
                changes={"dose_mg": v}) for i, v in enumerate(values)]
            field = "dose_mg"
        elif kind == "subject":
            row = Subject.objects.get(pk=w.subject_a.pk)
            values = [Decimal(f"{60 + 5 * i}.{round_}0") for i in range(writers)]
            jobs = [lambda v=v, i=i: trial_services.subject_update(
                subject=row, user=w.users[("coordinator_a", "investigator_a")[i % 2]], version=row.version,
                reason=f"round {round_} writer {i}", changes={"baseline_weight_kg": v}) for i, v in enumerate(values)]
            field = "baseline_weight_kg"
        else:
            new_day = day + timedelta(days=3 + round_)
            jobs = [lambda t=t: services.assessment_create(
                user=coordinator, subject=w.subject_a, assessment_date=new_day,
                **{**NORMAL, "temperature_max_c": t}) for t in (Decimal("36.5"), Decimal("38.5"), Decimal("39.5"))]
            results = _race(jobs)
            assert results.count("ok") == 1 and set(results) <= {"ok", "ValidationError"}, results
            rows = DailyAssessment.objects.filter(subject=w.subject_a, assessment_date=new_day)
            assert rows.count() == 1 and rows.get().history.count() == rows.get().version
            continue
        results = _race(jobs)
        assert results.count("ok") == 1 and set(results) <= {"ok", "StaleVersionError"}, results
        winner = results.index("ok")
        stored = type(row).objects.get(pk=row.pk)
        assert getattr(stored, field) == values[winner]
        mine = type(row).history.filter(id=row.pk, version=row.version + 1)
        assert mine.count() == 1 and mine.get().history_change_reason == f"round {round_} writer {winner}"
        for loser in set(range(writers)) - {winner}:
            assert not type(row).history.filter(history_change_reason=f"round {round_} writer {loser}").exists()
    for model in (Subject, DailyAssessment, TocilizumabDose):
        for row in model.objects.filter(pk__in=[w.subject_a.pk] if model is Subject else model.objects.values("pk")):
            versions = sorted(model.history.filter(id=row.pk).values_list("version", flat=True))
            assert versions == list(range(1, row.version + 1))
