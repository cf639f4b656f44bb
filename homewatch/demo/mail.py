"""The demo's post office: a local SMTP sink the gateway sends its alert e-mails to, and a page that
shows what arrived (as MailHog or Mailpit do on :8025).

``MailSink`` starts an SMTP server (aiosmtpd's ``Controller``, in a thread of its own) on 127.0.0.1 and a
free port, and accepts every message for every address: nothing leaves the machine, and the demo's
addresses are on ``.example`` domains (RFC 2606), which no mail server would deliver to anyway. Each
message is kept in memory (the newest ``KEEP`` of them, for the page) and written as an ``.eml`` file
into the demo's working folder, which outlives the page (and the demo too, with ``--data-dir``). The
page is a small Starlette app under uvicorn in a thread, on 127.0.0.1: a list of the messages (received,
to, subject) and each message's text, its links clickable so that the link in an alert's e-mail opens
the demo's web UI. It shows what the e-mails carry and nothing more: by design an alert's e-mail
carries a link, the alert's kind and at most the patient's initials.

The page is a developer's tool beside the demo, not a page of the product: it is in English and has no
login. Left to others: what is sent and to whom (``gateway.alerts``), starting the gateway
(``homewatch.demo.runner``).
"""

from __future__ import annotations

import asyncio
import collections
import email.policy
import html
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

HOST = "127.0.0.1"
SERVER_NAME = "mail.homewatch-demo.localhost"
#: The mail page's port when it is free (MailHog's and Mailpit's web UI).
DEFAULT_PAGE_PORT = 8025
#: Messages kept in memory for the page; every message is also on disk, and counted.
KEEP = 500
# The page lists new mail by reloading itself; a few seconds is quick enough to watch an alert arrive.
REFRESH_S = 5
# Both servers start in well under a second; past this the port is taken or the machine is stuck.
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
# A link in a message's text: up to a space, an angle bracket or a quote, without trailing punctuation.
_URL = re.compile(r"https?://[^\s<>\"']*[^\s<>\"'.,;:!?)]")


class MailError(RuntimeError):
    """The sink or its page could not start; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Mail:
    """One message the sink received."""

    number: int  # 1, 2, ... in the order received
    received_at: datetime  # by the clock the sink was given (the demo's)
    sender: str  # the envelope's MAIL FROM
    recipients: tuple[str, ...]  # the envelope's RCPT TO: whom it was delivered to
    subject: str
    text: str  # the text/plain part, else the whole message as received
    raw: bytes  # the message as received (what the .eml file holds)
    path: Path  # its .eml file


def parse(raw: bytes) -> tuple[str, str, EmailMessage]:
    """The subject, the readable text and the parsed message of ``raw``."""
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)  # what policy.default makes
    body = message.get_body(preferencelist=("plain",))
    try:
        text = body.get_content() if body is not None else raw.decode("utf-8", "replace")
    except (LookupError, ValueError):  # an unknown charset or a broken transfer encoding
        text = raw.decode("utf-8", "replace")
    return str(message.get("subject", "")), str(text), message


class MailBox:
    """The messages received: the newest ``keep`` in memory, every one on disk in ``folder`` and counted
    by recipient. Safe to use from any thread (the SMTP server's and the page's)."""

    def __init__(self, folder: Path, clock: Callable[[], datetime], keep: int = KEEP) -> None:
        self.folder = folder
        self._clock = clock
        self._lock = threading.Lock()
        self._kept: collections.deque[Mail] = collections.deque(maxlen=keep)
        self._count = 0
        self._by_recipient: collections.Counter[str] = collections.Counter()
        # One run's files share a prefix, so a kept --data-dir never overwrites an earlier run's mail.
        self._prefix = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")

    def add(self, sender: str, recipients: Sequence[str], raw: bytes) -> Mail:
        """Keep, write and count one message (blocking: it writes a file)."""
        subject, text, _ = parse(raw)
        with self._lock:
            self._count += 1
            number = self._count
            path = self.folder / f"{self._prefix}-{number:05d}.eml"
            mail = Mail(number, self._clock(), sender, tuple(recipients), subject, text, raw, path)
            self._kept.append(mail)
            self._by_recipient.update(mail.recipients)
        self.folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        return mail

    @property
    def count(self) -> int:
        """Messages received since the start (also those no longer kept in memory)."""
        with self._lock:
            return self._count

    def messages(self) -> list[Mail]:
        """The messages kept in memory, newest first."""
        with self._lock:
            return list(reversed(self._kept))

    def get(self, number: int) -> Mail | None:
        with self._lock:
            return next((mail for mail in self._kept if mail.number == number), None)

    def by_recipient(self) -> dict[str, int]:
        """How many messages each address received, by address."""
        with self._lock:
            return dict(sorted(self._by_recipient.items()))


class _Handler:
    """aiosmtpd's handler: every message to every address is accepted and kept."""

    def __init__(self, box: MailBox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        raw = raw if isinstance(raw, bytes) else str(raw).encode()
        # Writing the file would block the SMTP server's loop; a thread does it.
        await asyncio.to_thread(self.box.add, str(envelope.mail_from), list(envelope.rcpt_tos), raw)
        return "250 Message accepted for delivery"


# -- the page ----------------------------------------------------------------------------------------

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 62rem; padding: 0 1rem;
       color: #1d2430; }
h1 { font-size: 1.4rem; margin-bottom: .2rem; }
p.note { color: #5b6472; margin-top: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #dde2e8; vertical-align: top; }
th { font-weight: 600; color: #5b6472; }
tr:hover td { background: #f4f6f9; }
td.when { white-space: nowrap; font-variant-numeric: tabular-nums; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dt { color: #5b6472; }
dd { margin: 0; }
pre { white-space: pre-wrap; background: #f4f6f9; padding: 1rem; border-radius: 4px; }
a { color: #0b5cad; }
"""
# Mail text is shown, never run: no script, no outside resource; the style above is the only one.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _page(title: str, body: str, refresh: bool = False, status: int = 200) -> HTMLResponse:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_S}">' if refresh else ""
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=_HEADERS)


def _when(mail: Mail) -> str:
    return mail.received_at.strftime("%Y-%m-%d %H:%M:%S")


def _linked(text: str) -> str:
    """``text`` escaped for HTML, its http(s) links made clickable."""
    parts: list[str] = []
    end = 0
    for link in _URL.finditer(text):
        url = html.escape(link[0])
        parts += [html.escape(text[end : link.start()]), f'<a href="{url}">{url}</a>']
        end = link.end()
    parts.append(html.escape(text[end:]))
    return "".join(parts)


def _list_page(box: MailBox, smtp: str) -> HTMLResponse:
    mails = box.messages()
    rows = "".join(
        f'<tr><td class="when">{_when(m)}</td><td>{html.escape(", ".join(m.recipients))}</td>'
        f'<td><a href="/messages/{m.number}">{html.escape(m.subject or "(no subject)")}</a></td></tr>'
        for m in mails
    )
    table = (
        f"<table><thead><tr><th>received</th><th>to</th><th>subject</th></tr></thead><tbody>{rows}</tbody>"
        "</table>"
        if mails
        else "<p>No mail yet: the gateway e-mails a patient's care team and GP when it raises an alert.</p>"
    )
    shown = "" if len(mails) == box.count else f" (the newest {len(mails)} shown)"
    body = (
        "<h1>Mail sent by the demo's gateway</h1>"
        f'<p class="note">{box.count} message(s){shown}, received by the local SMTP sink at {smtp} and kept '
        f"in {html.escape(str(box.folder))}. SYNTHETIC data; nothing leaves this machine. Newest first; "
        f"the page reloads every {REFRESH_S} s.</p>{table}"
    )
    return _page("homewatch demo mail", body, refresh=True)


def _message_page(mail: Mail) -> HTMLResponse:
    _, _, message = parse(mail.raw)
    fields = [
        ("received", _when(mail)),
        ("from", str(message.get("from", mail.sender))),
        ("to", str(message.get("to", ""))),
        ("delivered to", ", ".join(mail.recipients)),
        ("date", str(message.get("date", ""))),
        ("subject", mail.subject),
    ]
    rows = "".join(f"<dt>{name}</dt><dd>{html.escape(value)}</dd>" for name, value in fields)
    body = (
        f'<p><a href="/">&larr; all mail</a></p><h1>{html.escape(mail.subject or "(no subject)")}</h1>'
        f"<dl>{rows}</dl><pre>{_linked(mail.text)}</pre>"
        f'<p class="note"><a href="/messages/{mail.number}/raw">the message as received</a> '
        f"(also in {html.escape(str(mail.path))})</p>"
    )
    return _page(mail.subject or "homewatch demo mail", body)


def mail_app(box: MailBox, smtp: str) -> Starlette:
    """The page: ``/`` lists the messages, ``/messages/N`` shows one, ``/messages/N/raw`` is its source."""

    async def listing(request: Request) -> Response:
        return _list_page(box, smtp)

    async def message(request: Request) -> Response:
        mail = box.get(request.path_params["number"])
        if mail is None:
            return _page("not found", '<p>No such message. <a href="/">All mail</a></p>', status=404)
        return _message_page(mail)

    async def raw(request: Request) -> Response:
        mail = box.get(request.path_params["number"])
        if mail is None:
            return Response("no such message\n", status_code=404, media_type="text/plain")
        # Shown as text, never rendered: a message is what someone else wrote.
        return Response(mail.raw, media_type="text/plain; charset=utf-8", headers=_HEADERS)

    return Starlette(
        routes=[
            Route("/", listing),
            Route("/messages/{number:int}", message),
            Route("/messages/{number:int}/raw", raw),
        ]
    )


# -- the sink ----------------------------------------------------------------------------------------


def port_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def choose_page_port(wanted: int | None, taken: Sequence[int] = ()) -> int:
    """The mail page's port: ``wanted`` (MailError when it is not free), else 8025 when free, else any
    free port. ``taken``: ports the demo's other servers are about to bind."""
    if wanted is not None:
        if wanted in taken or not port_free(wanted):
            raise MailError(f"port {wanted} on {HOST} is in use; choose another with --mail-port")
        return wanted
    if DEFAULT_PAGE_PORT not in taken and port_free(DEFAULT_PAGE_PORT):
        return DEFAULT_PAGE_PORT
    return _free_port()


class MailSink:
    """The SMTP sink and its page. ``start``, then ``stop`` (safe twice and after a failed start)."""

    def __init__(self, folder: Path, clock: Callable[[], datetime]) -> None:
        self.box = MailBox(folder, clock)
        self.host = HOST
        self.smtp_port = 0
        self.page_port = 0
        self._smtp: Controller | None = None
        self._page: tuple[uvicorn.Server, threading.Thread] | None = None

    @property
    def url(self) -> str:
        """The mail page."""
        return f"http://{self.host}:{self.page_port}"

    def start(self, page_port: int | None = None, taken: Sequence[int] = ()) -> None:
        """Start the SMTP server on a free port and the page on ``page_port`` (``choose_page_port``)."""
        self.page_port = choose_page_port(page_port, taken)
        self.smtp_port = _free_port()
        # A name of its own for the greeting: the default asks DNS for this machine's (can be slow offline).
        smtp = Controller(
            _Handler(self.box), hostname=self.host, port=self.smtp_port, server_hostname=SERVER_NAME
        )
        try:
            smtp.start()
        except (OSError, TimeoutError) as exc:
            smtp.stop(no_assert=True)
            raise MailError(
                f"the demo's SMTP sink did not start on {self.host}:{self.smtp_port}: {exc}"
            ) from exc
        self._smtp = smtp
        self._page = _serve(mail_app(self.box, f"{self.host}:{self.smtp_port}"), self.host, self.page_port)

    def stop(self) -> None:
        if self._page is not None:
            server, thread = self._page
            server.should_exit = True
            thread.join(timeout=STOP_TIMEOUT_S)
            self._page = None
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None

    def by_recipient(self) -> dict[str, int]:
        return self.box.by_recipient()


def _serve(app: Starlette, host: str, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    """``app`` under uvicorn in a thread (no signal handlers: Ctrl-C stays with the demo); returns once
    it accepts connections."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="mail-page", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise MailError(f"the mail page did not start on http://{host}:{port}; try another --mail-port")
        time.sleep(0.02)
    return server, thread
