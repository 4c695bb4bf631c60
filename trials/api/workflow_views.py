"""Source-data verification, locks and casebook signatures over the API (workflow.md)."""
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from trials import workflow_services as wf
from trials.models import Subject, Trial
from trials.selectors import scoped, subject_list, trial_list
from trials.workflow import CasebookSignature, Lock, LockScope, SourceVerification


def _record(user, record_type, record_id):
    model = wf.record_model(record_type)
    return get_object_or_404(scoped(user, model.objects.all()), pk=record_id)


class VerificationSerializer(serializers.ModelSerializer):
    verified_by = serializers.CharField(source="verified_by.username", read_only=True)
    status = serializers.SerializerMethodField(help_text="verified, or changed since verification.")

    class Meta:
        model = SourceVerification
        fields = ["id", "subject", "record_type", "record_id", "verified_version", "verified_by", "verified_at", "status"]
        read_only_fields = fields

    def get_status(self, obj) -> str:
        if hasattr(obj, "record_version"):  # annotated by the list (one query for the page)
            version = obj.record_version
        else:
            record = wf.record_model(obj.record_type).objects.filter(pk=obj.record_id).only("version").first()
            version = None if record is None else record.version
        return "verified" if version is not None and version == obj.verified_version else "changed"


def with_record_version(queryset):
    """Annotate each verification with its form's current version, whatever the form's model."""
    from django.apps import apps
    from django.db.models import Case, OuterRef, Subquery, When

    from trials.audit import ClinicalModel

    whens = [
        When(record_type=model._meta.label_lower, then=Subquery(
            model._base_manager.filter(pk=OuterRef("record_id")).order_by().values("version")[:1]
        ))
        for model in apps.get_models() if issubclass(model, ClinicalModel)
    ]
    return queryset.annotate(record_version=Case(*whens, default=None))


class RecordSerializer(serializers.Serializer):
    record_type = serializers.CharField(help_text='Model label, e.g. "toxicity.dailyassessment".')
    record_id = serializers.IntegerField(min_value=1)


class SourceVerificationViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """A monitor marks a form source-data verified; any later change to the form clears it."""

    serializer_class = VerificationSerializer
    filterset_fields = ["subject", "record_type", "record_id"]

    def get_queryset(self):
        return with_record_version(scoped(self.request.user, SourceVerification.objects.select_related("verified_by")))

    @extend_schema(request=RecordSerializer, responses={201: VerificationSerializer})
    def create(self, request, *args, **kwargs):
        body = RecordSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        record = _record(request.user, **body.validated_data)
        verification = wf.form_verify(user=request.user, record=record)
        return Response(VerificationSerializer(verification).data, status=status.HTTP_201_CREATED)


class LockSerializer(serializers.ModelSerializer):
    trial = serializers.PrimaryKeyRelatedField(queryset=Trial.objects.none())
    subject = serializers.PrimaryKeyRelatedField(queryset=Subject.objects.none(), required=False, allow_null=True)
    reason = serializers.CharField(source="lock_reason", required=False, allow_blank=True)
    active = serializers.BooleanField(read_only=True)

    class Meta:
        model = Lock
        fields = ["id", "scope", "trial", "subject", "record_type", "record_id", "reason", "locked_by", "locked_at",
                  "active", "unlocked_by", "unlocked_at", "unlock_reason"]
        read_only_fields = ["id", "locked_by", "locked_at", "active", "unlocked_by", "unlocked_at", "unlock_reason"]
        extra_kwargs = {"record_type": {"required": False}, "record_id": {"required": False}}
        validators = []  # "already locked" is checked by the service, naming the field

    def get_fields(self):
        fields = super().get_fields()
        user = self.context["request"].user
        fields["trial"].queryset = trial_list(user=user)
        fields["subject"].queryset = subject_list(user=user)
        return fields


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField()


class LockViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Data managers lock a form, a subject's casebook or the whole trial; unlocking needs a reason."""

    serializer_class = LockSerializer
    filterset_fields = ["trial", "subject", "scope"]

    def get_queryset(self):
        return scoped(self.request.user, Lock.objects.all())

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        record = None
        if data["scope"] == LockScope.FORM:
            if not data.get("record_type") or not data.get("record_id"):
                raise serializers.ValidationError({"record_id": ["Name the form: record_type and record_id."]})
            record = _record(request.user, data["record_type"], data["record_id"])
        lock = wf.lock_create(user=request.user, scope=data["scope"], trial=data["trial"], subject=data.get("subject"),
                              record=record, reason=data.get("lock_reason", ""))
        return Response(self.get_serializer(lock).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReasonSerializer, responses=LockSerializer)
    @action(detail=True, methods=["post"])
    def unlock(self, request, pk=None):
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        lock = wf.lock_release(user=request.user, lock=self.get_object(), reason=body.validated_data["reason"])
        return Response(self.get_serializer(lock).data)


class SignatureSerializer(serializers.ModelSerializer):
    valid = serializers.BooleanField(read_only=True)

    class Meta:
        model = CasebookSignature
        fields = ["id", "subject", "signer_name", "meaning", "signed_at", "valid", "voided_at", "void_reason"]
        read_only_fields = fields


class PasswordSerializer(serializers.Serializer):
    password = serializers.CharField(style={"input_type": "password"}, help_text="Re-enter your password to sign.")


class SignatureViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Investigator signatures of casebooks; POST signatures/sign/{subject id}/ with the password."""

    serializer_class = SignatureSerializer
    filterset_fields = ["subject"]

    def get_queryset(self):
        return scoped(self.request.user, CasebookSignature.objects.all())

    @extend_schema(request=PasswordSerializer, responses={201: SignatureSerializer})
    @action(detail=False, methods=["post"], url_path=r"sign/(?P<subject_pk>\d+)")
    def sign(self, request, subject_pk=None):
        subject = get_object_or_404(subject_list(user=request.user), pk=subject_pk)
        body = PasswordSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        signature = wf.casebook_sign(user=request.user, subject=subject, password=body.validated_data["password"],
                                     request=request._request)
        return Response(SignatureSerializer(signature).data, status=status.HTTP_201_CREATED)
