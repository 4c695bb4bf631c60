"""episode-reviews/ (api.md): the investigator's seriousness, relatedness and outcome review of a
derived CRS/ICANS episode (data-dictionary.md, episode_review)."""
from rest_framework import serializers as drf_serializers

from toxicity import reviews
from toxicity.choices import Seriousness
from toxicity.models import EpisodeReview
from trials.roles import Role

from .serializers import log_serializers
from .views import SubjectRecordViewSet, subject_filterset

REVIEW_FIELDS = ["kind", "onset_date", "serious", "seriousness", "relatedness", "outcome", "comment"]
_Read, _Write = log_serializers(EpisodeReview, REVIEW_FIELDS, derived=("reviewed_episode",))
SERIOUSNESS_HELP = ("ICH E2A criteria the investigator records (codes); required when serious, empty otherwise. "
                    "The episode is serious when any criterion holds, these or those the data prove.")


class EpisodeReviewSerializer(_Read):
    seriousness = drf_serializers.ListField(
        child=drf_serializers.ChoiceField(choices=Seriousness.choices), read_only=True, help_text=SERIOUSNESS_HELP)

    class Meta(_Read.Meta):
        pass

    def withheld_fields(self, disclosure) -> tuple[str, ...]:
        # the comment is free text a site typed: withheld from sponsor and DSMB (reports.md)
        return super().withheld_fields(disclosure) + (() if disclosure.free_text else ("comment",))


class EpisodeReviewWriteSerializer(_Write):
    seriousness = drf_serializers.ListField(
        child=drf_serializers.ChoiceField(choices=Seriousness.choices), required=False, allow_empty=True,
        help_text=SERIOUSNESS_HELP)

    class Meta(_Write.Meta):
        pass


class EpisodeReviewViewSet(SubjectRecordViewSet):
    """The investigator's review of a derived episode, keyed by subject, kind and onset date.

    Only an investigator of the subject's site writes it. It must name an episode as derived now
    (`episodes/`); when the episode changes afterwards the episode's `review_status` says
    `outdated` until the investigator saves the review again (PATCH with version and reason).
    Seriousness is not severity (ICH E2A): the criteria recorded here join those the data prove.
    """

    model = EpisodeReview
    read_serializer_class = EpisodeReviewSerializer
    write_serializer_class = EpisodeReviewWriteSerializer
    filterset_class = subject_filterset(EpisodeReview, extra_fields=("kind",))
    write_roles = frozenset({Role.INVESTIGATOR})

    def service_create(self, *, user, data, reason):
        return reviews.episode_review_create(user=user, reason=reason, **data)

    def service_update(self, instance, **kwargs):
        return reviews.episode_review_update(review=instance, **kwargs)

    def service_void(self, instance, **kwargs):
        return reviews.episode_review_void(review=instance, **kwargs)
