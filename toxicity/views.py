"""Browser pages of the CRFs: the casebook timeline, the daily assessment form with live grades,
the rescue-therapy logs, and the query inbox / worklist. Thin: selectors read, services write."""
from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from toxicity import queries, services
from toxicity.choices import Seriousness
from toxicity.grading.crs import FEVER_C
from toxicity.grading.inputs import FeverMask
from toxicity.preview import crs_missing, icans_missing, masked_text
from toxicity.forms import (
    CAPD_FIELDS,
    CRS_FIELDS,
    ICANS_FIELDS,
    ICE_FIELDS,
    LOG_KINDS,
    REPORTED_FIELDS,
    AssessmentForm,
    log_form_class,
)
from toxicity.models import OBSERVATIONS, DailyAssessment, Episode, IcuStay, Query
from toxicity.templatetags.crf import DEVICE_ABBREVIATIONS
from trials import workflow_services as wf
from trials.audit import RecordLockedError, StaleVersionError
from trials.models import Subject
from trials.roles import CRF_ROLES, DATA_ENTRY_ROLES, Role
from trials.selectors import RoleIndex, scoped, subject_list
from trials.services import site_local_date
from trials.views import in_site_timezone
from trials.workflow import CasebookSignature, Lock, SourceVerification

FIRST_DAY = -7


def _subject(request, pk) -> Subject:
    return get_object_or_404(subject_list(user=request.user, roles=CRF_ROLES), pk=pk)


def _roles(request, subject) -> set[str]:
    return RoleIndex.for_user(request.user).roles(subject.trial_id, subject.site_id)


def _apply_errors(form, exc: Exception) -> None:
    """Service errors next to their fields (or on top when the form has no such field)."""
    if isinstance(exc, StaleVersionError):
        form.add_error(None, f"Someone else saved this form first (now version {exc.current}). Your input is kept "
                             "below: check the saved values (open the history) and save again to apply yours.")
        form.data = form.data.copy()
        form.data["version"] = exc.current
        return
    if isinstance(exc, RecordLockedError):
        form.add_error(None, str(exc))
        return
    for field, msgs in exc.message_dict.items():
        target = field if field in form.fields else None
        for message in msgs:
            form.add_error(target, message if target else f"{field.replace('_', ' ')}: {message}")


# --- casebook -------------------------------------------------------------------------------

ROW_OF_FIELD = {
    "crs_grade_derived": "crs", "crs_grade_reported": "crs", "icans_grade_derived": "icans",
    "icans_grade_reported": "icans", "temperature_max_c": "temperature", "vasopressors": "vasopressors",
    "oxygen_device": "oxygen", "oxygen_flow_l_min": "oxygen", "fio2_percent": "oxygen", "ice_score": "tool",
    "capd_score": "tool",
}


def casebook_days(subject, assessments, logs, open_queries, today):
    """One column per study day from -7 to the last assessment (or today): the timeline grid."""
    by_day = {a.assessment_date: a for a in assessments}
    last = max([*by_day, min(today, subject.day0 + timedelta(days=subject.trial.daily_assessment_until_day))])
    first = subject.day0 + timedelta(days=FIRST_DAY)
    badges: dict[tuple[date, str], list[Query]] = {}
    ids = {a.pk: a.assessment_date for a in assessments}
    for q in open_queries:
        if q.record_type == "toxicity.dailyassessment" and q.record_id in ids:
            badges.setdefault((ids[q.record_id], ROW_OF_FIELD.get(q.field, "day")), []).append(q)
        elif q.field.startswith("assessment_date="):
            badges.setdefault((date.fromisoformat(q.field.split("=")[1]), "day"), []).append(q)
    markers: dict[date, list[str]] = {}
    local = lambda moment: site_local_date(moment, subject.site)  # noqa: E731
    for label, rows, attr in logs:
        for row in rows:
            start = local(getattr(row, attr))
            if isinstance(row, IcuStay):
                end = local(row.discharged_at) if row.discharged_at else today
                for n in range((end - start).days + 1):
                    markers.setdefault(start + timedelta(days=n), []).append(label)
            else:
                markers.setdefault(start, []).append(label)
    days = []
    for n in range((last - first).days + 1):
        day = first + timedelta(days=n)
        a = by_day.get(day)
        days.append({
            "date": day, "study_day": (day - subject.day0).days, "a": a, "future": day > today,
            "markers": sorted(set(markers.get(day, []))),
            "badges": {row: qs for (d, row), qs in badges.items() if d == day},
        })
    return days


def _grade_cell(a: DailyAssessment, kind: str, badges: list) -> dict:
    """A derived CRS/ICANS cell. An NE day shows its proven floor ("≥3", R-CRS-15) and says what
    is missing. A CRS day without fever inside a masking window is marked: its grade needed no
    fever, and its lack of fever proves nothing (R-CRS-2)."""
    grade = getattr(a, f"{kind}_grade_derived")
    cell = {"cls": f"g{grade}", "text": grade, "badges": badges}
    if grade is None:
        minimum = getattr(a, f"minimum_{kind}_grade")
        missing = (crs_missing if kind == "crs" else icans_missing)({n: getattr(a, n) for n in OBSERVATIONS})
        cell.update(cls="gNE", text="NE" if minimum is None else f"≥{minimum}",
                    title=f"Not evaluable: {missing}" + ("" if minimum is None else
                                                         f"; the recorded values prove at least grade {minimum}"))
    if kind == "crs" and a.fever_masked_by and (a.temperature_max_c is None or a.temperature_max_c < FEVER_C):
        cell["cls"] += " masked"
        cell["mask"] = f"fever masked by {_mask_of(a).words()} (R-CRS-2)"
    return cell


def timeline_rows(subject, days) -> tuple[list, list]:
    """The grid as plain cells (class, text, badges) so the template only loops (rendering 60+
    days x 8 rows through template tags costs more than the rest of the page)."""
    day_url = reverse("assessment-day", args=[subject.pk, "0000-00-00"]).replace("0000-00-00", "{}")
    query_url = reverse("query-page", args=[0]).replace("/0/", "/{}/")

    def badges(d, row):
        return [(query_url.format(q.pk), q.text) for q in d["badges"].get(row, [])]

    header = [{"text": d["study_day"], "url": None if d["future"] else day_url.format(d["date"].isoformat()),
               "title": d["date"].isoformat(), "badges": badges(d, "day")} for d in days]
    rows = {name: [] for name in ("crs", "icans", "reported", "temperature", "vasopressors", "oxygen", "tool", "rescue")}
    for d in days:
        a = d["a"]
        if a is None:
            for name in rows:
                rows[name].append({"cls": "", "text": "", "badges": badges(d, name)})
            rows["rescue"][-1]["markers"] = d["markers"]
            continue
        rows["crs"].append(_grade_cell(a, "crs", badges(d, "crs")))
        rows["icans"].append(_grade_cell(a, "icans", badges(d, "icans")))
        differs = (a.crs_grade_reported is not None and a.crs_grade_reported != a.crs_grade_derived) or (
            a.icans_grade_reported is not None and a.icans_grade_reported != a.icans_grade_derived)
        dash = lambda v: "–" if v is None else v  # noqa: E731
        rows["reported"].append({"cls": "", "strong": differs, "badges": [],
                                 "text": f"{dash(a.crs_grade_reported)}/{dash(a.icans_grade_reported)}" if differs else ""})
        rows["temperature"].append({"cls": "", "text": "—" if a.temperature_max_c is None else a.temperature_max_c,
                                    "badges": badges(d, "temperature")})
        rows["vasopressors"].append({"cls": "", "text": len(a.vasopressors) or "", "badges": badges(d, "vasopressors")})
        oxygen = "" if a.oxygen_device == "none" else DEVICE_ABBREVIATIONS.get(a.oxygen_device, a.oxygen_device)
        if oxygen and a.oxygen_flow_l_min is not None:
            oxygen += f" {a.oxygen_flow_l_min}"
        rows["oxygen"].append({"cls": "", "text": oxygen, "badges": badges(d, "oxygen")})
        tool = (a.ice_score if a.ice_score is not None else f"C{a.capd_score}" if a.capd_score is not None
                else "NA" if a.ice_not_assessable or a.capd_unable else "")
        rows["tool"].append({"cls": "", "text": tool, "badges": badges(d, "tool")})
        rows["rescue"].append({"cls": "", "text": "", "badges": [], "markers": d["markers"]})
    labels = {"crs": "CRS (derived)", "icans": "ICANS (derived)", "reported": "Reported CRS / ICANS",
              "temperature": "T max °C", "vasopressors": "Vasopressors", "oxygen": "Oxygen", "tool": "ICE / CAPD",
              "rescue": "Rescue / ICU"}
    return header, [(labels[name], cells) for name, cells in rows.items()]


def timeline_html(header, rows) -> str:
    """The grid's markup, escaped here: 60+ days x 9 rows through the template engine cost ~75 ms."""
    def badge_links(badges):
        return "".join(f' <a class="badge" href="{escape(u)}" title="{escape(t)}">?</a>' for u, t in badges)

    out = ['<table class="grid"><thead><tr><th scope="row">Study day</th>']
    for h in header:
        if h["url"]:
            cell = (f'<a href="{escape(h["url"])}" title="{h["title"]}" aria-label="Day {h["text"]}, {h["title"]}">'
                    f'{h["text"]}</a>')
        else:
            cell = f'<span class="muted">{h["text"]}</span>'
        out.append(f'<th scope="col">{cell}{badge_links(h["badges"])}</th>')
    out.append("</tr></thead><tbody>")
    for label, cells in rows:
        out.append(f'<tr><th scope="row">{escape(label)}</th>')
        for c in cells:
            cls = f' class="{c["cls"]}"' if c["cls"] else ""
            title = f' title="{escape(c["title"])}"' if c.get("title") else ""
            text = escape(c["text"])
            text = f"<strong>{text}</strong>" if c.get("strong") else text
            if c.get("mask"):
                text += f'<sup class="mask-mark"><abbr title="{escape(c["mask"])}">M</abbr></sup>'
            markers = "".join(f'<span class="marker">{escape(m)}</span>' for m in c.get("markers", ()))
            out.append(f"<td{cls}{title}>{text}{markers}{badge_links(c['badges'])}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return mark_safe("".join(out))  # every value above is escaped


@login_required
@in_site_timezone
def casebook(request, pk):
    subject = _subject(request, pk)
    roles = _roles(request, subject)
    assessments = list(DailyAssessment.objects.filter(subject=subject, voided=False))
    logs = [
        ("toci", subject.tocilizumab_doses.filter(voided=False), "administered_at"),
        ("steroid", subject.corticosteroid_doses.filter(voided=False), "administered_at"),
        ("anti-cytokine", subject.anticytokine_doses.filter(voided=False), "administered_at"),
        ("TPE", subject.plasma_exchanges.filter(voided=False), "started_at"),
        ("CRRT", subject.hemofiltration_sessions.filter(voided=False), "started_at"),
        ("ICU", subject.icu_stays.filter(voided=False), "admitted_at"),
    ]
    open_queries = list(scoped(request.user, Query.objects.filter(subject=subject, status__in=["open", "answered"]), CRF_ROLES))
    today = site_local_date(timezone.now(), subject.site)
    days = casebook_days(subject, assessments, logs, open_queries, today) if subject.day0 else []
    grid = timeline_html(*timeline_rows(subject, days)) if days else ""
    return render(request, "toxicity/casebook.html", {
        "subject": subject, "days": days, "grid": grid, "open_queries": open_queries, "today": today,
        "show_dob": bool(roles & {Role.COORDINATOR, Role.INVESTIGATOR, Role.MONITOR}),
        "can_enter": bool(roles & DATA_ENTRY_ROLES), "can_sign": Role.INVESTIGATOR in roles,
        "can_lock": Role.DATA_MANAGER in roles, "can_query": bool(roles & queries.REVIEWERS),
        "signature": CasebookSignature.objects.filter(subject=subject).first(),
        "lock": Lock.objects.filter(subject=subject, scope="casebook", unlocked_at__isnull=True).first(),
        "trial_lock": Lock.objects.filter(trial=subject.trial, scope="trial", unlocked_at__isnull=True).first(),
        "log_kinds": [(slug, title) for slug, (_, _, title) in LOG_KINDS.items()],
        "death": subject.deaths.filter(voided=False).first(),
        "infusions": subject.infusions.filter(voided=False).order_by("infusion_number"),
        "episodes": casebook_episodes(subject), "can_review": Role.INVESTIGATOR in roles,
    })


SERIOUSNESS_LABELS = dict(Seriousness.choices)


def casebook_episodes(subject) -> list[Episode]:
    """The subject's current episodes (CRS first), each with its seriousness criteria in words."""
    episodes = list(Episode.objects.filter(subject=subject, voided=False).order_by("kind", "episode_number"))
    for e in episodes:
        e.criteria = [SERIOUSNESS_LABELS.get(code, code) for code in e.seriousness]
    return episodes


# --- the daily assessment form --------------------------------------------------------------


def _initial(a: DailyAssessment | None) -> dict:
    if a is None:
        return {"version": None, "temperature_unit": "C", "seizure": "none", "motor_weakness": "none",
                "cerebral_edema": "none", "oxygen_device": "none"}
    data = {f.name: getattr(a, f.name) for f in DailyAssessment._meta.fields}
    data.update(temperature=a.temperature_max_c, temperature_unit="C", version=a.version)
    return data


@login_required
@in_site_timezone
def assessment_day(request, pk, day):
    subject = _subject(request, pk)
    try:
        day = date.fromisoformat(day)
    except ValueError:
        raise Http404("No such date.")
    roles = _roles(request, subject)
    can_enter = bool(roles & DATA_ENTRY_ROLES)
    existing = DailyAssessment.objects.filter(subject=subject, assessment_date=day, voided=False).first()
    tool = "capd" if (subject.age_years is not None and subject.age_years < 12) or subject.developmental_delay else "ice"
    if request.method == "POST":
        if not can_enter:
            raise Http404("No such form.")
        form = AssessmentForm(request.POST, tool=tool)
        if form.is_valid():
            try:
                if existing is None:
                    saved = services.assessment_create(user=request.user, subject=subject, assessment_date=day,
                                                       **form.observations())
                else:
                    saved = services.assessment_update(
                        assessment=existing, user=request.user, version=form.cleaned_data.get("version"),
                        reason=form.cleaned_data.get("reason"), changes=form.observations())
                grades = f"CRS grade {_g(saved.crs_grade_derived)}, ICANS grade {_g(saved.icans_grade_derived)}"
                messages.success(request, f"Saved {day} (study day {saved.study_day}): {grades}.")
                return redirect("assessment-day", pk=subject.pk, day=day.isoformat())
            except (ValidationError, StaleVersionError, RecordLockedError) as exc:
                _apply_errors(form, exc)
    else:
        form = AssessmentForm(initial=_initial(existing), tool=tool)
    day_queries = []
    if existing is not None:
        day_queries = list(scoped(request.user, Query.objects.filter(
            record_type="toxicity.dailyassessment", record_id=existing.pk), CRF_ROLES).order_by("status", "-opened_at"))
    verification = (SourceVerification.objects.filter(record_type="toxicity.dailyassessment", record_id=existing.pk).first()
                    if existing else None)
    return render(request, "toxicity/assessment_form.html", {
        "subject": subject, "day": day, "study_day": (day - subject.day0).days if subject.day0 else None,
        "form": form, "assessment": existing, "can_enter": can_enter, "tool": tool,
        "preview_url": reverse("assessment-preview", args=[subject.pk, day.isoformat()]) if can_enter else "",
        "queries": day_queries, "masked_text": masked_text(_mask_of(existing)),
        "can_query": bool(roles & queries.REVIEWERS), "can_verify": Role.MONITOR in roles,
        "sdv": wf.sdv_status(existing, verification) if existing else None,
        "previous": day - timedelta(days=1), "next": day + timedelta(days=1),
        "crs_fields": CRS_FIELDS, "icans_fields": [*(ICE_FIELDS if tool == "ice" else CAPD_FIELDS), *ICANS_FIELDS],
        "reported_fields": REPORTED_FIELDS,
    })


def _g(grade):
    return "NE" if grade is None else grade


def _mask_of(a: DailyAssessment | None) -> FeverMask | None:
    if a is None or not a.fever_masked_by:
        return None
    return FeverMask(a.fever_masked_by["drug"], date.fromisoformat(a.fever_masked_by["date"]))


# --- rescue-therapy logs --------------------------------------------------------------------


@login_required
@in_site_timezone
def log_page(request, pk, kind, record_pk=None):
    if kind not in LOG_KINDS:
        raise Http404("No such log.")
    subject = _subject(request, pk)
    model, names, title = LOG_KINDS[kind]
    can_enter = bool(_roles(request, subject) & DATA_ENTRY_ROLES)
    record = get_object_or_404(model, pk=record_pk, subject=subject, voided=False) if record_pk else None
    Form = log_form_class(kind)
    if request.method == "POST":
        if not can_enter:
            raise Http404("No such form.")
        form = Form(request.POST)
        if form.is_valid():
            data = {n: form.cleaned_data[n] for n in names}
            try:
                if record is None:
                    services.log_create(model, user=request.user, subject=subject, **data)
                    messages.success(request, f"Saved: {model._meta.verbose_name}.")
                else:
                    services.log_update(record, user=request.user, version=form.cleaned_data.get("version"),
                                        reason=form.cleaned_data.get("change_reason"), changes=data)
                    messages.success(request, f"Corrected: {model._meta.verbose_name}.")
                return redirect("log", pk=subject.pk, kind=kind)
            except (ValidationError, StaleVersionError, RecordLockedError) as exc:
                if isinstance(exc, ValidationError) and "reason" in exc.message_dict and model is not IcuStay:
                    exc = ValidationError({"change_reason": exc.message_dict.pop("reason"), **exc.message_dict})
                _apply_errors(form, exc)
    else:
        initial = {n: getattr(record, n) for n in names} | {"version": record.version} if record else {}
        if record is None and "weight_kg" in names:
            initial["weight_kg"] = subject.baseline_weight_kg
        form = Form(initial=initial)
    rows = model.objects.filter(subject=subject, voided=False).order_by("-pk")
    return render(request, "toxicity/log.html", {
        "subject": subject, "kind": kind, "title": title, "form": form, "record": record, "rows": rows,
        "columns": names + [f.name for f in model._meta.fields if not f.editable and f.name.endswith(
            ("_ml", "_exchanged", "_ml_kg_h"))],
        "can_enter": can_enter, "record_type": model._meta.label_lower,
    })


@login_required
@require_POST
def verify_form(request, record_type, record_pk):
    model = wf.record_model(record_type)
    record = get_object_or_404(scoped(request.user, model.objects.all(), CRF_ROLES), pk=record_pk)
    try:
        wf.form_verify(user=request.user, record=record)
        messages.success(request, "Marked source-data verified.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect(request.POST.get("next") or reverse("casebook", args=[wf.record_subject(record).pk]))
