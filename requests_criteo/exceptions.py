"""The exceptions requests-criteo raises, and nothing else.

Every one of them is a :class:`requests.exceptions.RequestException`, so code that
already catches requests' errors keeps working when it starts using requests-criteo::

    RequestException
     +-- CriteoAuthError                 getting or using a token failed
     |    +-- TokenRequestError          the token endpoint said no, or could not be reached
     |    |    +-- ConsentRequiredError  a code or refresh token was refused: consent again
     |    +-- InvalidTokenResponse       the token endpoint answered something unusable
     |    +-- InsecureTransportError     a token or secret would travel without TLS
     |    +-- MissingCredentialsError    an environment variable with credentials is unset
     |    +-- TokenStoreError            a store's file untrusted or unusable, its lock busy
     +-- HTTPError
          +-- CriteoAPIError             the API answered 4xx/5xx (raise_for_status)

An exception carries what a person needs to act (HTTP status, the OAuth error code
and its description, Criteo's trace id) and never a client secret, a token or a body.
Arguments that are wrong in themselves raise plain :class:`ValueError` or
:class:`TypeError` before any network work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from requests.exceptions import HTTPError, RequestException

if TYPE_CHECKING:
    from requests import Response

    from .envelope import Problem

__all__ = [
    "ConsentRequiredError",
    "CriteoAPIError",
    "CriteoAuthError",
    "InsecureTransportError",
    "InvalidTokenResponse",
    "MissingCredentialsError",
    "TokenRequestError",
    "TokenStoreError",
]


class CriteoAuthError(RequestException):
    """Getting or using a Criteo token failed.

    The root of requests-criteo's exceptions; catch it to handle every
    authentication problem at once::

        try:
            session.get(url)
        except requests_criteo.CriteoAuthError as exc:
            log.error("Criteo authentication failed: %s", exc)
    """


class TokenRequestError(CriteoAuthError):
    """The token endpoint refused the request or could not be reached.

    :ivar status_code: the HTTP status of the last answer, or ``None`` when no answer came.
    :ivar error: the OAuth2 error code (``"invalid_client"``, ``"invalid_grant"``...) or ``None``.
    :ivar error_description: the server's short explanation, trimmed, or ``None``.
    :ivar trace_id: Criteo's trace id when the answer carried one, for Criteo's support.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error: str | None = None,
        error_description: str | None = None,
        trace_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.error_description = error_description
        self.trace_id = trace_id

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the keyword fields through pickling (multiprocessing sends exceptions
        # between processes); the default reduce would call __init__ with args only.
        return (
            _rebuild,
            (
                type(self),
                str(self),
                self.status_code,
                self.error,
                self.error_description,
                self.trace_id,
            ),
        )


def _rebuild(
    cls: type[TokenRequestError],
    message: str,
    status_code: int | None,
    error: str | None,
    error_description: str | None,
    trace_id: str | None,
) -> TokenRequestError:
    return cls(
        message,
        status_code=status_code,
        error=error,
        error_description=error_description,
        trace_id=trace_id,
    )


class ConsentRequiredError(TokenRequestError):
    """An authorization-code app can no longer get tokens: the account must consent again.

    Raised when the token endpoint answers ``invalid_grant`` to a code exchange (the code
    was used already, expired, or its ``redirect_uri`` or PKCE verifier does not match)
    or to a refresh (the refresh token was revoked, expired, or already used), and when
    there is no refresh token to use at all. It is final: nothing is retried. Send the
    user through the consent URL again (``criteo-auth authorize``).
    """


class InvalidTokenResponse(CriteoAuthError):  # noqa: N818 - names what came back
    """The token endpoint answered, but not with a usable bearer token.

    Raised for a body that is not a JSON object, a missing or empty ``access_token``,
    a ``token_type`` other than Bearer, a token that cannot go in an HTTP header, or a
    body too large to be a token. Nothing is cached when it is raised.
    """


class InsecureTransportError(CriteoAuthError, ValueError):
    """A secret or token would travel over plain http to a host that is not loopback.

    Raised when a :class:`~requests_criteo.CriteoAuth` is built, before any socket
    opens. Plain http is accepted only for ``localhost``, ``127.0.0.0/8`` and ``::1``,
    which is where :class:`~requests_criteo.testing.FakeCriteo` listens.
    """


class MissingCredentialsError(CriteoAuthError, ValueError):
    """Credentials were to come from the environment, and a variable is unset or empty.

    :ivar variable: the name of the variable, e.g. ``"CRITEO_CLIENT_SECRET"``.
    """

    def __init__(self, variable: str) -> None:
        super().__init__(
            f"{variable} is not set (or empty): export it, or pass the credentials "
            "to CriteoAuth(client_id, client_secret)"
        )
        self.variable = variable

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.variable,))


class TokenStoreError(CriteoAuthError):
    """A token store cannot be used: its file is not trusted or not usable, or its lock is busy.

    Raised by :class:`~requests_criteo.FileTokenStore` for a token or lock file that is a
    symbolic link, belongs to another user or is writable by others (refused as ssh refuses
    a key file), for every :class:`OSError` on its files (a directory where the file
    should be, a symlink loop, a full disk...), and when its lock stays busy past
    ``lock_timeout``. The message names the path and the reason, never a token; the
    original ``OSError``, if any, is its ``__cause__``.

    :ivar path: the store's file, or ``None`` when the store has no path.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.path))


class CriteoAPIError(HTTPError):
    """A Criteo API call answered 4xx or 5xx; raised by :func:`~requests_criteo.raise_for_status`.

    A :class:`requests.HTTPError`, so ``except requests.HTTPError`` still catches it. Its
    message is one line: status, method and path, the first error's code and title, and
    Criteo's trace id.

    :ivar errors: the parsed ``errors`` (:class:`~requests_criteo.Problem` objects).
    :ivar warnings: the parsed ``warnings``.
    :ivar response: the response, as on every requests exception; ``None`` once pickled
        (a pickle carries no token and no body).
    """

    def __init__(
        self,
        message: str,
        *,
        errors: list[Problem] | None = None,
        warnings: list[Problem] | None = None,
        response: Response | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, response=response)
        self.errors: list[Problem] = list(errors or [])
        self.warnings: list[Problem] = list(warnings or [])
        self._status_code = response.status_code if response is not None else status_code

    def __reduce__(self) -> tuple[object, ...]:
        # The response (its request's Authorization header, its body) stays out of pickles.
        return (
            _rebuild_api_error,
            (type(self), str(self), self.errors, self.warnings, self._status_code),
        )

    @property
    def status_code(self) -> int | None:
        """The HTTP status of the response (kept when the exception is pickled)."""
        return self._status_code

    @property
    def code(self) -> str | None:
        """The first error's code (``"authorization-token-expired"``...), if any."""
        return self.errors[0].code if self.errors else None

    @property
    def trace_id(self) -> str | None:
        """The first error's trace id, for Criteo's support."""
        return self.errors[0].trace_id if self.errors else None


def _rebuild_api_error(
    cls: type[CriteoAPIError],
    message: str,
    errors: list[Problem],
    warnings: list[Problem],
    status_code: int | None,
) -> CriteoAPIError:
    return cls(message, errors=errors, warnings=warnings, status_code=status_code)
