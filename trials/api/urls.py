from rest_framework.routers import DefaultRouter

from . import views, workflow_views

router = DefaultRouter()
router.register("trials", views.TrialViewSet, basename="trial")
router.register("subjects", views.SubjectViewSet, basename="subject")
router.register("infusions", views.InfusionViewSet, basename="infusion")
router.register("source-verifications", workflow_views.SourceVerificationViewSet, basename="source-verification")
router.register("locks", workflow_views.LockViewSet, basename="lock")
router.register("signatures", workflow_views.SignatureViewSet, basename="signature")

urlpatterns = router.urls
