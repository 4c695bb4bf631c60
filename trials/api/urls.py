from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("trials", views.TrialViewSet, basename="trial")
router.register("subjects", views.SubjectViewSet, basename="subject")
router.register("infusions", views.InfusionViewSet, basename="infusion")

urlpatterns = router.urls
