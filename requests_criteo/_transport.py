"""requests as the transport of a credential's token requests.

What lives here: :class:`RequestsTransport`, which a
:class:`~requests_criteo._credentials.Credentials` is given by
:class:`~requests_criteo.CriteoAuth`: it builds the token endpoint on requests
(:mod:`._token`) and says how requests writes a URL, so that the token endpoint is
recognised however its URL was spelled. Another HTTP library's glue brings its own.
"""

from __future__ import annotations

import requests

from ._token import USER_AGENT, TokenEndpoint
from ._token_request import TokenRequest
from .retry import CriteoRetry

__all__ = ["RequestsTransport"]


class RequestsTransport:
    """Builds a credential's TokenEndpoint on requests; pickles without its session.

    :param session: the session token requests go through; a private one per endpoint
        when ``None``. A session belongs to its process: a pickle leaves it out.
    """

    def __init__(self, session: requests.Session | None = None) -> None:
        self.session = session

    def __call__(
        self, url: str, *, timeout: tuple[float, float], deadline: float, retry: CriteoRetry
    ) -> TokenEndpoint:
        request = TokenRequest(url, timeout=timeout, deadline=deadline, retry=retry)
        return TokenEndpoint(request, user_agent=USER_AGENT, session=self.session)

    def __reduce__(self) -> tuple[type[RequestsTransport], tuple[()]]:
        return (RequestsTransport, ())

    @staticmethod
    def as_sent(url: str) -> str:
        """*url* as requests sends it: host lower-cased, escapes normalised."""
        prepared = requests.PreparedRequest()
        prepared.prepare_url(url, None)
        return prepared.url or url
