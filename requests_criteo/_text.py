"""Text from a server made safe for a message; secrets whose repr hides them.

What lives here: :func:`safe_text`, the one place where server text (OAuth error codes and
descriptions, Criteo's titles and trace ids, reason phrases) is redacted and escaped
before it reaches an exception message or the command line's stderr; and :class:`Secret`,
:class:`Secrets` and :class:`Answer`, whose ``repr`` hides what they hold, so that a
traceback's frame locals never show a secret or a token answer. What does not:
deciding which values are secret (the callers know: the client secret, the code, the
refresh token, the bearer token the request carried).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, quote_plus

#: Where a message is cut by default: enough for a title and a trace id.
SHORT = 200


class Secret(str):
    """A string whose ``repr`` is ``'[secure]'``: secrets in frame locals stay unseen.

    Error reporters that capture a traceback's local variables print them with ``repr``.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "'[secure]'"


class Secrets(tuple[str, ...]):
    """A tuple of secrets whose ``repr`` hides them."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)} secrets [secure]>"


class Answer(bytes):
    """The token endpoint's answer, whose ``repr`` hides it: it may echo the form."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<answer of {len(self)} bytes [secure]>"


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def secret_forms(secret: str | None) -> set[str]:
    """*secret* as given and as a form or a URL carries it (none for an empty one)."""
    if not secret:
        return set()
    return {secret, quote_plus(secret), quote(secret, safe="")}


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """*text* with every non-empty secret, as given or URL-encoded, replaced by ``[secure]``.

    Done before any cut: a secret straddling a cut would otherwise leave its first part.
    """
    for secret in secrets:
        for form in secret_forms(secret):
            text = text.replace(form, "[secure]")
    return text


def safe_text(text: str, secrets: Iterable[str | None] = (), limit: int = SHORT) -> str:
    """*text* with secrets replaced by ``[secure]``, made one printable line, cut to *limit*.

    Every non-empty secret is replaced as given and in the URL-encoded forms a server
    echoing a form would send. Characters that are not printable (ESC, CR, LF, other C0 and
    C1 controls, line and paragraph separators, bidirectional overrides) are written as
    ``\\xNN`` or ``\\uNNNN``, so that the text cannot rewrite a terminal or forge a log line.
    """
    text = redact(text, secrets)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else _escaped(c) for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
