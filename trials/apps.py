from django.apps import AppConfig


class TrialsConfig(AppConfig):
    name = "trials"
    verbose_name = "Trials, sites, subjects and infusions"

    def ready(self):
        from trials.api.errors import register_constraint_fields
        from trials.models import CONSTRAINT_FIELDS

        register_constraint_fields(CONSTRAINT_FIELDS)
        from trials import workflow_services  # noqa: F401  (registers the lock guard and signature hook)
