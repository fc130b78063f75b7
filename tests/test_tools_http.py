"""http_fetch: allow-list, schemes, redirects, limits. Only a local server is contacted."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

import pytest

from agentkit._errors import ConfigError, ToolError
from agentkit.tools import HttpFetch
from agentkit.tools.http import host_allowed, html_to_text

PAGE = b"""<!doctype html><html><head><title>Test  page</title>
<style>body { color: red }</style><script>var secret = 1;</script></head>
<body><h1>Hello</h1><p>First &amp; second
paragraph.</p><ul><li>one</li><li>two</li></ul></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        port = cast(ThreadingHTTPServer, self.server).server_port
        routes = {
            "/text": (200, "text/plain; charset=utf-8", "héllo from the test server".encode()),
            "/page": (200, "text/html", PAGE),
            "/json": (200, "application/json", b'{"answer": 42}'),
            "/big": (200, "text/plain", b"x" * 50_000),
            "/image": (200, "image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100),
            "/missing": (404, "text/plain", b"no such thing here"),
        }
        redirects = {
            "/redirect-ok": "/text",
            "/redirect-out": "http://evil.invalid/steal",
            "/redirect-localhost": f"http://localhost:{port}/text",
            "/redirect-file": "file:///etc/passwd",
            "/loop": "/loop",
        }
        if self.path in redirects:
            self.send_response(302)
            self.send_header("Location", redirects[self.path])
            self.end_headers()
            return
        status, content_type, body = routes.get(self.path, (404, "text/plain", b""))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy from the environment would route the local requests elsewhere.
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fetch() -> HttpFetch:
    return HttpFetch(allow_hosts=["127.0.0.1"], timeout=5.0)


def test_fetches_text_from_an_allowed_host(fetch: HttpFetch, server: str) -> None:
    result = fetch.http_fetch(f"{server}/text")
    assert result == f"HTTP 200 OK from {server}/text (text/plain)\n\nhéllo from the test server"


def test_html_is_reduced_to_text(fetch: HttpFetch, server: str) -> None:
    result = fetch.http_fetch(f"{server}/page")
    body = result.split("\n\n", 1)[1]
    assert body == "Test page\n\nHello\nFirst & second paragraph.\none\ntwo"
    assert "secret" not in result and "color" not in result


def test_json_is_shown_and_binary_is_not(fetch: HttpFetch, server: str) -> None:
    assert fetch.http_fetch(f"{server}/json").endswith('{"answer": 42}')
    assert "108 bytes of image/png not shown" in fetch.http_fetch(f"{server}/image")


def test_size_limits(server: str) -> None:
    small = HttpFetch(allow_hosts=["127.0.0.1"], max_bytes=1000, max_chars=200)
    result = small.http_fetch(f"{server}/big")
    assert "cut at 1000 bytes" in result
    assert "characters cut" in result
    assert len(result) < 500


def test_redirect_within_the_allow_list_is_followed(fetch: HttpFetch, server: str) -> None:
    result = fetch.http_fetch(f"{server}/redirect-ok")
    assert result.startswith(f"HTTP 200 OK from {server}/text")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/redirect-out", "'evil.invalid' is not on this tool's allow-list"),
        ("/redirect-localhost", "'localhost' is not on this tool's allow-list"),
        ("/redirect-file", "not allowed"),  # urllib refuses this one itself
    ],
)
def test_redirect_off_the_allow_list_is_refused(
    fetch: HttpFetch, server: str, path: str, reason: str
) -> None:
    with pytest.raises(ToolError, match="redirect") as info:
        fetch.http_fetch(f"{server}{path}")
    assert reason in str(info.value)


def test_redirect_loops_end(fetch: HttpFetch, server: str) -> None:
    with pytest.raises(ToolError, match="HTTP 302"):
        fetch.http_fetch(f"{server}/loop")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://localhost:1/text", "'localhost' is not on this tool's allow-list"),
        ("http://example.com/", "'example.com' is not on this tool's allow-list"),
        ("http://127.0.0.1.evil.invalid/", "not on this tool's allow-list"),
        ("http://127.0.0.1@evil.invalid/", "'evil.invalid' is not on this tool's allow-list"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("ftp://127.0.0.1/x", "only http:// and https://"),
        ("127.0.0.1/text", "only http:// and https://"),
        ("http://127.0.0.1:99999/", "not a valid URL"),
    ],
)
def test_other_hosts_and_schemes_are_refused_before_connecting(
    fetch: HttpFetch, url: str, message: str
) -> None:
    with pytest.raises(ToolError, match=r"allow-list|http://|valid URL") as info:
        fetch.http_fetch(url)
    assert message in str(info.value)


def test_http_errors_and_unreachable_hosts(fetch: HttpFetch, server: str) -> None:
    with pytest.raises(ToolError, match="HTTP 404 Not Found") as info:
        fetch.http_fetch(f"{server}/missing")
    assert "no such thing here" in str(info.value)
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ToolError, match="could not fetch"):
        fetch.http_fetch(f"http://127.0.0.1:{port}/")


def test_off_without_an_allow_list() -> None:
    with pytest.raises(ConfigError, match="allow_hosts"):
        HttpFetch().tools()
    with pytest.raises(ToolError, match="off"):
        HttpFetch().http_fetch("http://127.0.0.1/")


@pytest.mark.parametrize(
    "entry", ["https://example.com", "example.com/path", "example.com:8080", "", "*.example.com"]
)
def test_malformed_allow_list_entries_are_configuration_errors(entry: str) -> None:
    with pytest.raises(ConfigError, match="not a host name"):
        HttpFetch(allow_hosts=[entry])


def test_a_single_string_is_not_taken_for_a_list() -> None:
    with pytest.raises(ConfigError, match="list"):
        HttpFetch(allow_hosts="example.com")


@pytest.mark.parametrize(
    ("host", "allow", "expected"),
    [
        ("example.com", ["example.com"], True),
        ("EXAMPLE.com.", ["example.com"], True),
        ("api.example.com", ["example.com"], False),
        ("api.example.com", [".example.com"], True),
        ("a.b.example.com", [".example.com"], True),
        ("example.com", [".example.com"], True),
        ("badexample.com", [".example.com"], False),
        ("example.com.evil.net", ["example.com"], False),
        ("example.com.evil.net", [".example.com"], False),
        ("", ["example.com"], False),
        ("example.com", [], False),
    ],
)
def test_host_matching(host: str, allow: list[str], expected: bool) -> None:
    assert host_allowed(host, allow) is expected


def test_html_to_text_keeps_pages_without_a_closed_head() -> None:
    assert html_to_text("<html><head><title>T</title><body><p>body text") == "T\n\nbody text"


async def test_tool_through_ainvoke_and_spec(fetch: HttpFetch, server: str) -> None:
    (tool,) = fetch.tools()
    assert tool.name == "http_fetch"
    assert "127.0.0.1" in tool.spec.description  # the model is told which hosts work
    assert tool.spec.parameters["required"] == ["url"]
    assert "héllo" in await tool.ainvoke({"url": f"{server}/text"})
    with pytest.raises(ToolError):
        await tool.ainvoke({"url": "http://example.com/"})
