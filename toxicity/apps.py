from django.apps import AppConfig


class ToxicityConfig(AppConfig):
    name = "toxicity"
    verbose_name = "Toxicity: daily CRS/ICANS assessments, grading and rescue therapy"
