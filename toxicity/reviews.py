"""The investigator's review of a derived episode (data-dictionary.md, episode_review; reports.md,
"Seriousness is not severity").

Only an investigator of the subject's site records it. It is keyed by subject, kind and onset date
and must name an episode the course derives now; it keeps the episode as it stood
(``reviewed_episode``), so the episode shows the review as outdated when a later write changes it.
The write ends with the course's sequence like every clinical write: the episode's seriousness,
relatedness and outcome take the review in, and SAE-REVIEW-MISSING closes.
"""
from django.utils import timezone

from trials.audit import audited_create, audited_update, audited_void
from trials.models import Subject
from trials.roles import Role

from . import validation
from .course.derive import derive_course
from .course.write import SubjectWrite, subject_write
from .models import EpisodeReview

REVIEWERS = frozenset({Role.INVESTIGATOR})


def _episode(write: SubjectWrite, kind, onset_date):
    derived = derive_course(write.course, now=timezone.now())
    for episode in derived.episodes.of(kind) if kind in ("crs", "icans") else ():
        if episode.onset_date == onset_date:
            return episode
    return None


def _rules(write: SubjectWrite):
    def validate(review: EpisodeReview) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        if write.subject.voided:
            errors.setdefault("subject", []).append("This subject was marked entered in error.")
        if review.kind in ("crs", "icans") and review.onset_date is not None:
            episode = _episode(write, review.kind, review.onset_date)
            if episode is None:
                errors.setdefault("onset_date", []).append(
                    f"No derived {review.kind.upper()} episode of this subject starts on {review.onset_date}: "
                    f"review an episode as the casebook shows it.")
            else:
                review.reviewed_episode = episode.review_snapshot()
            clash = [r for r in write.course.reviews
                     if r.kind == review.kind and r.onset_date == review.onset_date and r.id != review.pk]
            if clash:
                errors.setdefault("onset_date", []).append(
                    "This episode already has a review: correct that one instead.")
        for field, messages in validation.seriousness_errors(review.serious, review.seriousness).items():
            errors.setdefault(field, []).extend(messages)
        return errors
    return validate


def _derive(review: EpisodeReview):
    if isinstance(review.seriousness, list) and all(isinstance(c, str) for c in review.seriousness):
        review.seriousness = validation.ordered_seriousness(review.seriousness)


def episode_review_create(*, user, subject: Subject, reason: str = "", **fields) -> EpisodeReview:
    with subject_write(subject, user=user, roles=REVIEWERS) as write:
        review = audited_create(EpisodeReview(subject=write.subject, **fields), user=user, reason=reason,
                                validate=_rules(write), derive=_derive, savepoint=False)
        write.record(review)
        write.because = f"the {review.kind.upper()} episode from {review.onset_date} was reviewed"
    return review


def episode_review_update(*, review: EpisodeReview, user, version, reason, changes: dict) -> EpisodeReview:
    """A correction, or the confirmation of an outdated review (saving it again takes the episode
    as it stands now)."""
    changes.pop("subject", None)
    with subject_write(review.subject, user=user, roles=REVIEWERS) as write:
        current = EpisodeReview.objects.get(pk=review.pk)
        episode = _episode(write, changes.get("kind", current.kind), changes.get("onset_date", current.onset_date))
        if episode is not None and episode.review_snapshot() != current.reviewed_episode:
            changes["reviewed_episode"] = episode.review_snapshot()  # re-reviewed as the episode stands
        review, changed = audited_update(EpisodeReview, review.pk, user=user, version=version, reason=reason,
                                         changes=changes, validate=_rules(write), derive=_derive,
                                         savepoint=False)
        if changed:
            write.record(review)
            write.because = f"the review of the {review.kind.upper()} episode from {review.onset_date} was corrected"
    return review


def episode_review_void(*, review: EpisodeReview, user, version, reason) -> EpisodeReview:
    with subject_write(review.subject, user=user, roles=REVIEWERS) as write:
        review = audited_void(EpisodeReview, review.pk, user=user, version=version, reason=reason, savepoint=False)
        write.record(review, removed=True)
        write.because = "an episode review was voided"
    return review
