"""Strict reading of JSON request bodies (RFC 8259) for the routes that take one.

FastAPI reads a body with :func:`json.loads`, which keeps the last of a key sent twice (RFC 8259
section 4 leaves duplicate names to the implementation), so ``{"purpose": "s47_enquiry", "purpose":
"s17_assessment"}`` would be served and audited as ``s17_assessment`` while a proxy, a WAF or a log
reading the first one sees ``s47_enquiry``; and it refuses an integer of more than
:func:`sys.get_int_max_str_digits` digits (4300 by default, CVE-2020-10735) with a ValueError that
FastAPI answers as a body that is not JSON at all.

Routes made with :class:`StrictJsonRoute` read the body once with :func:`json.loads` hooks instead
(``object_pairs_hook``, ``parse_int``) and, before the route's own validation, refuse with 422 (the
ErrorResponse shape, :func:`familyctx_gateway.errors.validation_messages`) a body with a key given more
than once in any object (``json_duplicate_key``) or a number too long to read (``json_number_too_long``),
at the field where it was found: ``purpose``, ``subject.gss_code``. A field the request does not declare
is never named back (errors.py). JSON nested deeper than the parser follows is one 400 saying so
(:class:`JsonNestedTooDeeply`). Anything else is left to FastAPI as before (broken JSON and bytes that
are not UTF-8 are one 400; a body over the limit is 413). The route's body is the parsed document, so
it is read once and what is validated is what was parsed here.
"""

from __future__ import annotations

import email.message
import json
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from familyctx_gateway.errors import GatewayError

__all__ = ["JsonNestedTooDeeply", "StrictJsonRoute", "body_problems", "load_json_body"]


class JsonNestedTooDeeply(GatewayError):
    """400: the body is JSON nested deeper than the parser follows (:func:`json.loads` raises
    RecursionError past about a thousand levels); no request of this API nests more than three."""

    status = 400
    detail = (
        "The request body is JSON nested too deeply (arrays or objects inside one another hundreds of "
        "levels deep): send the flat JSON object this request takes"
    )


class _TooLongNumber:
    """Stands for a JSON integer with more digits than :func:`int` converts (``digits``)."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


class _DuplicateKeys(dict[str, Any]):
    """A JSON object in which ``keys`` were given more than once (holding the last value of each)."""

    __slots__ = ("keys_twice",)

    def __init__(self, pairs: list[tuple[str, Any]], keys_twice: list[str]) -> None:
        super().__init__(pairs)
        self.keys_twice = keys_twice


def load_json_body(body: bytes | str) -> tuple[Any, bool]:
    """``(document, flagged)``: ``body`` parsed as :func:`json.loads` parses it, except that an object
    with a key given more than once is a :class:`_DuplicateKeys` and an integer too long to convert is
    a :class:`_TooLongNumber`; ``flagged`` is True when either was found (see :func:`body_problems`).
    Raises what :func:`json.loads` raises for text that is not JSON (JSONDecodeError, UnicodeDecodeError,
    RecursionError)."""
    flagged = False

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal flagged
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        flagged = True
        return _DuplicateKeys(pairs, [key for key, n in Counter(k for k, _ in pairs).items() if n > 1])

    def parse_int(text: str) -> int | _TooLongNumber:
        nonlocal flagged
        try:
            return int(text)
        except ValueError:  # only past sys.get_int_max_str_digits(): the text is a valid JSON integer
            flagged = True
            return _TooLongNumber(len(text.lstrip("-")))

    document = json.loads(body, object_pairs_hook=pairs_hook, parse_int=parse_int)
    return document, flagged


def body_problems(document: Any) -> list[dict[str, Any]]:
    """Pydantic-style errors (``type``, ``loc`` starting with ``"body"``, ``msg``, ``input`` None: never
    the value) for each key given twice and each number too long to read in ``document`` (from
    :func:`load_json_body`), in document order; [] when there is none. Walks the document without
    recursion (its depth is the parser's to limit)."""
    problems: list[dict[str, Any]] = []
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, _TooLongNumber):
            problems.append(
                {
                    "type": "json_number_too_long",
                    "loc": ("body", *path),
                    "msg": f"a number of {value.digits} digits, too long to read",
                    "input": None,
                }
            )
        elif isinstance(value, dict):
            if isinstance(value, _DuplicateKeys):
                problems.extend(
                    {
                        "type": "json_duplicate_key",
                        "loc": ("body", *path, key),
                        "msg": "key given more than once",
                        "input": None,
                    }
                    for key in value.keys_twice
                )
            stack.extend(((*path, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in reversed(list(enumerate(value))))
    return problems


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body of ``content_type`` as JSON (``application/json`` or ``+json``)."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


class _JsonBodyRequest(Request):
    """A request whose :meth:`json` is :func:`load_json_body`'s document (parsed once, then kept)."""

    #: Whether the document holds a key given twice or a number too long to read.
    flagged = False

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json, self.flagged = load_json_body(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """An APIRoute (``APIRouter(route_class=StrictJsonRoute)``, FastAPI's "custom Request and APIRoute
    class") whose JSON body, when it has one, is read by :func:`load_json_body`: a key given twice or a
    number too long to read is refused with RequestValidationError (422, naming the declared field)
    before the route runs, its dependencies (the token) included."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def strict_json_handler(request: Request) -> Response:
            request = _JsonBodyRequest(request.scope, request.receive)
            if _is_json(request.headers.get("content-type")):
                try:
                    document = await request.json()
                except HTTPException:
                    raise  # the body is over the size limit (413)
                except RecursionError:
                    raise JsonNestedTooDeeply() from None
                except Exception:  # noqa: BLE001, S110 - not JSON at all: FastAPI reads it again and answers
                    pass  # as it always has (400), so there is one place that decides
                else:
                    problems = body_problems(document) if request.flagged else []
                    if problems:
                        raise RequestValidationError(problems)
            return await handler(request)

        return strict_json_handler
