"""Template context shared by every page."""
from scheduler import urgency
from triage_site.permissions import is_dispatcher, is_supervisor


def urgency_scale(request):
    """The urgency levels with their names and colours, so that templates (and the CSS variables and
    scripts they feed) never spell the scale out again."""
    return {"urgency_scale": [
        {"level": level, "name": urgency.NAMES[level], "label": urgency.label(level),
         "colour": urgency.COLOURS[level], "text_colour": urgency.TEXT_COLOURS[level]}
        for level in urgency.LEVELS
    ]}


def roles(request):
    """What the signed-in person may do, so that the menu links to exactly the pages they can open."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"is_dispatcher": False, "is_supervisor": False}
    return {"is_dispatcher": is_dispatcher(user), "is_supervisor": is_supervisor(user)}
