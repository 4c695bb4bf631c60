"""The audit trail resource (api.md ``audit/``), included under /api/v1/ by config/urls.py."""
from django.urls import path

from .api import AuditView

urlpatterns = [path("audit/", AuditView.as_view(), name="audit")]
