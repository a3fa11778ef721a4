"""`blingsync serve`: the web app, the poll scheduler, the delivery relays and the webhook inbox
worker in one process and one event loop (docs/serve.md).

Why it is shaped this way:

* **One loop, no threads.** uvicorn serves the app with `await server.serve()` beside the
  background loops, so a route's wake-up (a webhook stored, "sync now", a shipment reported)
  reaches its loop as a plain function call, and the service (store, limiters, HTTP clients)
  is shared without locks.
* **A loop that crashes is restarted, never silently dead.** Each background loop runs under a
  supervisor: an exception is logged with its traceback, the loop shows as down in `/readyz`
  and `blingsync_background_loop_up`, and it is restarted after a backoff (1 s doubling to
  60 s) so a persistent fault does not spin.
* **Signals are ours, not uvicorn's.** On SIGINT/SIGTERM the process stops accepting requests,
  lets in-flight requests, import passes and delivery batches finish (up to `--grace`
  seconds), cancels what is left (an import records its run as interrupted and resumes from
  its committed cursor; claimed events come back when their lease ends), closes the service
  and exits 0. uvicorn's own handlers would re-raise the signal after its shutdown and end the
  process with a signal status instead. A second signal stops at once.
* **Housekeeping is a loop like the others**: every `PRUNE_EVERY_S` the retention rules of
  `store/housekeeping.py` remove empty import runs and handled webhooks, so a year of polling
  does not fill the disk. Several processes pruning at once only find less to delete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Final

import httpx
import typer
import uvicorn

from blingsync.commands.common import EXIT_USAGE, console, fail, with_service
from blingsync.delivery.relay import Relay, RelayStats
from blingsync.metrics import LoopStatus, Metrics
from blingsync.service import Service, ServiceError
from blingsync.waiting import first_of

log = logging.getLogger(__name__)

LoopRun = Callable[[asyncio.Event], Awaitable[None]]

FIRST_RESTART_S: Final = 1.0
MAX_RESTART_S: Final = 60.0
HEALTHY_AFTER_S: Final = 60.0
"""A loop that ran this long before crashing starts its backoff afresh."""
RELAY_IDLE_S: Final = 1.0
PRUNE_EVERY_S: Final = 3_600.0
PRUNE_FIRST_AFTER_S: Final = 60.0
"""The first prune waits for the start (migrations, the first polls) to settle."""
DEFAULT_GRACE_S: Final = 25.0
"""Under Kubernetes' default 30 s between SIGTERM and SIGKILL (systemd waits 90 s), so the
drain finishes on our terms."""


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    scheduler: bool = True
    relay: bool = True
    grace_s: float = DEFAULT_GRACE_S


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0 = any free port).")]
    = 8000,
    no_scheduler: Annotated[bool, typer.Option(
        "--no-scheduler", help="Do not poll Bling at each account's interval (another process "
                               "does); webhooks and the API's 'sync now' still import.")] = False,
    no_relay: Annotated[bool, typer.Option(
        "--no-relay", help="Do not deliver outbox events, downstream or back to Bling (another "
                           "process does).")] = False,
    grace: Annotated[float, typer.Option(
        min=0.0, help="Seconds to let in-flight imports and deliveries finish on SIGTERM/Ctrl-C.")]
    = DEFAULT_GRACE_S,
) -> None:
    """Run the web app (REST API, Bling webhooks, OAuth connect, /healthz, /readyz, /metrics),
    the scheduler that polls every account at its interval, the delivery relays and the
    webhook inbox worker, in one process, until SIGTERM or Ctrl-C."""
    options = ServeOptions(host=host, port=port, scheduler=not no_scheduler, relay=not no_relay,
                           grace_s=grace)
    if not host.strip():
        fail("--host must not be empty", EXIT_USAGE)
    with_service(ctx, lambda service: run(service, options))


# --- the process --------------------------------------------------------------------------------


async def run(service: Service, options: ServeOptions, *,
              announce: Callable[[str], None] | None = None,
              ready: Callable[[int], None] | None = None, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM or until `stop` is set (tests run it in-process that way);
    `ready` is called with the bound port once the app accepts connections."""
    from blingsync.delivery.sinks import StoreSinks
    from blingsync.delivery.writeback import writeback_relay
    from blingsync.metrics import MeasuredSinks
    from blingsync.sync.inbox import InboxWorker
    from blingsync.sync.scheduler import Scheduler, ServicePort
    from blingsync.web.app import create_app
    from blingsync.web.deps import Wakeups

    say = announce or _print
    metrics = Metrics()
    stop = stop or asyncio.Event()
    hurry = asyncio.Event()  # a second signal: stop waiting for in-flight work
    loops: dict[str, LoopRun] = {}
    listener = _listen(options.host, options.port)
    try:
        async with httpx.AsyncClient() as http:
            relays: dict[str, Relay] = {}
            if options.relay:
                sinks = MeasuredSinks(StoreSinks(service.store, http, clock=service.now), metrics,
                                      service.store)
                relays["sink"] = Relay(service.store, sinks, clock=service.now)
                relays["writeback"] = writeback_relay(service, clock=service.now)
                for name, relay in relays.items():
                    loops[f"relay:{name}"] = _relay_loop(name, relay, metrics)

            def outbox_written() -> None:
                for relay in relays.values():
                    relay.notify()

            worker = InboxWorker(service, on_saved=outbox_written)
            loops["inbox"] = worker.run_forever
            # Without polling the scheduler still runs "sync now" passes, one per account at a time.
            scheduler = Scheduler(ServicePort(service), metrics=metrics, on_events=outbox_written,
                                  poll=options.scheduler)
            metrics.watch_scheduler(scheduler)
            loops["scheduler"] = scheduler.run_forever
            loops["housekeeping"] = _housekeeping_loop(service)

            app = create_app(service, wakeups=Wakeups(inbox=worker.notify, outbox=outbox_written,
                                                      sync=scheduler.sync_now))
            app.state.metrics = metrics
            server = _Server(uvicorn.Config(app, log_config=None, lifespan="on", access_log=False,
                                            timeout_graceful_shutdown=max(1, int(options.grace_s)),
                                            server_header=False))
            with _signals(lambda sig: _on_signal(sig, stop, hurry, server, metrics, options, say)):
                await _serve(service, options, server, listener, loops, metrics, stop, hurry, say, ready)
    finally:
        listener.close()
    say("stopped")


async def _serve(service: Service, options: ServeOptions, server: uvicorn.Server, listener: socket.socket,
                 loops: dict[str, LoopRun], metrics: Metrics, stop: asyncio.Event, hurry: asyncio.Event,
                 say: Callable[[str], None], ready: Callable[[int], None] | None) -> None:
    """Start the loops and the web server, announce, wait for the stop, drain."""
    supervised = [asyncio.create_task(supervise(name, loop, stop, metrics.loop(name), metrics=metrics),
                                      name=f"loop {name}")
                  for name, loop in loops.items()]
    serving = asyncio.create_task(server.serve(sockets=[listener]), name="web server")
    port = int(listener.getsockname()[1])
    try:
        while not server.started and not serving.done():  # noqa: ASYNC110  (a flag, no event)
            await asyncio.sleep(0.01)
        if serving.done():
            serving.result()  # raises what stopped uvicorn
            raise ServiceError(f"the web server on {options.host}:{port} stopped at start")
        accounts = await service.store.accounts()
        say(_banner(service, options, port, len(accounts)))
        if ready is not None:
            ready(port)
        await first_of(stop.wait(), serving)
    finally:
        stop.set()
        metrics.stopping = True
        server.should_exit = True
        await _drain([serving, *supervised], options.grace_s, hurry)


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: we stop it ourselves (module docstring)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.contextmanager
def _signals(handler: Callable[[int], None]) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handler, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, Windows
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _on_signal(sig: int, stop: asyncio.Event, hurry: asyncio.Event, server: uvicorn.Server,
               metrics: Metrics, options: ServeOptions, say: Callable[[str], None]) -> None:
    name = signal.Signals(sig).name
    if stop.is_set():
        say(f"{name} again: stopping now")
        hurry.set()
        server.force_exit = True
        return
    say(f"{name}: stopping; in-flight imports and deliveries get up to {options.grace_s:.0f} s "
        f"(send it again to stop at once)")
    metrics.stopping = True
    stop.set()


async def _drain(tasks: list[asyncio.Task[None]], grace_s: float, hurry: asyncio.Event) -> None:
    """Let the web server and the loops finish within `grace_s` (sooner on a second signal),
    then cancel what is left and wait for it to unwind."""
    if tasks:
        everything = asyncio.ensure_future(asyncio.wait(tasks))  # cancelling it cancels none of them
        hurried = asyncio.ensure_future(hurry.wait())
        try:
            await asyncio.wait({everything, hurried}, timeout=grace_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            everything.cancel()
            hurried.cancel()
    for task in tasks:
        if not task.done():
            log.warning("%s did not finish within %.0f s; cancelling it", task.get_name(), grace_s)
            task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        if not task.cancelled() and task.exception() is not None:
            log.error("%s ended with an error", task.get_name(), exc_info=task.exception())


def _listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves: a busy port becomes one clear line (and exit 1)
    instead of uvicorn's log and exit, and port 0 tells us the port it got."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServiceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ServiceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _banner(service: Service, options: ServeOptions, port: int, accounts: int) -> str:
    host = options.host if ":" not in options.host else f"[{options.host}]"
    base = f"http://{host}:{port}"
    parts = [
        f"blingsync serving on {base} — {accounts} account{'s' if accounts != 1 else ''}; "
        f"polling {'on' if options.scheduler else 'off (sync now only)'}, "
        f"relays {'on' if options.relay else 'off'}",
        f"  API docs: {base}/api/v1/docs (OpenAPI: {base}/api/v1/openapi.json)",
        f"  health: {base}/healthz, {base}/readyz; metrics: {base}/metrics",
        f"  public URL (OAuth redirects, Bling webhooks): {service.settings.public_url}",
        "  SIGTERM or Ctrl-C to stop",
    ]
    return "\n".join(parts)


def _print(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True)
    sys.stdout.flush()  # a pipe (a process manager, a test) sees each line as it happens


# --- supervision --------------------------------------------------------------------------------


class LoopReturned(RuntimeError):
    """A background loop ended although nobody asked it to stop: a bug, handled as a crash."""


async def supervise(name: str, loop: LoopRun, stop: asyncio.Event, status: LoopStatus, *,
                    metrics: Metrics | None = None, first_delay: float = FIRST_RESTART_S,
                    max_delay: float = MAX_RESTART_S, healthy_after: float = HEALTHY_AFTER_S) -> None:
    """Run `loop(stop)` until `stop` is set, restarting it with backoff whenever it raises (or
    returns while the process still runs). `status` shows its state to /readyz and /metrics."""
    delay = first_delay
    try:
        while not stop.is_set():
            started = time.monotonic()
            status.alive, status.restart_in_s = True, None
            try:
                await loop(stop)
                if stop.is_set():
                    return
                raise LoopReturned(f"background loop {name} returned while the process was still running")
            except Exception as exc:
                if time.monotonic() - started >= healthy_after:
                    delay = first_delay
                status.alive = False
                status.restarts += 1
                status.last_error = type(exc).__name__
                status.restart_in_s = delay
                if metrics is not None:
                    metrics.loop_restarts.labels(name).inc()
                log.exception("background loop %s crashed; restarting it in %.0f s", name, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(max_delay, delay * 2)
    finally:
        status.alive = False


def _relay_loop(name: str, relay: Relay, metrics: Metrics) -> LoopRun:
    """The relay's own loop, each batch's outcome counted in the metrics."""

    def counted(stats: RelayStats) -> None:
        metrics.record_relay(name, stats)

    async def run(stop: asyncio.Event) -> None:
        await relay.run_forever(stop, RELAY_IDLE_S, on_batch=counted)

    return run


def _housekeeping_loop(service: Service, *, first_after_s: float = PRUNE_FIRST_AFTER_S,
                       every_s: float = PRUNE_EVERY_S) -> LoopRun:
    """Prune by the retention rules now and then; a failing database is logged and retried at
    the next turn (a missed prune only leaves rows for the next one)."""

    async def run(stop: asyncio.Event) -> None:
        wait = first_after_s
        while True:
            await first_of(stop.wait(), asyncio.sleep(wait))
            if stop.is_set():
                return
            wait = every_s
            try:
                pruned = await service.store.prune()
            except Exception:
                log.exception("housekeeping: the prune failed; trying again in %.0f s", every_s)
                continue
            if pruned.total:
                log.info("housekeeping: removed %d empty runs, %d old runs, %d handled webhooks, %d "
                         "expired sessions or old failed sign-ins", pruned.empty_runs, pruned.old_runs,
                         pruned.webhooks, pruned.signin_rows)

    return run
