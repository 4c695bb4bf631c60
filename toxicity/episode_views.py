"""The investigator's review of a derived CRS/ICANS episode (data-dictionary.md, episode_review;
reports.md, "Seriousness is not severity"): the episode as derived, and the review form.

Every reader of the casebook sees the page; only an investigator of the subject's site writes,
through ``toxicity.reviews`` (which checks the role again, so the page cannot widen it).
"""
from datetime import date

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render

from toxicity import reviews
from toxicity.choices import Seriousness
from toxicity.models import Episode, EpisodeKind, EpisodeReview
from toxicity.views import SERIOUSNESS_LABELS, _apply_errors, _roles, _subject
from trials.audit import RecordLockedError, StaleVersionError
from trials.choices import CrsScale, IcansScale
from trials.roles import Role
from trials.views import in_site_timezone

REVIEW_FIELDS = ["serious", "seriousness", "relatedness", "outcome", "comment"]


class EpisodeReviewForm(forms.Form):
    """The review's fields, labels and help from the model; a correction also needs the version
    it corrects and a reason for change."""

    def __init__(self, *args, correcting: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in forms.fields_for_model(EpisodeReview, fields=REVIEW_FIELDS).items():
            self.fields[name] = field
        self.fields["serious"].label = "Serious (ICH E2A)"
        self.fields["serious"].help_text = ("Seriousness is not severity: a grade 3 episode is severe, serious only "
                                            "when a criterion below holds.")
        self.fields["seriousness"] = forms.MultipleChoiceField(
            choices=Seriousness.choices, required=False, widget=forms.CheckboxSelectMultiple,
            label="Seriousness criteria", help_text="Every criterion that applies; only for a serious episode.")
        self.fields["relatedness"].label, self.fields["relatedness"].help_text = "Relationship to the study treatment", ""
        self.fields["comment"].widget.attrs |= {"rows": 3, "cols": 60}
        if correcting:
            self.fields["version"] = forms.IntegerField(widget=forms.HiddenInput)
            self.fields["change_reason"] = forms.CharField(label="Reason for change", max_length=500,
                                                           help_text="Required when correcting a saved review.")

    def review_values(self) -> dict:
        return {name: self.cleaned_data[name] for name in REVIEW_FIELDS}


def _onset(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Http404("No such episode.")


CHANGE_LABELS = {"max_grade": "Max grade", "has_incomplete_days": "Not-evaluable days", "resolution_date": "Resolution",
                 "seriousness_derived": "Criteria the data prove"}


def _changed_since(review: EpisodeReview | None, episode: Episode) -> list[tuple[str, str, str]]:
    """What differs between the episode as reviewed (``reviewed_episode``, the derived episode's
    ``review_snapshot()``) and the stored episode now: (label, then, now)."""
    if review is None or episode.review_status != "outdated":
        return []
    changes = []
    for name, then in (review.reviewed_episode or {}).items():
        now = getattr(episode, name, None)
        now = now.isoformat() if isinstance(now, date) else now
        if now != then:
            changes.append((CHANGE_LABELS.get(name, name.replace("_", " ")), _shown(then), _shown(now)))
    return changes


def _shown(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(SERIOUSNESS_LABELS.get(code, code) for code in value) or "none"
    return "—" if value is None else str(value)


@login_required
@in_site_timezone
def episode_review(request, pk, kind, onset):
    subject = _subject(request, pk)
    if kind not in EpisodeKind.values:
        raise Http404("No such episode.")
    onset_date = _onset(onset)
    episode = Episode.objects.filter(subject=subject, kind=kind, onset_date=onset_date, voided=False).first()
    if episode is None:
        raise Http404("No such episode.")
    review = EpisodeReview.objects.filter(subject=subject, kind=kind, onset_date=onset_date, voided=False).first()
    can_review = Role.INVESTIGATOR in _roles(request, subject)
    form = None
    if request.method == "POST":
        if not can_review:
            raise Http404("No such form.")
        form = EpisodeReviewForm(request.POST, correcting=review is not None)
        if form.is_valid():
            try:
                _save(request, subject, kind, onset_date, review, form)
                return redirect("casebook", pk=subject.pk)
            except (ValidationError, StaleVersionError, RecordLockedError) as exc:
                if isinstance(exc, ValidationError) and "reason" in exc.message_dict:
                    exc = ValidationError({"change_reason": exc.message_dict.pop("reason"), **exc.message_dict})
                _apply_errors(form, exc)
    elif can_review:
        initial = {name: getattr(review, name) for name in REVIEW_FIELDS} | {"version": review.version} if review else {}
        form = EpisodeReviewForm(initial=initial, correcting=review is not None)
    return render(request, "toxicity/episode_review.html", {
        "subject": subject, "episode": episode, "review": review, "form": form, "can_review": can_review,
        "scale": dict(CrsScale.choices if kind == "crs" else IcansScale.choices).get(episode.scale, episode.scale),
        "criteria": [SERIOUSNESS_LABELS.get(c, c) for c in episode.seriousness],
        "derived_criteria": [SERIOUSNESS_LABELS.get(c, c) for c in episode.seriousness_derived],
        "review_criteria": [SERIOUSNESS_LABELS.get(c, c) for c in review.seriousness] if review else [],
        "changed_since": _changed_since(review, episode),
    })


def _save(request, subject, kind, onset_date, review, form) -> None:
    name = f"{kind.upper()} episode from {onset_date.isoformat()}"
    if review is None:
        reviews.episode_review_create(user=request.user, subject=subject, kind=kind, onset_date=onset_date,
                                      **form.review_values())
        messages.success(request, f"Review of the {name} saved.")
    else:
        reviews.episode_review_update(review=review, user=request.user, version=form.cleaned_data["version"],
                                      reason=form.cleaned_data["change_reason"], changes=form.review_values())
        messages.success(request, f"Review of the {name} corrected.")
