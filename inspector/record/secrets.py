"""Masks secrets before anything is written: the values of arguments that look like secrets
always (the rules: docs/security.md, "Secrets"), and whatever `--redact REGEX` matches, in
every text field the writer stores. Option names, users, hosts and quotes stay readable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

MASK = "***"

# A name holding one of these says its value is a secret (`--db-password`, PGPASSWORD,
# X-Api-Key). Deliberately wide: a false positive only hides a value (`--tokenizer=bert`
# shows as `--tokenizer=***`), a false negative leaks one.
_SECRET_WORDS = ("password", "passwd", "passphrase", "pwd", "token", "secret", "apikey",
                 "api_key", "api-key", "accesskey", "access_key", "access-key", "privatekey",
                 "private_key", "private-key", "credential", "bearer", "cookie")
# Words that are secrets only as a whole part of a name (`DB_PASS`, `--auth`, `--key`, PuTTY's
# `-pw`; not `--passes`, `--author`, `--monkey`). Parts split at - _ . and case changes.
_SECRET_PARTS = frozenset({"pass", "pw", "auth", "key", "passin", "passout", "storepass",
                           "keypass"})
# A flag with one of these parts names a secret but takes none (`--password-stdin`,
# `--no-auth`, `--ask-pass`): the argument after it is something else.
_NO_VALUE_PARTS = frozenset({"no", "ask", "askpass", "stdin", "prompt"})
# Options whose value is USER:SECRET (or USER%SECRET, as smbclient writes it): the user stays.
_USER_OPTIONS = frozenset({"--user", "--proxy-user"})
_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


@dataclass(frozen=True)
class _Command:
    """A program (or subcommand) whose short options take a secret, which no name says."""

    names: str  # a regex of its file name, whole
    secret: frozenset[str] = frozenset()  # `-p SECRET` and `-pSECRET`
    user_secret: frozenset[str] = frozenset()  # `-u USER:SECRET`

    def flag(self, word: str) -> str | None:
        """The option taking a secret that `word` is or begins with (`-p`, `-pSECRET`)."""
        return next((f for f in self.secret | self.user_secret if word.startswith(f)), None)


# Once one of these names is seen (as a word, a path's last part, anywhere in the command:
# after `sudo`, `docker exec C`, inside `sh -c`), its options are read as it reads them.
_COMMANDS = (
    _Command(r"mysql\w*|mariadb[\w-]*", frozenset({"-p"})),
    _Command(r"(?:redis|valkey|keydb)-cli", frozenset({"-a"})),
    _Command(r"curl", frozenset({"-b"}), frozenset({"-u", "-U"})),  # -b: cookies
    _Command(r"https?|httpie", user_secret=frozenset({"-a"})),
    _Command(r"sshpass", frozenset({"-p"})),
    _Command(r"ldap\w+", frozenset({"-w"})),
    _Command(r"mongo\w*", frozenset({"-p"})),
    _Command(r"sqlcmd|bcp", frozenset({"-P"})),
    _Command(r"zip|unzip", frozenset({"-P"})),
    _Command(r"7z\w*|(?:un)?rar", frozenset({"-p"})),
    _Command(r"openssl", frozenset({"-k"})),
    _Command(r"smbclient|rpcclient|smbmap", user_secret=frozenset({"-U"})),
    _Command(r"login", frozenset({"-p"})),  # docker/podman/helm login -p
)
_COMMAND_NAMES = re.compile("|".join(f"(?P<c{i}>{c.names})" for i, c in enumerate(_COMMANDS)))

# NAME=VALUE, --NAME=VALUE, `NAME: VALUE` and JSON's `"NAME": "VALUE"` inside one text. A
# colon needs a space after it (`tokens.py:12` in a stack is a file and a line) unless the
# name is quoted. A quoted value is masked inside its quotes.
# An unquoted value of a bare NAME=VALUE ends at ; & | , (`mount -o password=x,uid=1`, a
# shell's `PASS=x; cmd`); an option's (`--password=a;b`) runs to the next space.
_ASSIGNED = re.compile(
    r"""(?<![\w.-])(?P<name>(?P<dash>-{1,2})?[A-Za-z_][\w.-]*)"""
    r"""(?P<sep>\s*=\s*|:\s+|(?P<q>["'])\s*[:=]\s*)"""
    r"""(?P<value>"[^"]*"?|'[^']*'?|(?(dash)[^\s'"]+|[^\s'";&|,]+))""")
# `Authorization: Bearer X`, `Authorization: Basic X` (an HTTP header given to curl, say)
_AUTHORIZATION = re.compile(r"(?i)(authorization\s*[:=]\s*(?:(?:bearer|basic|token|digest)\s+)?)"
                            r"([^\s'\"]+)")
# `Cookie: a=1; b=2`: the whole header's value, to the end of the text or a quote
_COOKIE = re.compile(r"(?i)(\b(?:set-)?cookie\s*:\s*)([^\r\n'\"]+)")
# scheme://user:password@host: the password may hold `/` and `@` (written unencoded), so it
# runs to the last `@` followed by a host and the end of the authority.
_URL_PASSWORD = re.compile(r"""(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@'"]*:)([^\s'"]+)"""
                           r"""(@(?:[\w.-]+|\[[0-9a-f:.%]+\])(?::\d*)?(?=[/?#\s'"]|$))""")
# scheme://TOKEN@host: a user that is a token (GitHub's, GitLab's, Slack's, or 20+ characters)
_URL_TOKEN = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)((?:gh[pousr]_|github_pat_|glpat-|xox[a-z]-)"
                        r"[\w-]+|[\w-]{20,})(@)")
# A shell word: quoted parts stay one word; separators (; & | ( ) < >) end it.
_WORD = re.compile(r"""(?:"[^"]*"?|'[^']*'?|\\.|[^\s;&|()<>"'\\])+""")
# Every name and header rule needs one of these: a text without any (nearly all) is left at
# once (substring tests on the lowered text: several times faster than a case-blind regex).
_MAYBE = ("pass", "pw", "token", "secret", "key", "credential", "bearer", "cookie", "auth",
          "://", "-user")
# The word rules need a flag: a word that starts with `-`.
_FLAG = re.compile(r"(?:^|\s)['\"]?-")


def _is_secret_name(name: str) -> bool:
    name = name.lstrip("-")
    lowered = name.lower()
    return (any(word in lowered for word in _SECRET_WORDS)
            or any(part.lower() in _SECRET_PARTS for part in _PARTS.findall(name)))


def _takes_secret(flag: str) -> bool:
    """`--password`, `-pw`, `--auth`: a flag alone whose next argument is its secret."""
    if not re.fullmatch(r"--?[A-Za-z][\w.-]+", flag) or not _is_secret_name(flag):
        return False
    return not any(part.lower() in _NO_VALUE_PARTS for part in _PARTS.findall(flag))


def _hidden(word: str, start: int = 0, user_kept: bool = False) -> str:
    """`word` with its value (from `start`: after a glued flag) masked, its quotes kept;
    USER:SECRET keeps its user."""
    quote = word[0] if word[:1] in ("'", '"') else ""
    closed = bool(quote) and len(word) > 1 and word.endswith(quote)
    start = max(start, len(quote))
    end = len(word) - 1 if closed else len(word)
    if user_kept:
        cuts = [i for i in (word.find(":", start, end), word.find("%", start, end)) if i >= 0]
        if not cuts:
            return word  # a user alone (curl asks for the password)
        start = min(cuts) + 1
    return word[:start] + MASK + word[end:]


def _assigned(m: re.Match[str]) -> str:
    if m["name"] in _USER_OPTIONS:
        return m["name"] + m["sep"] + _hidden(m["value"], user_kept=True)
    if not _is_secret_name(m["name"]):
        return m[0]
    return m["name"] + m["sep"] + _hidden(m["value"])


def _mask_in_text(value: str) -> str:
    """The rules that read one text alone: assignments, headers, URLs."""
    lowered = value.lower()
    if not any(word in lowered for word in _MAYBE):
        return value
    if "authorization" in lowered:
        value = _AUTHORIZATION.sub(lambda m: m.group(1) + MASK, value)
    if "cookie" in lowered:
        value = _COOKIE.sub(lambda m: m.group(1) + MASK, value)
    value = _ASSIGNED.sub(_assigned, value)
    if "://" in lowered:
        value = _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), value)
        value = _URL_TOKEN.sub(lambda m: m.group(1) + MASK + m.group(3), value)
    return value


class _Words:
    """The rules that read words in order (`-p SECRET`, `--auth X`): a flag's value may be the
    next argument, or the next word of the same `sh -c` script."""

    def __init__(self) -> None:
        self.command: _Command | None = None
        self.pending: bool | None = None  # the next word is a secret (True: USER:SECRET)

    def masks(self, text: str) -> Iterator[tuple[int, int, str]]:
        """(start, end, replacement) for the words of `text` that are secrets."""
        for m in _WORD.finditer(text):
            replacement = self._word(m[0])
            if replacement is not None:
                yield m.start(), m.end(), replacement

    def _word(self, word: str) -> str | None:
        pending, self.pending = self.pending, None
        if pending is not None and not word.startswith("-"):
            return _hidden(word, user_kept=pending)
        bare = word.strip("'\"")
        if not bare.startswith("-"):
            named = _COMMAND_NAMES.fullmatch(os.path.basename(bare))
            if named is not None and named.lastgroup is not None:
                self.command = _COMMANDS[int(named.lastgroup[1:])]
            return None
        command = self.command
        flag = command.flag(bare) if command is not None else None
        if command is not None and flag is not None:
            user = flag in command.user_secret
            if bare == flag:
                self.pending = user
                return None
            return _hidden(word, word.index(flag) + len(flag), user_kept=user)  # -pSECRET
        if bare in _USER_OPTIONS:
            self.pending = True
        elif _takes_secret(bare):
            self.pending = False
        return None


def _apply(text: str, masks: Sequence[tuple[int, int, str]]) -> str:
    for start, end, replacement in reversed(masks):
        text = text[:start] + replacement + text[end:]
    return text


class SecretMask:
    """Masks the values of secret-looking arguments and, if given, matches of `pattern`."""

    def __init__(self, pattern: str | None = None) -> None:
        self.extra = re.compile(pattern) if pattern else None

    def text(self, value: str) -> str:
        """A text alone (a name, a path, a stack frame, a meta value)."""
        if self.extra is not None:
            value = self.extra.sub(MASK, value)
        if _FLAG.search(value):
            value = _apply(value, list(_Words().masks(value)))
        return _mask_in_text(value)

    def command(self, argv: Sequence[str]) -> list[str]:
        """A command line: a flag's secret may be the next argument."""
        words = _Words()
        out = []
        for arg in argv:
            if self.extra is not None:
                arg = self.extra.sub(MASK, arg)
            out.append(_mask_in_text(_apply(arg, list(words.masks(arg)))))
        return out
