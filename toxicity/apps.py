from django.apps import AppConfig


class ToxicityConfig(AppConfig):
    name = "toxicity"
    verbose_name = "Toxicity: daily CRS/ICANS assessments, grading and rescue therapy"

    def load_demo(self, trial, coordinators, *, today):
        from .demo import load_demo

        load_demo(trial, coordinators, today=today)

    def ready(self):
        from trials.api.errors import register_constraint_fields
        from trials.services import register_after_subject_write

        from .course.write import after_subject_write
        from .models import CONSTRAINT_FIELDS

        register_constraint_fields(CONSTRAINT_FIELDS)
        # trials' writes (subject, infusion, death) end with the course's one write sequence
        register_after_subject_write(after_subject_write)
