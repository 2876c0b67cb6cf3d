"""Masks secrets before anything is written: the values of arguments that look like secrets
(`--password=X`, `--token X`, `API_KEY=X`, `Authorization: Bearer X`, `user:pass@` in a
URL) always, and whatever `--redact REGEX` matches, in every text field the writer stores.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MASK = "***"

# A name that says its value is a secret. Deliberately narrow ("auth" alone would mask
# --author=...): a false positive only hides a value, a false negative leaks one.
_SECRET_NAME = (r"[\w.-]*(?:password|passwd|passphrase|pwd|token|secret|api[_-]?key|apikey"
                r"|access[_-]?key|private[_-]?key|credentials?)[\w.-]*")
# NAME=VALUE, --NAME=VALUE or `NAME: VALUE` inside one argument (also `PASSWORD=x` in a
# `sh -c` script); the value runs to whitespace, a quote or a separator. A colon needs a
# space after it: `tokens.py:12` in a stack is a file and a line.
_ASSIGNED = re.compile(rf"(?i)((?<![\w.-])-{{0,2}}{_SECRET_NAME}(?:\s*=\s*|:\s+))([^\s'\";&|,]+)")
# `Authorization: Bearer X`, `Authorization: Basic X` (an HTTP header given to curl, say)
_AUTHORIZATION = re.compile(r"(?i)(authorization\s*[:=]\s*(?:(?:bearer|basic|token|digest)\s+)?)"
                            r"([^\s'\"]+)")
# scheme://user:password@host
_URL_PASSWORD = re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^/\s:@]*:)([^/\s@]+)(@)")
# Every pattern above needs one of these: a text without any (nearly all) is left at once
# (substring tests on the lowered text: several times faster than a case-blind regex).
_MAYBE = ("pass", "pwd", "token", "secret", "key", "credential", "authorization", "://")
# An argument that is only a secret's flag name: the next argument is its value.
_FLAG_ONLY = re.compile(rf"(?i)--?{_SECRET_NAME}")


class SecretMask:
    """Masks the values of secret-looking arguments and, if given, matches of `pattern`."""

    def __init__(self, pattern: str | None = None) -> None:
        self.extra = re.compile(pattern) if pattern else None

    def text(self, value: str) -> str:
        if self.extra is not None:
            value = self.extra.sub(MASK, value)
        lowered = value.lower()
        if not any(word in lowered for word in _MAYBE):
            return value
        value = _AUTHORIZATION.sub(lambda m: m.group(1) + MASK, value)
        value = _ASSIGNED.sub(lambda m: m.group(1) + MASK, value)
        return _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), value)

    def command(self, argv: Sequence[str]) -> list[str]:
        out: list[str] = []
        secret_next = False
        for arg in argv:
            out.append(MASK if secret_next and not arg.startswith("-") else self.text(arg))
            secret_next = _FLAG_ONLY.fullmatch(arg) is not None
        return out
