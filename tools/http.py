"""``http_fetch``: GET a web page or API, only from hosts the author allowed.

    HttpFetch(allow_hosts=["api.example.com", ".wikipedia.org"]).tools()

An entry matches its host name exactly; an entry that starts with "." matches that
domain and every subdomain. There is no default list: without hosts the tool is off.
Redirects are followed only while they stay on allowed hosts. HTML is reduced to its
text, since markup would fill a small model's context with noise.

The allow-list is checked on host names; it does not stop an allowed name from
resolving to an internal address, so list only hosts you trust.
"""

from __future__ import annotations

import html.parser
import http.client
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from email.message import Message
from typing import IO, Any

from agentkit import ConfigError, Tool, ToolError
from agentkit.runtime import trim

__all__ = ["HttpFetch", "host_allowed"]

_MAX_REDIRECTS = 5
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")


def host_allowed(host: str, allow_hosts: Iterable[str]) -> bool:
    """Whether ``host`` is on the list: equal to an entry, or under a ".domain" entry."""
    host = host.lower().rstrip(".")
    if not host:
        return False
    for entry in allow_hosts:
        if entry.startswith("."):
            if host == entry[1:] or host.endswith(entry):
                return True
        elif host == entry:
            return True
    return False


class HttpFetch:
    """The ``http_fetch`` tool, limited to an allow-list of hosts (off without one)."""

    def __init__(
        self,
        allow_hosts: Iterable[str] = (),
        *,
        timeout: float = 10.0,
        max_bytes: int = 1_000_000,
        max_chars: int = 6000,
        user_agent: str = "agentkit-http-fetch/0.1",
    ) -> None:
        if isinstance(allow_hosts, str):
            raise ConfigError("allow_hosts must be a list of host names, not one string")
        hosts = []
        problems = []
        for entry in allow_hosts:
            cleaned = entry.strip().lower().rstrip(".")
            if not cleaned.lstrip(".") or any(c in cleaned for c in "/:@ *?#"):
                problems.append(
                    f"allow_hosts entry {entry!r} is not a host name; write 'example.com', "
                    "or '.example.com' for the domain and its subdomains (no scheme, port "
                    "or path)"
                )
            hosts.append(cleaned)
        if problems:
            raise ConfigError(problems)
        if timeout <= 0 or max_bytes < 1 or max_chars < 100:
            raise ConfigError("timeout, max_bytes and max_chars must be positive")
        self.allow_hosts: tuple[str, ...] = tuple(hosts)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_chars = max_chars
        self.user_agent = user_agent

    def __repr__(self) -> str:
        return f"HttpFetch(allow_hosts={list(self.allow_hosts)!r})"

    def tools(self) -> list[Tool]:
        """``[http_fetch]``; ConfigError when no host is allowed."""
        if not self.allow_hosts:
            raise ConfigError(
                "http_fetch is off: give the hosts it may reach, for example "
                "HttpFetch(allow_hosts=['api.example.com'])"
            )
        hosts = ", ".join(self.allow_hosts)
        description = (
            "Fetch a web page or API response by URL (HTTP GET) and read its text. "
            f"Only these hosts can be reached: {hosts} (a leading '.' means any subdomain)."
        )
        return [
            Tool(
                self.http_fetch,
                description=description,
                timeout=self.timeout * 2 + 5,
                max_output_chars=self.max_chars + 500,
                idempotent=True,
            )
        ]

    def http_fetch(self, url: str) -> str:
        """Fetch a web page or API response by URL (HTTP GET) and read its text.

        Args:
            url: the full address, starting with http:// or https://
        """
        self._check_url(url)
        request = urllib.request.Request(
            url, headers={"User-Agent": self.user_agent, "Accept-Encoding": "identity"}
        )
        opener = urllib.request.build_opener(_AllowListRedirects(self))
        deadline = time.monotonic() + self.timeout * 2
        try:
            with opener.open(request, timeout=self.timeout) as response:
                body, complete = self._read(response, deadline)
                status = f"HTTP {response.status} {response.reason}"
                final_url = response.geturl()
                headers = response.headers
        except urllib.error.HTTPError as exc:
            raise ToolError(f"HTTP {exc.code} {exc.reason} from {url}{_error_detail(exc)}") from exc
        except urllib.error.URLError as exc:
            raise ToolError(f"could not fetch {url}: {exc.reason}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise ToolError(f"could not fetch {url}: {exc}") from exc
        return self._render(status, final_url, headers, body, complete)

    def _check_url(self, url: str) -> None:
        if not self.allow_hosts:
            raise ToolError("http_fetch is off: the agent's author has allowed no hosts")
        try:
            parts = urllib.parse.urlsplit(url.strip())
            host = parts.hostname or ""
            _ = parts.port  # raises ValueError for a malformed port
        except ValueError as exc:
            raise ToolError(f"{url!r} is not a valid URL: {exc}") from exc
        if parts.scheme not in ("http", "https"):
            raise ToolError(f"only http:// and https:// URLs can be fetched, not {url!r}")
        if not host_allowed(host, self.allow_hosts):
            raise ToolError(
                f"host {host or '(none)'!r} is not on this tool's allow-list "
                f"({', '.join(self.allow_hosts)}); fetch from one of those hosts instead"
            )

    def _read(self, response: IO[bytes], deadline: float) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while size <= self.max_bytes:
            if time.monotonic() > deadline:
                raise ToolError("the server sent too slowly; the fetch was stopped")
            chunk = response.read(min(65536, self.max_bytes + 1 - size))
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)[: self.max_bytes], False

    def _render(self, status: str, url: str, headers: Message, body: bytes, complete: bool) -> str:
        content_type = headers.get_content_type()
        head = f"{status} from {url} ({content_type})"
        if not content_type.startswith(_TEXT_TYPES) and not content_type.endswith(
            ("+json", "+xml")
        ):
            return f"{head}\n[{len(body)} bytes of {content_type} not shown: not text]"
        try:
            text = body.decode(headers.get_content_charset() or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            text = body.decode("utf-8", errors="replace")
        if content_type in ("text/html", "application/xhtml+xml"):
            text = html_to_text(text)
        note = "" if complete else f"\n[the response was cut at {self.max_bytes} bytes]"
        return f"{head}\n\n{trim(text.strip(), self.max_chars)}{note}"


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """The start of an error response's body: APIs often explain the error there."""
    try:
        detail = exc.read(2000).decode("utf-8", errors="replace").strip()
    except (OSError, AttributeError, ValueError):
        return ""
    return f": {trim(detail, 500)}" if detail else ""


class _AllowListRedirects(urllib.request.HTTPRedirectHandler):
    max_redirections = _MAX_REDIRECTS

    def __init__(self, fetcher: HttpFetch) -> None:
        self.fetcher = fetcher

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        try:
            self.fetcher._check_url(newurl)
        except ToolError as exc:
            raise ToolError(
                f"the server redirected to {newurl}, which was refused: {exc}"
            ) from None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _TextExtractor(html.parser.HTMLParser):
    """Visible text of an HTML page: scripts and styles dropped, blocks on new lines."""

    _SKIP = frozenset({"script", "style", "noscript", "template", "svg"})
    _BLOCK = frozenset(
        {
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "section",
            "article",
            "header",
            "footer",
            "table",
            "ul",
            "ol",
            "pre",
            "blockquote",
            "title",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skipping = 0
        self._in_title = False
        self._in_pre = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skipping += 1
        elif tag == "pre":
            self._in_pre += 1
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag == "pre" and self._in_pre:
            self._in_pre -= 1
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skipping:
            # As a browser does: line breaks in the source are spaces, except in <pre>.
            if self._in_pre:
                self.parts.append(data)
                return
            text = re.sub(r"\s+", " ", data)
            if not self.parts or self.parts[-1].endswith("\n"):
                text = text.lstrip()
            self.parts.append(text)


def html_to_text(page: str) -> str:
    """The readable text of an HTML page, with its title first."""
    parser = _TextExtractor()
    parser.feed(page)
    parser.close()
    lines = (line.rstrip() for line in "".join(parser.parts).splitlines())
    body = "\n".join(line for line in lines if line)
    title = " ".join(parser.title.split())
    return f"{title}\n\n{body}" if title else body
