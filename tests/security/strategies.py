"""Hypothesis strategies for hostile input, shared by the form and websocket tests."""
import json

from hypothesis import strategies as st

SQL_LOOKING = [
    "'; DROP TABLE intake_medicalrequest; --",
    "\" OR 1=1 --",
    "1; DELETE FROM auth_user WHERE 1=1",
    "' UNION SELECT username, password FROM auth_user --",
    "Robert'); DROP TABLE simulation_simulationrun;--",
    "%' OR text LIKE '%",
    "100%_ off \\ backslash",
]
HTML_AND_SCRIPT = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(document.cookie)>",
    "\"><svg onload=alert(1)>",
    "javascript:alert(1)",
    "{{ 7*7 }} {% csrf_token %} ${7*7}",
    "</textarea><script>fetch('/admin/')</script>",
]
CONTROL = "".join(chr(c) for c in range(32)) + "\x7f\u200b\u202e\ufeff"
BOUNDARY_LENGTHS = [0, 1, 3999, 4000, 4001, 100_000]

control_text = st.text(alphabet=st.sampled_from(list(CONTROL) + list("ab ")), min_size=1, max_size=30)
# Characters from the whole of Unicode except surrogates (which no browser can send as UTF-8).
any_text = st.text(max_size=300)
whitespace = st.text(alphabet=" \t\r\n\u00a0\u2003\u3000", max_size=20)
boundary_text = st.builds(lambda n, c: c * n, st.sampled_from(BOUNDARY_LENGTHS), st.sampled_from(["x", "é", "🚑"]))
# Padding around an otherwise fine text: stripped before the length check.
padded = st.builds(lambda pad, n: pad + "y" * n + pad, whitespace, st.sampled_from([3998, 4000, 4001]))

hostile_text = st.one_of(
    st.just(""), whitespace, any_text, control_text, boundary_text, padded,
    st.sampled_from(SQL_LOOKING), st.sampled_from(HTML_AND_SCRIPT),
    st.builds(lambda a, b: a + b, st.sampled_from(SQL_LOOKING + HTML_AND_SCRIPT), any_text),
)

# Values that are not text at all, as a browser-less client might send them.
wrong_type_values = st.sampled_from(["-1", "5", "1.5", "1e3", "NaN", "inf", "-0", "99999999999999999999999",
                                     "true", "null", "[]", "{}", "0x10", "٣", "２", " 3 ", ""])

# JSON values of any shape, for websocket messages.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
message_types = st.one_of(st.sampled_from(["", "REFRESH", "refresh ", "board", "request", "answer.delta",
                                           "worker.stats", "request.changed", "websocket.disconnect",
                                           "__init__", "send_snapshot", "charts"]),
                          st.text(max_size=30), st.integers(), st.none(), st.lists(st.just("refresh"), max_size=2))
json_messages = st.one_of(
    json_values,
    st.builds(lambda t, extra: {"type": t, **extra}, message_types, st.dictionaries(st.text(max_size=10), json_values,
                                                                                    max_size=3)),
)


def encode(value):
    return json.dumps(value)


not_json_text = st.one_of(
    # Channels' test communicator cannot send an empty frame, so none here (the consumer treats "" as not JSON).
    st.sampled_from([" ", "{", "}", "{\"type\":", "refresh", "{'type': 'refresh'}", "[1,2", "\x00",
                     "{\"type\": \"refresh\"} trailing", "\ufeff{\"type\": \"refresh\"}"]),
    st.text(min_size=1, max_size=200).filter(lambda s: not _is_json(s)),
)
huge_text = st.builds(lambda n, c: c * n, st.sampled_from([70_000, 1_000_000]), st.sampled_from(["a", "é", "{"]))
deep_json = st.builds(lambda n: "[" * n + "]" * n, st.sampled_from([1_000, 100_000]))
binary_frames = st.binary(min_size=1, max_size=200)


def _is_json(text):
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
