"""The dead-letter limit's rules (pure): a run of dead letters, a share of a window."""
from platformkit.consumer import DeadLetterLimit


def first_crossing(limit: DeadLetterLimit, outcomes: list[bool]) -> int | None:
    for i, dead in enumerate(outcomes):
        if limit.crossed_by(dead):
            return i
    return None


def test_a_run_longer_than_the_consecutive_limit_crosses_it_and_a_good_record_resets_the_run():
    limit = DeadLetterLimit(consecutive=3, window=0)
    assert first_crossing(limit, [True] * 3 + [False] + [True] * 3) is None
    assert first_crossing(DeadLetterLimit(consecutive=3, window=0), [True] * 10) == 3


def test_the_ratio_applies_once_the_window_is_full_and_forgets_what_left_it():
    # every other record dead: 50% of a window of 10 is not above 50%
    assert first_crossing(DeadLetterLimit(consecutive=0, window=10, ratio=0.5), [True, False] * 50) is None
    # two of three dead: crosses 50% when the window first fills
    outcomes = [True, True, False] * 20
    assert first_crossing(DeadLetterLimit(consecutive=0, window=10, ratio=0.5), outcomes) == 9
    # many dead letters long ago and good records since: the window forgot them
    limit = DeadLetterLimit(consecutive=0, window=10, ratio=0.5)
    assert first_crossing(limit, [True] * 5 + [False] * 20) is None


def test_defaults_and_env(monkeypatch):
    assert (DeadLetterLimit.from_env().consecutive, DeadLetterLimit.from_env().ratio) == (100, 0.5)
    monkeypatch.setenv("DEAD_LETTER_MAX_CONSECUTIVE", "0")
    monkeypatch.setenv("DEAD_LETTER_WINDOW", "0")
    assert first_crossing(DeadLetterLimit.from_env(), [True] * 5000) is None
