"""Domain errors. The web layer maps each to one JSON error shape and an HTTP status."""

from __future__ import annotations


class QAError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(QAError):
    status = 400
    code = "invalid_request"


class NotFound(QAError):
    status = 404
    code = "not_found"


class IndexUnavailable(QAError):
    status = 503
    code = "index_unavailable"
