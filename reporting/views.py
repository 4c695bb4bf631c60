"""Browser pages of the reports: request a report build and follow its progress, and the AE report
(HTML, CSV, PDF) with site and cohort filters at an optional data cut. Thin: the services in
reporting.report_runs and the pure builders do the work; roles as in reporting.report_runs."""
import csv
import dataclasses

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from trials.models import Trial
from trials.selectors import RoleIndex, cohort_list, site_list, trial_list

from . import report_runs
from .ae_report import ListingRow, build_ae_report, summary_csv_rows
from .models import ReportKind

LISTING_HEADER = [f.name for f in dataclasses.fields(ListingRow)]
DATETIME_INPUT_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


def _trial(request, pk) -> Trial:
    return get_object_or_404(trial_list(user=request.user), pk=pk)


def _cut_field(help_text: str) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=f"Data cut ({timezone.get_current_timezone_name()})", required=False, help_text=help_text,
        input_formats=DATETIME_INPUT_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}, format="%Y-%m-%dT%H:%M:%S"),
    )


class ReportRequestForm(forms.Form):
    kind = forms.ChoiceField(label="Report")
    data_cut = _cut_field("Empty: now, the moment you press Request. Not in the future.")

    def __init__(self, *args, kinds: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [(k, ReportKind(k).label) for k in kinds]


class AeFilterForm(forms.Form):
    site = forms.ChoiceField(label="Site", required=False)
    cohort = forms.ChoiceField(label="Cohort", required=False)
    data_cut = _cut_field("Empty: now.")

    def __init__(self, *args, sites, cohorts, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", "All sites")] + [(str(s.pk), f"{s.site_number} {s.name}") for s in sites]
        self.fields["cohort"].choices = [("", "All cohorts")] + [(str(c.pk), c.name) for c in cohorts]


@login_required
def reports_page(request, pk):
    """Request a report (the kinds this user may request) and follow the runs of the trial."""
    trial = _trial(request, pk)
    kinds = report_runs.kinds_for(request.user, trial.pk)
    if not kinds:
        raise Http404("No such page.")
    form = ReportRequestForm(request.POST or None, kinds=kinds)
    if request.method == "POST" and form.is_valid():
        try:
            run = report_runs.request_report(request.user, trial, form.cleaned_data["kind"], form.cleaned_data["data_cut"])
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            messages.success(request, f"{run.get_kind_display()} requested (data cut {run.data_cut:%Y-%m-%d %H:%M:%S} UTC).")
            return redirect("reports-page", pk=trial.pk)
    runs = report_runs.report_run_list(user=request.user).filter(trial=trial).order_by("-created_at", "-id")[:50]
    return render(request, "reporting/reports.html", {
        "trial": trial, "form": form, "runs": runs,
        "may_see_ae_report": ReportKind.AE_REPORT in kinds,
    })


@login_required
def ae_report_page(request, pk):
    """The AE report of a trial (reports.md): summary per cohort and overall, and the listing."""
    from .deid import disclosure
    from .snapshot import load_snapshot

    trial = _trial(request, pk)
    if not RoleIndex.for_user(request.user).has(report_runs.REQUEST_ROLES[ReportKind.AE_REPORT], trial.pk):
        raise Http404("No such page.")
    sites = list(site_list(user=request.user, trial=trial).order_by("site_number"))
    cohorts = list(cohort_list(user=request.user, trial=trial).order_by("name"))
    form = AeFilterForm(request.GET or None, sites=sites, cohorts=cohorts)
    context = {"trial": trial, "form": form, "report": None}
    if request.GET and not form.is_valid():
        return render(request, "reporting/ae_report.html", context)
    data = form.cleaned_data if form.is_bound else {}
    try:
        cut = report_runs.validate_data_cut(trial, data.get("data_cut"))
    except ValidationError as exc:
        for error in exc.message_dict["data_cut"]:
            form.add_error("data_cut", error)
        return render(request, "reporting/ae_report.html", context)
    site = next((s for s in sites if str(s.pk) == data.get("site")), None)
    cohort = next((c for c in cohorts if str(c.pk) == data.get("cohort")), None)
    snapshot = load_snapshot(trial, cut).restricted(
        site_ids={site.pk} if site else None, cohort_ids={cohort.pk} if cohort else None)
    shifts = None
    if disclosure(request.user, trial).shift_dates:
        from .deid import shifts_for

        shifts = shifts_for(trial.pk)
    report = report_runs.shift_ae_report(build_ae_report(snapshot, by_cohort=True), snapshot, shifts)
    filters_text = "; ".join([
        f"Site: {site.site_number} {site.name}" if site else "All sites",
        f"Cohort: {cohort.name}" if cohort else "All cohorts",
        *(["dates shifted per subject (de-identified)"] if shifts else []),
    ])
    summary = summary_csv_rows(report)
    fmt = request.GET.get("format")
    if fmt == "csv":
        return _ae_csv(request, trial, cut, report, summary, filters_text)
    if fmt == "pdf":
        from .export_views import log_access
        from .pdf import render_ae_pdf

        pdf = render_ae_pdf(report, title=f"{trial.protocol_code}: adverse-event report", filters_text=filters_text)
        log_access(request, resource="ae-report.pdf", status_code=200, row_count=len(report.listing), trial=trial)
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{_filename(trial, cut)}.pdf"'
        return response
    query = request.GET.copy()
    query.pop("format", None)
    context.update({
        "report": report, "summary_header": summary[0], "summary_rows": summary[1:], "filters_text": filters_text,
        "listing_header": LISTING_HEADER, "listing": [dataclasses.astuple(r) for r in report.listing],
        "query": query.urlencode(), "cut": cut,
    })
    return render(request, "reporting/ae_report.html", context)


def _filename(trial, cut) -> str:
    return f"{trial.protocol_code}-ae-report-{cut.astimezone(timezone.get_fixed_timezone(0)):%Y%m%dT%H%M%SZ}"


def _ae_csv(request, trial, cut, report, summary, filters_text) -> HttpResponse:
    """Summary table, then the listing, then what the report was computed from."""
    from .export_views import log_access

    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(trial, cut)}.csv"'
    writer = csv.writer(response)
    writer.writerows(summary)
    writer.writerow([])
    writer.writerow(LISTING_HEADER)
    writer.writerows(dataclasses.astuple(r) for r in report.listing)
    writer.writerow([])
    writer.writerows([["protocol", trial.protocol_code], ["data_cut", report.cut], ["data_hash", report.digest],
                      ["filters", filters_text]])
    log_access(request, resource="ae-report.csv", status_code=200, row_count=len(report.listing), trial=trial)
    return response
