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
