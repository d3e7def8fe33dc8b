"""Errors of the retrieval API, each tied to the gRPC status code it is reported with."""

from __future__ import annotations

import grpc


class ThoughtbankError(Exception):
    """Base class; ``code`` is the gRPC status code that carries this error."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class InvalidRequestError(ThoughtbankError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class TemplateNotFoundError(ThoughtbankError):
    code = grpc.StatusCode.NOT_FOUND


class NamespaceNotFoundError(ThoughtbankError):
    """The server holds no namespace of that name (or the caller may read every one and it is
    not among them)."""

    code = grpc.StatusCode.NOT_FOUND


#: How a server's NOT_FOUND for a namespace begins; clients tell it from a missing template so.
NAMESPACE_NOT_FOUND_PREFIX = "no namespace "


class PermissionDeniedError(ThoughtbankError):
    """A valid token that may not read the namespace asked for."""

    code = grpc.StatusCode.PERMISSION_DENIED


class IndexUnavailableError(ThoughtbankError):
    code = grpc.StatusCode.UNAVAILABLE


#: What a server still loading its index answers (UNAVAILABLE); clients recognise it by this.
INDEX_LOADING_MESSAGE = "no index is loaded yet; retry shortly"


class AuthenticationError(ThoughtbankError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ServerOverloadedError(ThoughtbankError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceededError(ThoughtbankError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class MessageTooLargeError(ThoughtbankError):
    """A message over a size limit of either side: sending it again cannot succeed, so unlike
    ``ServerOverloadedError`` (the same status code) it is not worth a retry."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


# How gRPC words its own size refusals ("Sent message larger than max (N vs. M)", "Received ...").
_SIZE_REFUSAL = "message larger than max"


_BY_CODE = {
    cls.code: cls
    for cls in (
        InvalidRequestError,
        TemplateNotFoundError,
        IndexUnavailableError,
        AuthenticationError,
        PermissionDeniedError,
        ServerOverloadedError,
        DeadlineExceededError,
    )
}


def error_from_rpc(error: grpc.RpcError) -> ThoughtbankError:
    """Map a gRPC error to the matching exception, keeping its code and message."""
    code = error.code()
    details = error.details() or code.name
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and _SIZE_REFUSAL in details:
        return MessageTooLargeError(details, code)
    if code == grpc.StatusCode.NOT_FOUND and details.startswith(NAMESPACE_NOT_FOUND_PREFIX):
        return NamespaceNotFoundError(details, code)
    return _BY_CODE.get(code, ThoughtbankError)(details, code)
