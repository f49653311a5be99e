"""The console's ASGI app (Starlette): login, the live board, the alert page, the overview.

- Sessions: a signed cookie (itsdangerous through Starlette's SessionMiddleware), HttpOnly,
  SameSite=strict (Secure with ``https_only``), holding a server-side session id
  (``console/sessions.py``): ending after ``session_max_age_s``, at logout (a copy of the cookie
  is refused too) or when the user leaves the users file.
- Logins are throttled per client address and backed off per account (``console/throttle.py``);
  the client address is the connection's, or a configured proxy's ``X-Forwarded-For``.
- CSRF: a random token per session, in every form and in the ``X-CSRF-Token`` header of the
  page's own requests; every POST without the session's token is refused with 403, and so is a
  POST whose ``Origin`` is another site.
- Without a session only the login page (and its stylesheet) is served: pages redirect to it,
  everything else answers 403.
- Acknowledge/resolve go through ``alerts.lifecycle.Lifecycle``, the same call a keypress makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alerts.clock import Clock
from alerts.db import Database, migrate
from alerts.lifecycle import Lifecycle
from anxin.core.logs import get_logger
from anxin.core.settings import ConsoleSettings
from console.config import users_path
from console.data import ConsoleData, local_time, policies_file
from console.i18n import LANGS, Translator, pick_language
from console.live import DeviceStatus, EventHub
from console.sessions import SessionIds
from console.svg import map_svg, vitals_svg
from console.throttle import LoginThrottle
from console.users import User, UserStore

log = get_logger(__name__)
HERE = Path(__file__).parent
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)


class SecurityHeaders:
    """CSP, no framing, no sniffing, no caching of pages that hold personal data."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


class Console:
    """Everything one console process holds: settings, database, lifecycle, hubs, templates."""

    def __init__(self, settings: Any, cs: ConsoleSettings, clock: Clock):
        self.settings = settings
        self.cs = cs
        self.clock = clock
        dsn = settings.postgres.dsn.get_secret_value()
        self.db = Database(dsn)
        self.lifecycle = Lifecycle(self.db, clock)
        self.users = UserStore(users_path(cs.users, settings.registry))
        directory = None
        pf = policies_file(settings)
        if pf is not None:
            from alerts.policies import DirectorySource

            directory = DirectorySource(pf, settings.registry, settings.registry_reload_s)
            registry: Callable[[], Any] = lambda: directory().registry  # noqa: E731
        else:
            from anxin.core.registry import RegistryWatcher

            watcher = RegistryWatcher(settings.registry, settings.registry_reload_s)
            registry = lambda: watcher.current  # noqa: E731
        from storage.readers import make_reader

        self.reader = make_reader(settings)
        self.data = ConsoleData(
            self.db, registry, directory, self.reader, clock, cs.positions, cs.store_cache_s
        )
        self.hub = EventHub(dsn, cs.poll_s)
        self.status = DeviceStatus(settings.kafka.bootstrap, settings.kafka.status_topic)
        self.stop = asyncio.Event()
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["local_time"] = local_time
        self.throttle = LoginThrottle(
            cs.login_failures,
            cs.login_window_s,
            cs.login_backoff_after,
            cs.login_backoff_s,
            cs.login_backoff_max_s,
        )
        self.sessions = SessionIds(cs.session_max_age_s)

    # -- sessions, users, CSRF -----------------------------------------------------------------

    def user(self, request: Request) -> User | None:
        session = request.session
        name = session.get("u")
        if not isinstance(name, str):
            return None
        if time.time() - float(session.get("t", 0)) > self.cs.session_max_age_s:
            session.clear()
            return None
        if self.sessions.user(session.get("sid")) != name:  # logged out (or another process's)
            session.clear()
            return None
        user = self.users.get(name)
        if user is None:  # removed from the users file: the session ends
            session.clear()
        return user

    @staticmethod
    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not isinstance(token, str):
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return token

    @staticmethod
    def csrf_ok(request: Request, form: Any) -> bool:
        expected = request.session.get("csrf")
        given = request.headers.get("x-csrf-token") or (form.get("csrf") if form else None)
        if not isinstance(expected, str) or not isinstance(given, str):
            return False
        origin = request.headers.get("origin")
        if origin and origin != "null":
            host = request.headers.get("host", "")
            if urlsplit(origin).netloc != host:
                return False
        return hmac.compare_digest(expected.encode(), given.encode())

    def t(self, request: Request) -> Translator:
        return Translator(
            pick_language(request.cookies.get("lang"), request.headers.get("accept-language"))
        )

    def render(self, request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        t = self.t(request)
        flash = request.session.pop("flash", None)
        context = {
            "t": t,
            "lang": t.lang,
            "langs": LANGS,
            "csrf": self.csrf_token(request),
            "user": getattr(request.state, "user", None),
            "flash": flash,
            "i18n_json": orjson.dumps(t.js_strings()).decode(),
            "path": request.url.path,
            **ctx,
        }
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    # -- login ---------------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        if self.user(request) is not None:
            return RedirectResponse("/", 303)
        return self.render(request, "login.html")

    async def login(self, request: Request) -> Response:
        form = await request.form()
        if not self.csrf_ok(request, form):
            return self.render(request, "login.html", 403, error="forbidden")
        # The connection's peer, or what a trusted proxy says (uvicorn's forwarded_allow_ips).
        address = request.client.host if request.client else "-"
        name = str(form.get("username") or "")[:64]
        password = str(form.get("password") or "")[:1024]
        wait = self.throttle.wait(address, name)
        if wait > 0:
            resp = self.render(request, "login.html", 429, error="login_throttled")
            resp.headers["Retry-After"] = str(math.ceil(wait))
            return resp
        user = await run_in_threadpool(self.users.verify, name, password)
        if user is None:
            self.throttle.failed(address, name)
            log.info("console login refused")
            return self.render(request, "login.html", 401, error="login_failed")
        self.throttle.succeeded(name)
        self.sessions.revoke(request.session.get("sid"))
        request.session.clear()  # a new session (id and CSRF token) at every login
        request.session.update(
            {
                "u": user.name,
                "sid": self.sessions.new(user.name),
                "t": time.time(),
                "csrf": secrets.token_urlsafe(32),
            }
        )
        log.info("console login: a %s", user.role)
        return RedirectResponse("/", 303)

    async def logout(self, request: Request) -> Response:
        form = await request.form()
        if not self.csrf_ok(request, form):
            return PlainTextResponse("forbidden", 403)
        self.sessions.revoke(request.session.get("sid"))  # copies of the cookie end here too
        request.session.clear()
        return RedirectResponse("/login", 303)

    async def set_lang(self, request: Request) -> Response:
        lang = request.query_params.get("set", "")
        target = request.query_params.get("next", "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        resp = RedirectResponse(target, 303)
        if lang in LANGS:
            resp.set_cookie("lang", lang, max_age=365 * 86400, httponly=True, samesite="lax")
        return resp

    # -- pages ---------------------------------------------------------------------------------

    async def board(self, request: Request) -> Response:
        alerts = await run_in_threadpool(self.data.open_alerts)
        suspicions = await run_in_threadpool(self.data.suspected_falls)
        return self.render(
            request, "board.html", alerts=alerts, suspicions=suspicions, page="board"
        )

    async def board_rows(self, request: Request) -> Response:
        alerts = await run_in_threadpool(self.data.open_alerts)
        return self.render(request, "_rows.html", alerts=alerts)

    async def board_suspicions(self, request: Request) -> Response:
        suspicions = await run_in_threadpool(self.data.suspected_falls)
        return self.render(request, "_suspicions.html", suspicions=suspicions)

    async def alert_page(self, request: Request) -> Response:
        alert_id = request.path_params["alert_id"]
        info = await run_in_threadpool(self.data.alert, alert_id)
        if info is None:
            return self.render(request, "missing.html", 404)
        resident = info["resident"]
        t = self.t(request)
        positions = await run_in_threadpool(
            self.data.resident_positions, resident, info["row"].device_id
        )
        if not positions and info["row"].position:  # not in the store: where the alert says
            p = info["row"].position
            positions = [SimpleNamespace(lat=p["lat"], lon=p["lon"], acc=p.get("acc"), ts=p["ts"])]
        fences = resident.geofences if resident else []
        end = time.time()
        series = await run_in_threadpool(
            self.data.vitals, info["row"].resident_id, end - 86400, end
        )
        return self.render(
            request,
            "alert.html",
            page="alert",
            info=info,
            a=info["row"],
            map=map_svg(positions, fences),
            chart=vitals_svg(series or {}, end - 86400, end, info["tz"], t) if series else None,
            store_error=series is None,
        )

    async def alert_live(self, request: Request) -> Response:
        info = await run_in_threadpool(self.data.alert, request.path_params["alert_id"])
        if info is None:
            return PlainTextResponse("not found", 404)
        return self.render(request, "_alert_live.html", info=info, a=info["row"])

    async def residents(self, request: Request) -> Response:
        registry = self.data.registry()
        readings = await run_in_threadpool(self.data.device_readings)
        rows = []
        for rid, r in sorted(registry.residents.items()):
            devices = []
            for did, d in sorted(r.devices.items()):
                status = self.status.status.get(did)
                rd = readings.get(did, {})
                devices.append(
                    {
                        "id": did,
                        "what": d.placement or d.type,
                        "status": status[0] if status else "unknown",
                        "battery": rd.get("battery"),
                        "worn": rd.get("worn"),
                        "last_seen": rd.get("last_seen"),
                        "stale": rd.get("last_seen") is not None
                        and d.nominal_interval_s is not None
                        and time.time() - rd["last_seen"] > 2 * d.nominal_interval_s,
                    }
                )
            rows.append({"id": rid, "name": r.name, "tz": r.timezone, "devices": devices})
        return self.render(
            request, "residents.html", page="residents", residents=rows, now=time.time()
        )

    async def act(self, request: Request, action: str) -> Response:
        alert_id = request.path_params["alert_id"]
        form = await request.form()
        wants_json = "application/json" in request.headers.get("accept", "")
        t = self.t(request)
        if not self.csrf_ok(request, form):
            return PlainTextResponse("forbidden: CSRF token missing or wrong", 403)
        user: User = request.state.user
        if not user.can_act:
            return PlainTextResponse(t("not_allowed"), 403)
        note = str(form.get("note") or "").strip()[:500] or None
        call = self.lifecycle.acknowledge if action == "ack" else self.lifecycle.resolve
        outcome = await run_in_threadpool(
            call, alert_id, user.by_role, user.contact_id, "console", note
        )
        if outcome is None:
            return PlainTextResponse(t("no_such_alert"), 404)
        if outcome.first:
            message = t("done_ack" if action == "ack" else "done_resolve")
        else:
            message = t(
                "already", state=t(f"st.{outcome.state}"), by=self.data.by_label(outcome.by) or "?"
            )
        if wants_json:
            return JSONResponse(
                {
                    "first": outcome.first,
                    "state": outcome.state,
                    "by": outcome.by,
                    "message": message,
                }
            )
        request.session["flash"] = message
        target = str(form.get("next") or "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        return RedirectResponse(target, 303)

    async def events(self, request: Request) -> Response:
        q = self.hub.subscribe()

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 1000\n\n"
                while not self.stop.is_set():
                    try:
                        frame = await asyncio.wait_for(q.get(), 15)
                    except TimeoutError:
                        frame = b": keep-alive\n\n"
                    if not frame:
                        break
                    yield frame
            finally:
                self.hub.unsubscribe(q)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # -- wiring --------------------------------------------------------------------------------

    def guard(
        self, handler: Callable[[Request], Awaitable[Response]], page: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        """Only with a session: pages redirect to the login, anything else gets 403."""

        async def guarded(request: Request) -> Response:
            user = self.user(request)
            if user is None:
                if page and request.method == "GET":
                    return RedirectResponse("/login", 303)
                return PlainTextResponse("forbidden: log in first", 403)
            request.state.user = user
            return await handler(request)

        return guarded

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        version = await asyncio.to_thread(migrate, self.db)
        log.info("console: database schema at version %d, %d users", version, len(self.users))
        tasks = [
            asyncio.create_task(self.hub.run(self.stop), name="events"),
            asyncio.create_task(self.status.run(self.stop), name="device-status"),
        ]
        try:
            yield
        finally:
            self.stop.set()
            for q in list(self.hub.subscribers):
                with contextlib.suppress(asyncio.QueueFull):
                    q.put_nowait(b"")
            _, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                self.reader.close()

    def app(self) -> Starlette:
        secret = self.cs.session_secret.get_secret_value() if self.cs.session_secret else None
        if not secret:
            log.warning("console: no ANXIN_CONSOLE__SESSION_SECRET; sessions end with this process")
            secret = secrets.token_urlsafe(48)
        g = self.guard
        routes = [
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/lang", self.set_lang, methods=["GET"]),
            Route("/", g(self.board), methods=["GET"]),
            Route("/board/rows", g(self.board_rows, page=False), methods=["GET"]),
            Route("/board/suspicions", g(self.board_suspicions, page=False), methods=["GET"]),
            Route("/events", g(self.events, page=False), methods=["GET"]),
            Route("/residents", g(self.residents), methods=["GET"]),
            Route("/alerts/{alert_id}", g(self.alert_page), methods=["GET"]),
            Route("/alerts/{alert_id}/live", g(self.alert_live, page=False), methods=["GET"]),
            Route(
                "/alerts/{alert_id}/ack",
                g(lambda r: self.act(r, "ack"), page=False),
                methods=["POST"],
            ),
            Route(
                "/alerts/{alert_id}/resolve",
                g(lambda r: self.act(r, "resolve"), page=False),
                methods=["POST"],
            ),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ]
        middleware = [
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=secret,
                session_cookie=self.cs.session_cookie,
                max_age=self.cs.session_max_age_s,
                same_site=self.cs.same_site,
                https_only=self.cs.https_only,
            ),
        ]
        return Starlette(routes=routes, middleware=middleware, lifespan=self.lifespan)


async def serve(
    settings: Any, cs: ConsoleSettings, clock: Clock, ready_file: Path | None = None
) -> None:
    """Run the console until SIGINT/SIGTERM; ``ready_file`` is written once it listens."""
    import uvicorn

    console = Console(settings, cs, clock)
    config = uvicorn.Config(
        console.app(),
        host=cs.host,
        port=cs.port,
        log_level="warning",
        access_log=False,  # paths hold alert ids only, but a log of who looked at what is not ours
        # X-Forwarded-For/-Proto only from the configured proxies; by default from nobody (uvicorn
        # would otherwise believe any local connection, and the login throttle with it).
        proxy_headers=bool(cs.trusted_proxies),
        forwarded_allow_ips=list(cs.trusted_proxies) or None,
        timeout_graceful_shutdown=3,
    )

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # End the live streams first, so the graceful shutdown does not wait for them.
            console.stop.set()
            for q in list(console.hub.subscribers):
                with contextlib.suppress(asyncio.QueueFull):
                    q.put_nowait(b"")
            super().handle_exit(sig, frame)

    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("console server ended while starting")
        await asyncio.sleep(0.05)  # poll interval while uvicorn binds
    if ready_file is not None:
        ready_file.parent.mkdir(parents=True, exist_ok=True)
        ready_file.write_text(str(time.time()))
    log.info("console listening on http://%s:%d", cs.host, cs.port)
    await task
