"""The template browser's web app: server-rendered pages over the engines a ``Shelf`` holds.

Every page goes through ``_endpoint``: the ``?token=`` exchange, the bearer token (header or
cookie), the namespace, the page's own work, then the HTML, or an error page with the status
the error's gRPC code maps to. Jinja2 escapes every value (autoescape), and the
Content-Security-Policy allows no script at all: a template's text is shown, never run.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import grpc
from jinja2 import Environment, PackageLoader
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from thoughtbank.echo import clip, echo
from thoughtbank.retriever.errors import (
    INDEX_LOADING_MESSAGE,
    AuthenticationError,
    IndexUnavailableError,
    InvalidRequestError,
    ThoughtbankError,
)
from thoughtbank.retriever.serving.access import AccessTable, Grant
from thoughtbank.retriever.serving.browser.catalog import Catalog, ListingQuery, catalog_of
from thoughtbank.retriever.serving.engine import RetrievalEngine
from thoughtbank.retriever.serving.namespaces import namespace_not_found
from thoughtbank.retriever.types import DEFAULT_K, DEFAULT_NAMESPACE, RetrievalQuery

TOKEN_COOKIE = "thoughtbank_token"
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500
# Numbers in a URL are short: a page of a billion templates has 10 digits.
MAX_NUMBER_CHARS = 12
MAX_PAGE = 10**MAX_NUMBER_CHARS
ORDERS = {"": None, "asc": False, "desc": True}  # None: the sort key's own direction
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
}
SECURITY_HEADERS = {
    # No script may run, whatever a page holds; inline styles only (the bar chart's widths).
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    # A ?token= URL must not reach another site as a Referer.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Shelf:
    """What the browser shows: per namespace, the engine live now (None while it loads), the
    tokens that may read them (read on every request, so a SIGHUP reload applies), and what a
    request for a namespace not on the shelf is answered (a server's ``Namespaces.not_held``)."""

    engines: Callable[[], Mapping[str, RetrievalEngine | None]]
    access: Callable[[], AccessTable] = AccessTable
    not_held: Callable[[str], ThoughtbankError] = namespace_not_found


@dataclass(frozen=True)
class View:
    """The namespace a request reads, and how its pages link to each other."""

    namespace: str
    namespaces: tuple[str, ...]  # those the caller may read
    engine: RetrievalEngine

    @functools.cached_property
    def catalog(self) -> Catalog:
        return catalog_of(self.engine)

    def link(self, path: str, **params: object) -> str:
        """``path`` with ``params`` (empty ones left out) and, when the caller reads more than
        one namespace, this one."""
        if len(self.namespaces) > 1:
            params = {"namespace": self.namespace, **params}
        query = urlencode({k: str(v) for k, v in params.items() if v not in ("", None)})
        return f"{path}?{query}" if query else path


PageResult = tuple[str, dict[str, Any]]  # a Jinja page and its context


def _text(request: Request, name: str, default: str = "") -> str:
    return request.query_params.get(name, default)


def optional_int(request: Request, name: str) -> int | None:
    """Query parameter ``name`` as an integer, None when unset; ``InvalidRequestError`` for
    anything else."""
    text = _text(request, name).strip()
    if not text:
        return None
    if len(text) > MAX_NUMBER_CHARS or not text.removeprefix("-").isdigit():
        raise InvalidRequestError(f"{name} must be an integer, got {echo(text)}")
    return int(text)


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    """Query parameter ``name`` as an integer in [low, high], ``default`` when unset."""
    value = optional_int(request, name)
    if value is None:
        return default
    if not low <= value <= high:
        raise InvalidRequestError(f"{name} must be in [{low}, {high}], got {value}")
    return value


def optional_float(request: Request, name: str) -> float | None:
    """Query parameter ``name`` as a number (the engine checks its range), None when unset."""
    text = _text(request, name).strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidRequestError(f"{name} must be a number, got {echo(text)}") from None


def overview(request: Request, view: View) -> PageResult:
    manifest = view.engine.index.manifest
    largest = max(manifest.task_counts.values(), default=1)
    return "overview.html", {
        "manifest": manifest,
        "bars": [
            (task, count, 100 * count / largest)
            for task, count in sorted(manifest.task_counts.items())
        ],
        "routing": manifest.task_routing,
        "with_outcomes": len(view.catalog.usefulness),
    }


def template_list(request: Request, view: View) -> PageResult:
    order = _text(request, "order")
    if order not in ORDERS:
        raise InvalidRequestError(f"order must be asc or desc, got {echo(order)}")
    query = ListingQuery(
        search=_text(request, "q"),
        task=_text(request, "task"),
        sort=_text(request, "sort"),
        descending=ORDERS[order],
        page=int_param(request, "page", 1, 1, MAX_PAGE),
        per_page=int_param(request, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE),
    )
    page = view.catalog.page(query)
    return "templates.html", {"query": query, "page": page, "usefulness": view.catalog.usefulness}


def template_page(request: Request, view: View) -> PageResult:
    template = view.catalog.template(request.path_params["template_id"])
    return "template.html", {
        "template": template,
        "usefulness": view.catalog.usefulness.get(template.id),
        "neighbours": view.catalog.neighbours(template),
    }


def query_page(request: Request, view: View) -> PageResult:
    text = _text(request, "q")
    k = optional_int(request, "k")
    request_query = RetrievalQuery(
        query=text,
        k=DEFAULT_K if k is None else k,  # the engine checks the range
        task=_text(request, "task"),
        min_score=optional_float(request, "min_score"),
        diversity=optional_float(request, "diversity") or 0.0,
    )
    budget = optional_int(request, "budget")
    if budget is not None and budget < 0:
        raise InvalidRequestError(f"budget must be a number of tokens, at least 0, got {budget}")
    context: dict[str, Any] = {"request_query": request_query, "budget": budget, "result": None}
    if text.strip():
        engine = view.engine
        result = engine.retrieve(request_query)
        context["result"] = result
        context["augmented"] = engine.augment_result(request_query, result, budget)
    return "query.html", context


PAGES: dict[str, tuple[str, Callable[[Request, View], PageResult]]] = {
    "overview": ("/", overview),
    "templates": ("/templates", template_list),
    "template": ("/templates/{template_id}", template_page),
    "query": ("/query", query_page),
}


def _grant(request: Request, access: AccessTable) -> Grant:
    """The caller's grant: its ``Authorization`` header(s), else the cookie ``?token=`` set."""
    sent = [("authorization", value) for value in request.headers.getlist("authorization")]
    cookie = request.cookies.get(TOKEN_COOKIE)
    if not sent and cookie:
        sent = [("authorization", f"Bearer {cookie}")]
    return access.authenticate(sent)


def _token_exchange(request: Request, access: AccessTable) -> Response | None:
    """For a person with a link: a valid ``?token=`` becomes an HttpOnly cookie and the same
    page without the token in its URL (so it stays out of history and logs)."""
    token = request.query_params.get("token")
    if token is None:
        return None
    access.authenticate([("authorization", f"Bearer {token}")])
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
    target = request.url.path + (f"?{urlencode(kept)}" if kept else "")
    response = RedirectResponse(target, status_code=303)
    if not access.open:
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", path="/")
    return response


def _default_namespace(engines: Mapping[str, object], readable: tuple[str, ...]) -> str:
    """The namespace of a request that names none: ``default``, else the only one readable."""
    if DEFAULT_NAMESPACE in engines or not readable:
        return DEFAULT_NAMESPACE
    if len(readable) > 1:
        raise InvalidRequestError(
            f"add ?namespace=NAME to the URL, one of: {clip(', '.join(readable))}"
        )
    return readable[0]


def _view(request: Request, shelf: Shelf, grant: Grant) -> View:
    """The namespace named by ``?namespace=``, else the default one; PERMISSION_DENIED outside
    the caller's grant whether it exists or not, as for the RPCs."""
    engines = shelf.engines()
    readable = tuple(sorted(name for name in engines if grant.allows(name)))
    name = _text(request, "namespace") or _default_namespace(engines, readable)
    grant.check(name)
    if name not in engines:
        raise shelf.not_held(name)
    engine = engines[name]
    if engine is None:
        raise IndexUnavailableError(INDEX_LOADING_MESSAGE)
    return View(name, readable, engine)


def create_app(shelf: Shelf) -> Starlette:
    """The browser over ``shelf``: GET only (it changes nothing), every page escaped."""
    environment = Environment(
        loader=PackageLoader("thoughtbank.retriever.serving.browser", "pages"), autoescape=True
    )
    pages = Jinja2Templates(env=environment)

    def endpoint(page: Callable[[Request, View], PageResult]) -> Callable[[Request], Response]:
        def respond(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = _respond(request, shelf, pages, page)
            except ThoughtbankError as exc:
                response = _error(request, pages, exc)
            response.headers.update(SECURITY_HEADERS)
            response.headers["Server-Timing"] = (
                f"app;dur={(time.perf_counter() - started) * 1e3:.2f}"
            )
            return response

        return respond

    routes = [
        Route(path, endpoint(page), methods=["GET"], name=name)
        for name, (path, page) in PAGES.items()
    ]
    return Starlette(routes=routes)


def _respond(
    request: Request,
    shelf: Shelf,
    pages: Jinja2Templates,
    page: Callable[[Request, View], PageResult],
) -> Response:
    access = shelf.access()
    exchanged = _token_exchange(request, access)
    if exchanged is not None:
        return exchanged
    view = _view(request, shelf, _grant(request, access))
    name, context = page(request, view)
    return pages.TemplateResponse(request, name, {"view": view, **context})


def _error(request: Request, pages: Jinja2Templates, exc: ThoughtbankError) -> Response:
    status = HTTP_STATUS.get(exc.code, 500)
    response = pages.TemplateResponse(
        request, "error.html", {"view": None, "status": status, "message": exc.message}, status
    )
    if isinstance(exc, AuthenticationError):
        response.headers["WWW-Authenticate"] = "Bearer"
    return response
