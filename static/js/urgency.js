// The urgency scale (level, name, label, colour, text_colour per level, most urgent first) as
// scheduler/urgency.py defines it; templates/base.html writes it into every page.
"use strict";
const URGENCY_SCALE = JSON.parse(document.getElementById("urgency-scale").textContent);
