from django.urls import path
from rest_framework.routers import DefaultRouter

from . import query_views, review_views, views

router = DefaultRouter()
router.register("assessments", views.AssessmentViewSet, basename="assessment")
router.register("tocilizumab-doses", views.TocilizumabDoseViewSet, basename="tocilizumab-dose")
router.register("corticosteroid-doses", views.CorticosteroidDoseViewSet, basename="corticosteroid-dose")
router.register("anticytokine-doses", views.AnticytokineDoseViewSet, basename="anticytokine-dose")
router.register("plasma-exchanges", views.PlasmaExchangeViewSet, basename="plasma-exchange")
router.register("hemofiltration-sessions", views.HemofiltrationSessionViewSet, basename="hemofiltration-session")
router.register("icu-stays", views.IcuStayViewSet, basename="icu-stay")
router.register("adverse-events", views.AdverseEventViewSet, basename="adverse-event")
router.register("episode-reviews", review_views.EpisodeReviewViewSet, basename="episode-review")
router.register("queries", query_views.QueryViewSet, basename="query")
router.register("check-runs", query_views.CheckRunViewSet, basename="check-run")

urlpatterns = [path("grading/preview/", views.GradingPreviewView.as_view(), name="grading-preview"), *router.urls]

# Bulk CSV import (toxicity/imports.py); kept apart so other resources' lines do not touch it.
from .import_views import ImportView  # noqa: E402

urlpatterns.append(path("imports/<slug:dataset>/", ImportView.as_view(), name="import"))
