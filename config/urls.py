from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from reporting import views as reporting_views
from toxicity import episode_views as tox_episode_views
from toxicity import preview as tox_preview
from toxicity import query_pages
from toxicity import views as tox_views
from trials import views as trial_views

api_v1 = [
    path("", include("trials.api.urls")),
    path("", include("toxicity.api.urls")),
    path("", include("reporting.urls_audit")),
    path("", include("reporting.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

urlpatterns = [
    path("", trial_views.home, name="home"),
    path("subjects/<int:pk>/", tox_views.casebook, name="casebook"),
    path("subjects/<int:pk>/day/<str:day>/", tox_views.assessment_day, name="assessment-day"),
    path("subjects/<int:pk>/day/<str:day>/preview/", tox_preview.assessment_preview, name="assessment-preview"),
    path("subjects/<int:pk>/logs/<slug:kind>/", tox_views.log_page, name="log"),
    path("subjects/<int:pk>/logs/<slug:kind>/<int:record_pk>/", tox_views.log_page, name="log-record"),
    path("subjects/<int:pk>/episodes/<str:kind>/<str:onset>/review/", tox_episode_views.episode_review,
         name="episode-review"),
    path("trials/<int:trial_pk>/subjects/new/", trial_views.subject_new, name="subject-new"),
    path("subjects/<int:pk>/edit/", trial_views.subject_edit, name="subject-edit"),
    path("subjects/<int:pk>/infusions/new/", trial_views.infusion_page, name="infusion-new"),
    path("subjects/<int:pk>/infusions/<int:infusion_pk>/", trial_views.infusion_page, name="infusion-edit"),
    path("subjects/<int:pk>/death/", trial_views.death_page, name="death"),
    path("subjects/<int:pk>/sign/", trial_views.sign_casebook, name="sign-casebook"),
    path("subjects/<int:pk>/lock/", trial_views.lock_casebook, name="lock-casebook"),
    path("locks/<int:lock_pk>/unlock/", trial_views.unlock, name="unlock"),
    path("history/<str:record_type>/<int:record_pk>/", trial_views.history, name="history"),
    path("verify/<str:record_type>/<int:record_pk>/", tox_views.verify_form, name="verify-form"),
    path("queries/", query_pages.query_list, name="queries-page"),
    path("queries/raise/", query_pages.query_raise, name="query-raise-page"),
    path("queries/<int:query_pk>/", query_pages.query_detail, name="query-page"),
    path("trials/<int:pk>/reports/", reporting_views.reports_page, name="reports-page"),
    path("trials/<int:pk>/ae-report/", reporting_views.ae_report_page, name="ae-report-page"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
]
