"""Browser forms of the trials CRFs (enrolment, infusion, death); the services apply every rule."""
from django import forms

from .models import Death, Infusion, Subject

SUBJECT_FIELDS = ["subject_id", "site", "cohort", "enrolled_on", "sex", "date_of_birth", "diagnosis",
                  "baseline_weight_kg", "developmental_delay", "capd_baseline"]
INFUSION_FIELDS = ["infusion_number", "product", "lot_number", "infused_at", "dose_cells_per_kg", "weight_kg",
                   "lymphodepletion_regimen", "lymphodepletion_start_date"]
DEATH_FIELDS = ["death_date", "death_primary_cause", "death_cause_other_text"]


def _dated(fields):
    for field in fields.values():
        if isinstance(field, forms.DateTimeField):
            field.widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
        elif isinstance(field, forms.DateField):
            field.widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    return fields


def record_form(model, names, *, sites=None, cohorts=None):
    fields = _dated(forms.fields_for_model(model, fields=names))
    if sites is not None:
        fields["site"].queryset = sites
        fields["cohort"].queryset = cohorts
    fields["version"] = forms.IntegerField(required=False, widget=forms.HiddenInput)
    fields["change_reason"] = forms.CharField(required=False, label="Reason for change", max_length=500,
                                              help_text="Required when correcting saved data.")
    return type(f"{model.__name__}Form", (forms.Form,), fields)


FORMS = {"subject": (Subject, SUBJECT_FIELDS), "infusion": (Infusion, INFUSION_FIELDS), "death": (Death, DEATH_FIELDS)}
