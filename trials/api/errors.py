"""API errors as api.md says: 400 naming every field, 401/404 for auth and scope, 409 stale version,
423 locked.

Never a 403 that confirms an object exists (workflow.md): permission failures of an
authenticated user are answered 404.
"""
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from trials.audit import RecordLockedError, StaleVersionError

CONSTRAINT_FIELD_REGISTRIES: list[dict[str, str]] = []


def register_constraint_fields(mapping: dict[str, str]) -> None:
    """Apps register {constraint name: field} so database rejections name their field."""
    CONSTRAINT_FIELD_REGISTRIES.append(mapping)


def field_errors(exc: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {("non_field_errors" if k == "__all__" else k): v for k, v in exc.message_dict.items()}
    return {"non_field_errors": exc.messages}


def integrity_errors(exc: IntegrityError) -> dict[str, list[str]]:
    text = str(exc)
    for registry in CONSTRAINT_FIELD_REGISTRIES:
        for name, field in registry.items():
            if name in text:
                return {field: [f"This value was rejected by the database rule '{name}'."]}
    return {"non_field_errors": ["The record conflicts with stored data (a concurrent change?). Reload and retry."]}


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        return Response(field_errors(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, StaleVersionError):
        return Response(
            {"version": [str(exc)], "current_version": exc.current}, status=status.HTTP_409_CONFLICT
        )
    if isinstance(exc, RecordLockedError):
        return Response({"detail": str(exc)}, status=status.HTTP_423_LOCKED)
    if isinstance(exc, IntegrityError):
        return Response(integrity_errors(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, (exceptions.PermissionDenied, DjangoPermissionDenied)):
        request = context.get("request")
        if request is not None and request.user and request.user.is_authenticated:
            exc = exceptions.NotFound()
    return drf_exception_handler(exc, context)
