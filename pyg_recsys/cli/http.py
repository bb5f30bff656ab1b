"""A small JSON-over-HTTP service for a loaded run (standard library:
:class:`http.server.ThreadingHTTPServer`).

* ``GET /health``: ``{"status": "ok", "model", "dataset", "task",
  "num_items", "num_users"}``.
* ``GET /recommend?user=ID&k=10``: the ``k`` best items for a user (known
  items excluded): ``{"user": ID, "k": 10, "items": [{"item": ID,
  "score": s}, ...]}``.  For next-item runs over per-user sequences, the
  user's history is the session.
* ``POST /recommend`` with a JSON body ``{"session": [ID, ...], "k": 10}``
  (next-item runs; the session's own items excluded) or ``{"user": ID,
  "k": 10}``.

A bad request gets a 4xx answer ``{"error": message}`` and the server
goes on: 400 for a malformed body, query or ``k``; 404 for an unknown
user, item or path; 405 for another method; 408 for a body that does not
arrive; 411 for a body without a Content-Length; 413 for a body over
:data:`MAX_BODY` bytes.  ``k`` defaults to 10 (or the number of items,
when fewer).  Requests are answered one model call at a time
(a lock), each by its own thread.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pyg_recsys.cli.runs import LoadedRun, UnknownIdError
from pyg_recsys.cli.tasks import UserError

log = logging.getLogger(__name__)

#: largest request body accepted, in bytes
MAX_BODY = 1 << 20
#: largest ``k`` a request may ask for
MAX_K = 1000


class BadRequest(Exception):
    """A request the service answers with a 4xx status."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _k(value: Any, num_items: int) -> int:
    if isinstance(value, str):
        value = value.strip()
        if not re.fullmatch(r'[+-]?[0-9]{1,9}', value):
            raise BadRequest(HTTPStatus.BAD_REQUEST,
                             f'k must be an integer, got {value[:20]!r}')
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(HTTPStatus.BAD_REQUEST,
                         f'k must be an integer, got {value!r}')
    high = min(MAX_K, num_items)
    if not 1 <= value <= high:
        raise BadRequest(HTTPStatus.BAD_REQUEST,
                         f'k must be in [1, {high}], got {value}')
    return value


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int)
                                      and not isinstance(value, bool))


class RecommendService:
    """What the handler calls: answers requests of one loaded run.

    Args:
        run: The :class:`~pyg_recsys.serving.LoadedRun`.
    """

    def __init__(self, run: LoadedRun) -> None:
        self.run = run
        self.lock = threading.Lock()

    def health(self) -> dict[str, Any]:
        run = self.run
        return dict(status='ok', model=run.args.model,
                    dataset=run.args.dataset, task=run.task,
                    num_items=run.num_items,
                    num_users=len(run.ids.get('user', ())))

    def recommend(self, user: Any = None, session: Any = None,
                  k: Any = None) -> dict[str, Any]:
        k = _k(min(10, self.run.num_items) if k is None else k,
               self.run.num_items)
        if (user is None) == (session is None):
            raise BadRequest(HTTPStatus.BAD_REQUEST,
                             'give either "user" or "session"')
        if session is not None and (not isinstance(session, list)
                                    or not session
                                    or not all(map(_is_id, session))):
            raise BadRequest(HTTPStatus.BAD_REQUEST,
                             '"session" must be a non-empty list of item '
                             'ids (strings or integers), e.g. [214, 5]')
        if user is not None and not _is_id(user):
            raise BadRequest(HTTPStatus.BAD_REQUEST,
                             f'"user" must be an id, a string or an '
                             f'integer (e.g. "196"), got {user!r}')
        try:
            with self.lock:
                recs = self.run.recommend(user=user, session=session, k=k)
        except UnknownIdError as e:
            raise BadRequest(HTTPStatus.NOT_FOUND, str(e)) from None
        except UserError as e:
            raise BadRequest(HTTPStatus.BAD_REQUEST, str(e)) from None
        out: dict[str, Any] = dict(k=k, items=[
            dict(item=i, score=s) for i, s in recs])
        if user is not None:
            out['user'] = user
        else:
            out['session'] = session
        return out


class _Handler(BaseHTTPRequestHandler):
    server_version = 'pyg-recsys'
    protocol_version = 'HTTP/1.1'
    #: seconds a connection may stay silent (idle keep-alive, a body
    #: shorter than its Content-Length) before it is closed
    timeout = 30
    service: RecommendService

    def log_message(self, format: str, *args: Any) -> None:
        log.debug('%s %s', self.address_string(), format % args)

    def _send(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        if self.close_connection:
            self.send_header('Connection', 'close')
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, fn) -> None:
        try:
            self._send(HTTPStatus.OK, fn())
        except BadRequest as e:
            self._send(e.status, {'error': str(e)})
        except TimeoutError:
            self.close_connection = True
            self._send(HTTPStatus.REQUEST_TIMEOUT,
                       {'error': f'the request body did not arrive within '
                                 f'{self.timeout} s'})
        except Exception as e:  # the server keeps serving
            log.exception('internal error')
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR,
                       {'error': f'internal error: {type(e).__name__}'})

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if url.path == '/health':
            return self._answer(self.service.health)
        if url.path != '/recommend':
            return self._send(HTTPStatus.NOT_FOUND,
                              {'error': f'no such path {url.path!r}; use '
                                        f'/recommend or /health'})

        def get() -> dict[str, Any]:
            try:
                query = parse_qs(url.query, keep_blank_values=True,
                                 strict_parsing=bool(url.query))
            except ValueError as e:
                raise BadRequest(HTTPStatus.BAD_REQUEST,
                                 f'malformed query: {e}') from None
            unknown = set(query) - {'user', 'k'}
            if unknown:
                raise BadRequest(HTTPStatus.BAD_REQUEST,
                                 f'unknown parameters {sorted(unknown)}; '
                                 f'use user and k (POST a JSON body for a '
                                 f'session)')
            if 'user' not in query:
                raise BadRequest(HTTPStatus.BAD_REQUEST,
                                 'GET /recommend needs ?user=ID')
            twice = sorted(key for key, v in query.items() if len(v) > 1)
            if twice:
                raise BadRequest(HTTPStatus.BAD_REQUEST,
                                 f'give {" and ".join(twice)} once')
            return self.service.recommend(user=query['user'][0],
                                          k=query.get('k', [None])[0])

        self._answer(get)

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if url.path != '/recommend':
            self.close_connection = True  # its body is left unread
            return self._send(HTTPStatus.NOT_FOUND,
                              {'error': f'no such path {url.path!r}; POST '
                                        f'to /recommend'})

        def post() -> dict[str, Any]:
            raw = self._body()
            try:
                body = json.loads(raw.decode('utf-8'))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise BadRequest(HTTPStatus.BAD_REQUEST,
                                 f'malformed JSON body: {e}') from None
            if not isinstance(body, dict):
                raise BadRequest(HTTPStatus.BAD_REQUEST,
                                 'the body must be a JSON object, e.g. '
                                 '{"session": [1, 2], "k": 10}')
            unknown = set(body) - {'user', 'session', 'k'}
            if unknown:
                raise BadRequest(HTTPStatus.BAD_REQUEST,
                                 f'unknown fields {sorted(unknown)}; use '
                                 f'user or session, and k')
            return self.service.recommend(user=body.get('user'),
                                          session=body.get('session'),
                                          k=body.get('k'))

        self._answer(post)

    def _body(self) -> bytes:
        """The request body, read whole; on any answer that does not
        read it, the connection closes (its bytes would be read as the
        next request)."""
        length = self.headers.get('Content-Length')
        if length is None or 'chunked' in self.headers.get(
                'Transfer-Encoding', '').lower():
            self.close_connection = True
            raise BadRequest(HTTPStatus.LENGTH_REQUIRED,
                             'send the JSON body with a Content-Length '
                             '(chunked bodies are not read)')
        if not re.fullmatch(r'[0-9]{1,12}', length.strip()):
            self.close_connection = True
            raise BadRequest(HTTPStatus.BAD_REQUEST,
                             f'Content-Length must be a number of bytes '
                             f'>= 0, got {length[:20]!r}')
        size = int(length)
        if size > MAX_BODY:
            self.close_connection = True
            raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                             f'body of {size} bytes; at most {MAX_BODY}')
        return self.rfile.read(size)

    def _not_allowed(self) -> None:
        self.close_connection = True  # a body, if any, is left unread
        self._send(HTTPStatus.METHOD_NOT_ALLOWED,
                   {'error': f'{self.command} is not served; use GET or '
                             f'POST'})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed  # noqa: N815


def make_server(run: LoadedRun, host: str = '127.0.0.1', port: int = 8000
                ) -> ThreadingHTTPServer:
    """A server bound to ``host:port`` (``port=0``: a free port, read it
    from ``server.server_address``); call ``serve_forever()`` to serve
    and ``shutdown()`` from another thread to stop."""
    handler = type('Handler', (_Handler,),
                   {'service': RecommendService(run)})
    return _Server((host, port), handler)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # the standard library's backlog of 5 makes the connections beyond it
    # wait for a SYN retry (about a second) when many clients connect at
    # once
    request_queue_size = 128


__all__ = ['MAX_BODY', 'MAX_K', 'BadRequest', 'RecommendService',
           'make_server']
