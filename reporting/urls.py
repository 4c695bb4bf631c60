from django.urls import path
from rest_framework.routers import DefaultRouter

from . import export_views, sdtm_views
from . import report_views

router = DefaultRouter()
router.register("episodes", export_views.EpisodeViewSet, basename="episode")
router.register("report-runs", report_views.ReportRunViewSet, basename="report-run")

urlpatterns = [
    path("exports/<slug:dataset>.csv", export_views.ExportView.as_view(), name="export"),
    path("sdtm/define.json", sdtm_views.SdtmDefineView.as_view(), name="sdtm-define"),
    path("sdtm/<slug:domain>.csv", sdtm_views.SdtmDomainView.as_view(), name="sdtm-domain"),
    path("registry/summary.csv", report_views.RegistrySummaryView.as_view(), name="registry-summary"),
    *router.urls,
]
