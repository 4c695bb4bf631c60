from django import template

register = template.Library()


@register.filter
def grade(value):
    """A stored derived grade: NULL means not evaluable."""
    return "NE" if value is None else value


@register.filter
def get(mapping, key):
    """mapping[key] for dicts and forms (form|get:"field" is the bound field)."""
    try:
        return mapping[key]
    except (KeyError, TypeError):
        return None


@register.filter
def attr(obj, name):
    value = getattr(obj, name, "")
    display = getattr(obj, f"get_{name}_display", None)
    return display() if callable(display) and value not in (None, "") else value


DEVICE_ABBREVIATIONS = {
    "nasal_cannula": "NC", "blow_by": "BB", "high_flow_nasal_cannula": "HFNC", "facemask": "FM",
    "non_rebreather": "NRB", "venturi_mask": "VM", "cpap": "CPAP", "bipap": "BiPAP", "mechanical_ventilation": "MV",
}


@register.filter
def device(code):
    """Short oxygen-device label for the timeline grid."""
    return DEVICE_ABBREVIATIONS.get(code, code)


def _stored_text(a, grade_name: str, minimum_name: str) -> str:
    from toxicity.models import OBSERVATIONS
    from toxicity.preview import crs_missing, grade_text, icans_missing

    value = getattr(a, grade_name)
    observations = {name: getattr(a, name) for name in OBSERVATIONS}
    missing = crs_missing(observations) if grade_name.startswith("crs") else icans_missing(observations)
    return grade_text("NE" if value is None else value, getattr(a, minimum_name), missing)


@register.filter
def crs_text(a):
    """A saved day's CRS grade as the live panel says it: 3, or "≥ 3 (oxygen device missing)"."""
    return _stored_text(a, "crs_grade_derived", "minimum_crs_grade")


@register.filter
def icans_text(a):
    return _stored_text(a, "icans_grade_derived", "minimum_icans_grade")
