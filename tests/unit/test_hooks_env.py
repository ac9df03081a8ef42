"""Which environment a hook runs with (issue 12 #9): its own `env`, else runc's choice."""

from __future__ import annotations

import os
import subprocess
import sys

from pyrunc.hooks import hook_env, runtime_env


def test_own_env_wins_and_an_empty_list_is_empty():
    assert hook_env({"path": "/x", "env": ["A=1", "B=x=y", "junk"]}, {"C": "3"}) == {"A": "1", "B": "x=y"}
    assert hook_env({"path": "/x", "env": []}, {"C": "3"}) == {}


def test_without_env_the_given_default_or_the_runtime_s_own():
    assert hook_env({"path": "/x"}, {"C": "3"}) == {"C": "3"}
    assert hook_env({"path": "/x", "env": None}, None) == runtime_env()


def test_runtime_env_is_the_environment_as_started_not_python_s_coerced_one():
    """In the C locale CPython adds LC_CTYPE to os.environ (PEP 538); runc's hooks never see it."""
    code = ("import os, sys; sys.path.insert(0, sys.argv[1]); from pyrunc.hooks import runtime_env; "
            "print(sorted(runtime_env())); print('LC_CTYPE' in os.environ)")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-I", "-c", code, repo], env={"PATH": "/bin", "MARK": "1"},
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["[b'MARK', b'PATH']", "True"]
