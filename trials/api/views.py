"""Trials REST resources (api.md): set-up read-only; subjects, infusions and death writable by site data-entry roles."""
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.generics import get_object_or_404  # a malformed id is a 404 here, not a 500
from rest_framework.response import Response

from trials import selectors, services
from trials.models import Death
from trials.roles import ALL_ROLES, DATA_ENTRY_ROLES

from .base import ClinicalViewSet, VoidSerializer
from .filters import InfusionFilter, SubjectFilter
from .serializers import (
    CohortSerializer,
    DeathSerializer,
    DeathWriteSerializer,
    InfusionSerializer,
    InfusionWriteSerializer,
    SiteSerializer,
    SubjectSerializer,
    SubjectWriteSerializer,
    TrialSerializer,
)


class TrialViewSet(viewsets.ReadOnlyModelViewSet):
    """Trials the caller holds a role in. Set-up is done by data managers in the admin."""

    serializer_class = TrialSerializer

    def get_queryset(self):
        return selectors.trial_list(user=self.request.user)

    @extend_schema(responses=SiteSerializer(many=True))
    @action(detail=True)
    def sites(self, request, pk=None):
        trial = get_object_or_404(self.get_queryset(), pk=pk)  # the list's filters apply to the sites
        page = self.paginate_queryset(self.filter_queryset(selectors.site_list(user=request.user, trial=trial)))
        return self.get_paginated_response(SiteSerializer(page, many=True).data)

    @extend_schema(responses=CohortSerializer(many=True))
    @action(detail=True)
    def cohorts(self, request, pk=None):
        trial = get_object_or_404(self.get_queryset(), pk=pk)
        page = self.paginate_queryset(self.filter_queryset(selectors.cohort_list(user=request.user, trial=trial)))
        return self.get_paginated_response(CohortSerializer(page, many=True).data)


class SubjectViewSet(ClinicalViewSet):
    read_serializer_class = SubjectSerializer
    write_serializer_class = SubjectWriteSerializer
    filterset_class = SubjectFilter

    def selector(self, *, user, roles):
        return selectors.subject_list(user=user, roles=roles, include_voided=True)

    def service_create(self, *, user, data, reason):
        return services.subject_create(user=user, reason=reason, **data)

    def service_update(self, instance, **kwargs):
        return services.subject_update(subject=instance, **kwargs)

    def service_void(self, instance, **kwargs):
        return services.subject_void(subject=instance, **kwargs)

    def _death_subject(self, request, pk, roles):
        return get_object_or_404(selectors.subject_list(user=request.user, roles=roles), pk=pk)

    @extend_schema(methods=["GET"], responses=DeathSerializer)
    @extend_schema(methods=["PUT"], request=DeathWriteSerializer, responses={200: DeathSerializer, 201: DeathSerializer})
    @action(detail=True, methods=["get", "put"], url_path="death")
    def death(self, request, pk=None):
        """The subject's death record. PUT creates it, or changes it with ``version`` and ``reason``."""
        if request.method == "GET":
            subject = self._death_subject(request, pk, ALL_ROLES)
            death = Death.objects.filter(subject=subject, voided=False).select_related("subject").first()
            if death is None:
                raise NotFound("No death is recorded for this subject.")
            return Response(DeathSerializer(death, context=self.get_serializer_context()).data)
        subject = self._death_subject(request, pk, DATA_ENTRY_ROLES)
        body = DeathWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        version, reason = fields.pop("version", None), fields.pop("reason", None)
        existed = Death.objects.filter(subject=subject, voided=False).exists()
        death = services.death_record(subject=subject, user=request.user, version=version, reason=reason, **fields)
        return Response(
            DeathSerializer(death, context=self.get_serializer_context()).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )

    @extend_schema(request=VoidSerializer, responses=DeathSerializer)
    @action(detail=True, methods=["post"], url_path="death/void")
    def death_void(self, request, pk=None):
        """Mark the death record entered in error, with a reason."""
        subject = self._death_subject(request, pk, DATA_ENTRY_ROLES)
        death = get_object_or_404(Death.objects.filter(subject=subject, voided=False))
        body = VoidSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        death = services.death_void(death=death, user=request.user, **body.validated_data)
        return Response(DeathSerializer(death, context=self.get_serializer_context()).data)


class InfusionViewSet(ClinicalViewSet):
    read_serializer_class = InfusionSerializer
    write_serializer_class = InfusionWriteSerializer
    filterset_class = InfusionFilter

    def selector(self, *, user, roles):
        return selectors.infusion_list(user=user, roles=roles, include_voided=True)

    def service_create(self, *, user, data, reason):
        return services.infusion_create(user=user, reason=reason, **data)

    def service_update(self, instance, **kwargs):
        return services.infusion_update(infusion=instance, **kwargs)

    def service_void(self, instance, **kwargs):
        return services.infusion_void(infusion=instance, **kwargs)
