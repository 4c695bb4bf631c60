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
