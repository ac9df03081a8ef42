"""The regex-free pattern predicates decide exactly what the schema's regexes decide."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.spec.patterns import FAST
from pyrunc.spec.validator import _translate_pattern

ALPHABET = "0123456789-.+:/,KMGTPEBRLIMTCAP_abcXYZrwm\n "
SAMPLES = ["1.3.0", "1.0.2-dev", "01.2.3", "1.2", "1.2.3-", "1.2.3+b.1", "1.2.3-rc.1+x", "0-3,5", "0-7:2/4",
           "1-", "", "2MB", "0MB", "1GB", "12KB", "MB:0=10", "RLIMIT_NOFILE", "RLIMIT_", "rwm", "rx",
           "CAP_SYS_ADMIN", "CAP_", "/x", "x", "a\n", "1.2.3\n"]


@pytest.mark.parametrize("pattern", sorted(FAST))
@pytest.mark.parametrize("sample", SAMPLES)
def test_samples_agree(pattern, sample):
    assert FAST[pattern](sample) == bool(re.search(_translate_pattern(pattern), sample))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(FAST)), st.text(alphabet=ALPHABET, max_size=14))
def test_generated_strings_agree(pattern, text):
    assert FAST[pattern](text) == bool(re.search(_translate_pattern(pattern), text))
