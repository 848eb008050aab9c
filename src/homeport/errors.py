"""Domain errors: one small hierarchy, translated to HTTP in exactly one place.

Every layer below the HTTP server raises these; `homeport.server.errors` maps each
class to a status and (where RFC 4791/6352/6578 define one) a DAV precondition
element, and the CLI maps them to messages and exit codes. Nothing decides a
status by looking at an exception's text.
"""

from __future__ import annotations


class HomeportError(Exception):
    """Base of every error Homeport raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(HomeportError):
    """The named user, collection, item or revision does not exist (or is deleted)."""


class AlreadyExists(HomeportError):
    """Something already lives where a new thing was to be created."""


class Forbidden(HomeportError):
    """The acting user may not do this to this resource."""


class AuthenticationFailed(HomeportError):
    """Credentials were missing or wrong."""


class Conflict(HomeportError):
    """The request cannot apply to the current state (e.g. a missing parent collection)."""


class PreconditionFailed(HomeportError):
    """An If-Match / If-None-Match / Overwrite precondition did not hold."""


class InvalidRequest(HomeportError):
    """The request itself is malformed (bad XML, bad header, bad path)."""


class ValidationError(HomeportError):
    """A body was refused by a DAV precondition; `precondition` names the element.

    `namespace` and `precondition` together name the XML element that goes into the
    DAV:error body, e.g. ("urn:ietf:params:xml:ns:caldav", "valid-calendar-data").
    """

    def __init__(self, message: str, namespace: str, precondition: str) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.precondition = precondition


class UidConflict(ValidationError):
    """A second item with the same UID was put into one collection."""

    def __init__(self, message: str, namespace: str, existing_name: str) -> None:
        super().__init__(message, namespace, "no-uid-conflict")
        self.existing_name = existing_name


class TooLarge(ValidationError):
    """A body exceeds the configured maximum resource size."""

    def __init__(self, message: str, namespace: str, limit: int) -> None:
        super().__init__(message, namespace, "max-resource-size")
        self.limit = limit


class TooManyRequests(HomeportError):
    """Too many attempts (e.g. wrong passwords); nothing was tried. Retry after `retry_after` s.

    Raised before any expensive work is done, so a refused attempt costs the server
    nearly nothing and tells the client nothing about whether its credentials are right.
    """

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class InvalidSyncToken(HomeportError):
    """A sync token is unknown, malformed, from another collection or from the future."""


class InsufficientStorage(HomeportError):
    """The disk (or the backend) has no room for this write; nothing was stored."""


class IntegrityError(HomeportError):
    """Stored data does not match its hash or the log disagrees with an index."""


class WouldBlock(Exception):
    """Work asked not to wait found it would have to (a lock held, a body in a file, a
    blocking commit, work too large to do in an event loop).

    Raised before anything is stored; the caller redoes the work where waiting is fine:
    the server answers small reads and writes in its event loop and hands any that
    would block to a worker thread. Deliberately not a
    `HomeportError`: the handlers that turn one bad item into an error status (a
    multiget's "one damaged body does not stop the others") must let this through,
    or a busy database would be reported as missing items.
    """


class ConfigError(HomeportError):
    """The configuration file or an environment variable has a bad value."""
