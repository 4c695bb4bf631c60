"""CRF forms. Field limits, labels and help come from the models; the services apply every rule."""
from decimal import ROUND_FLOOR, Decimal

from django import forms
from django.utils.html import format_html, format_html_join

from toxicity import ctcae_terms
from toxicity.choices import Inotrope, Seriousness, Vasopressor
from toxicity.grading.inputs import fahrenheit_to_celsius
from toxicity.models import (
    AdverseEvent,
    AnticytokineDose,
    CorticosteroidDose,
    DailyAssessment,
    HemofiltrationSession,
    IcuStay,
    PlasmaExchange,
    TocilizumabDose,
)

# Data-dictionary order and wording.
CRS_FIELDS = [
    "fever_other_cause", "antipyretic_given", "hypotension", "hypotension_other_cause", "vasopressors",
    "vasopressin_other_indication", "inotropes", "hypoxia", "hypoxia_other_cause", "oxygen_device", "oxygen_flow_l_min",
    "fio2_percent", "intubation_reason",
]
ICE_FIELDS = ["ice_score", "ice_not_assessable"]
CAPD_FIELDS = ["capd_score", "capd_unable"]
ICANS_FIELDS = [
    "consciousness", "consciousness_other_cause", "seizure", "seizure_other_cause", "motor_weakness",
    "motor_other_cause", "cerebral_edema", "cerebral_edema_other_cause",
]
REPORTED_FIELDS = ["crs_grade_reported", "icans_grade_reported"]
LABELS = {
    "fever_other_cause": "Fever attributed to another cause",
    "antipyretic_given": "Antipyretic given this day",
    "hypotension": "Hypotension",
    "hypotension_other_cause": "Hypotension attributed to another cause",
    "vasopressors": "Vasopressors running at the same time (worst moment of the day)",
    "vasopressin_other_indication": "Vasopressin given for another indication",
    "inotropes": "Inotropes running (recorded, not graded: R-CRS-8)",
    "hypoxia": "Hypoxia (supplemental O2 needed for a deficit)",
    "hypoxia_other_cause": "Hypoxia attributed to another cause",
    "oxygen_device": "Highest oxygen support of the day",
    "oxygen_flow_l_min": "Oxygen flow (L/min)",
    "fio2_percent": "FiO2 (%)",
    "intubation_reason": "Reason for intubation",
    "ice_score": "ICE score (0-10)",
    "ice_not_assessable": "ICE not assessable because",
    "capd_score": "CAPD score (0-32)",
    "capd_unable": "Unable to perform CAPD",
    "consciousness": "Level of consciousness",
    "consciousness_other_cause": "Depressed consciousness attributed to another cause",
    "seizure": "Seizure",
    "seizure_other_cause": "Seizure attributed to another cause",
    "motor_weakness": "Motor findings",
    "motor_other_cause": "Motor findings attributed to another cause",
    "cerebral_edema": "Raised ICP / cerebral edema",
    "cerebral_edema_other_cause": "Edema attributed to another cause (incl. intracranial hemorrhage)",
    "crs_grade_reported": "Investigator's CRS grade",
    "icans_grade_reported": "Investigator's ICANS grade",
}


class ChangeFields(forms.Form):
    """Every edit carries the version it started from and, after the first save, a reason."""

    version = forms.IntegerField(required=False, widget=forms.HiddenInput)
    reason = forms.CharField(
        required=False, label="Reason for change", max_length=500,
        help_text='Required when correcting saved data, e.g. "transcription error" or "source updated".',
    )


class AssessmentForm(ChangeFields):
    temperature = forms.DecimalField(
        required=False, max_digits=5, decimal_places=2, label="Highest temperature of the day",
        help_text="Empty = not measured (the CRS grade is then not evaluable).",
    )
    temperature_unit = forms.ChoiceField(choices=[("C", "°C"), ("F", "°F")], initial="C", label="Unit")

    def __init__(self, *args, tool: str = "ice", **kwargs):
        super().__init__(*args, **kwargs)
        names = [*CRS_FIELDS, *(ICE_FIELDS if tool == "ice" else CAPD_FIELDS), *ICANS_FIELDS, *REPORTED_FIELDS]
        model_fields = forms.fields_for_model(DailyAssessment, fields=names)
        for name in names:
            field = model_fields[name]
            field.label = LABELS.get(name, field.label)
            self.fields[name] = field
        self.fields["vasopressors"] = forms.MultipleChoiceField(
            choices=Vasopressor.choices, required=False, widget=forms.CheckboxSelectMultiple, label=LABELS["vasopressors"]
        )
        self.fields["inotropes"] = forms.MultipleChoiceField(
            choices=Inotrope.choices, required=False, widget=forms.CheckboxSelectMultiple, label=LABELS["inotropes"]
        )
        self.tool = tool
        self.order_fields(["temperature", "temperature_unit", *names, "reason", "version"])

    def clean(self):
        data = super().clean()
        value, unit = data.get("temperature"), data.get("temperature_unit")
        if value is not None and unit == "F":
            # Stored in C to 0.01; rounding down keeps the 38.0 C boundary exact (100.4 F = 38.00 C).
            value = fahrenheit_to_celsius(value).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
        data["temperature_max_c"] = value
        return data

    def observations(self) -> dict:
        """The assessment fields as the service takes them."""
        skip = {"temperature", "temperature_unit", "version", "reason"}
        data = self.cleaned_data
        return {"temperature_max_c": data.get("temperature_max_c"), **{n: data.get(n) for n in self.fields if n not in skip}}


LOG_KINDS = {
    # slug: (model, form fields, title)
    "tocilizumab": (TocilizumabDose, ["administered_at", "dose_mg", "weight_kg", "indication"], "Tocilizumab doses"),
    "corticosteroid": (CorticosteroidDose, ["drug", "administered_at", "dose_mg", "route", "indication", "weight_kg"],
                       "Corticosteroid doses"),
    "anticytokine": (AnticytokineDose, ["drug", "administered_at", "dose_mg", "weight_kg", "route", "indication"],
                     "Anakinra / siltuximab doses"),
    "plasma-exchange": (PlasmaExchange, ["started_at", "ended_at", "plasma_volume_exchanged_ml", "replacement_fluid",
                                         "hematocrit_fraction", "weight_kg"], "Plasma exchange"),
    "hemofiltration": (HemofiltrationSession, ["modality", "started_at", "ended_at", "effluent_rate_ml_h", "weight_kg"],
                       "Hemofiltration sessions"),
    "icu": (IcuStay, ["admitted_at", "discharged_at", "reason"], "ICU stays"),
    "adverse-events": (AdverseEvent, ["ctcae_term", "ctcae_version", "grade", "onset_date", "resolution_date",
                                      "serious", "seriousness", "relatedness", "outcome"], "Adverse events"),
}


class DatalistInput(forms.TextInput):
    """A text input suggesting the values of a <datalist> (free typing stays possible; the service checks it)."""

    def __init__(self, options, *, list_id: str, attrs=None):
        super().__init__(attrs={**(attrs or {}), "list": list_id, "autocomplete": "off"})
        self.options, self.list_id = options, list_id

    def render(self, name, value, attrs=None, renderer=None):
        options = format_html_join("", '<option value="{}"></option>', ((o,) for o in self.options))
        return format_html('{}<datalist id="{}">{}</datalist>', super().render(name, value, attrs, renderer),
                           self.list_id, options)


def _adverse_event_fields(fields: dict) -> None:
    fields["ctcae_term"].widget = DatalistInput(ctcae_terms.typeable_terms(), list_id="ctcae-terms",
                                                attrs={"size": 50})
    fields["ctcae_term"].help_text = ("Type to search the CTCAE terms. CRS and ICANS are not entered here: "
                                      "they are derived from the daily assessments.")
    fields["grade"].widget.attrs.update(min=1, max=5)
    fields["seriousness"] = forms.MultipleChoiceField(
        choices=Seriousness.choices, required=False, widget=forms.CheckboxSelectMultiple,
        label="Seriousness criteria", help_text="Every criterion that applies; only for a serious event.",
    )


def log_form_class(kind: str) -> type[forms.Form]:
    model, names, _ = LOG_KINDS[kind]
    fields = forms.fields_for_model(model, fields=names)
    for name, field in fields.items():
        if isinstance(field, forms.DateTimeField):
            field.widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
            field.input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        elif isinstance(field, forms.DateField):
            field.widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    if model is IcuStay:  # the ICU stay's own "reason" code; the change reason is "change_reason"
        fields["reason"].label = "Reason for ICU admission"
    if model is AdverseEvent:
        _adverse_event_fields(fields)
    form = type(f"{model.__name__}Form", (forms.Form,), dict(fields))
    form.base_fields.update(
        {"version": forms.IntegerField(required=False, widget=forms.HiddenInput),
         "change_reason": forms.CharField(required=False, label="Reason for change", max_length=500,
                                          help_text="Required when correcting saved data.")}
    )
    return form
