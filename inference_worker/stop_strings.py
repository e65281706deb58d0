"""Stop strings on the streamed answer: the engine works on token ids, so the service, which has the
decoded text, ends an answer where a stop string begins and never streams part of one."""


def find_stop(text: str, stops, new_chars: int) -> int | None:
    """Where the first stop string begins in ``text``, looking only where the last ``new_chars``
    characters could have completed one; None if none has."""
    found = None
    for stop in stops:
        start = max(0, len(text) - new_chars - len(stop) + 1)
        index = text.find(stop, start)
        if index != -1 and (found is None or index < found):
            found = index
    return found


def partial_stop_length(text: str, stops) -> int:
    """Length of the longest tail of ``text`` that could still grow into a stop string: held back from
    streaming until the next tokens say which."""
    longest = 0
    for stop in stops:
        for length in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:length]):
                longest = length
                break
    return longest
