"""Template context shared by every page."""
from scheduler import urgency


def urgency_scale(request):
    """The urgency levels with their names and colours, so that templates (and the CSS variables and
    scripts they feed) never spell the scale out again."""
    return {"urgency_scale": [
        {"level": level, "name": urgency.NAMES[level], "label": urgency.label(level),
         "colour": urgency.COLOURS[level], "text_colour": urgency.TEXT_COLOURS[level]}
        for level in urgency.LEVELS
    ]}
