"""User names (serving.keys), the failed-authentication limiter and log escaping: pure parts of
the investigator controls (issue 17), property-tested."""

from __future__ import annotations

import time
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from serving.keys import normalise_user
from serving.logsafe import escape, field
from serving.middleware import FailedAuthLimiter

INVISIBLE = {"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"}


@given(st.text(max_size=40))
def test_a_user_name_is_refused_with_a_reason_or_normalised_for_good(text):
    try:
        user = normalise_user(text)
    except ValueError as exc:
        assert str(exc)
        assert (any(unicodedata.category(c) in INVISIBLE for c in text)
                or not " ".join(unicodedata.normalize("NFKC", text).split())
                or len(" ".join(unicodedata.normalize("NFKC", text).split())) > 128)
        return
    assert user == normalise_user(user)  # idempotent: a stored name compares as itself
    assert user == user.strip() and "  " not in user
    assert not any(unicodedata.category(c) in INVISIBLE for c in user)
    assert normalise_user(text.upper()) == user or not text.isascii()


@pytest.mark.parametrize("a,b", [("Sup1", "sup1"), ("ｓｕｐ１", "sup1"), (" An ", "an"),
                                 ("Trần  Văn An", "trần văn an"), ("STRASSE", "straße")])
def test_spellings_of_one_person_are_one_user(a, b):
    assert normalise_user(a) == normalise_user(b)


@pytest.mark.parametrize("name", ["sup1\u200b", "\u202esup1", "sup\u00ad1", "a\nb", "",
                                  "   ", "x" * 129])
def test_unusable_user_names_are_refused(name):
    with pytest.raises(ValueError):
        normalise_user(name)


def test_the_limiter_refuses_after_the_limit_and_forgets_after_the_window():
    limiter = FailedAuthLimiter(max_failures=3, window_s=0.3)
    for n in range(1, 4):
        assert limiter.retry_after("10.0.0.1") == 0
        assert limiter.failed("10.0.0.1") == n
    assert limiter.retry_after("10.0.0.1") == 1  # rounded up to whole seconds
    assert limiter.retry_after("10.0.0.2") == 0  # per client
    time.sleep(0.35)
    assert limiter.retry_after("10.0.0.1") == 0


def test_the_limiter_stays_bounded():
    limiter = FailedAuthLimiter(max_failures=2, window_s=60, max_clients=100)
    for i in range(1000):
        limiter.failed(f"c{i}")
    assert len(limiter._failures) == 100


@given(st.text(max_size=60))
def test_an_escaped_log_value_is_one_line_and_one_field(text):
    out = field(text)
    assert "\n" not in out and "\r" not in out and "\u2028" not in out
    assert out.isprintable() or all(unicodedata.category(c) not in INVISIBLE for c in out)
    if " " in out or "=" in out:
        assert out.startswith('"') and out.endswith('"')
    assert escape(text) == text or "\\" in escape(text)
