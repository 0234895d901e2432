"""`attnreport serve`: loopback only by default, nothing outside the site."""

from __future__ import annotations

import http.client
import threading

import pytest

from attnreport.core.errors import BuildError
from attnreport.site.serve import make_server


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    (root / "examples").mkdir(parents=True)
    (root / "index.html").write_text("<p>hello</p>")
    (root / "examples" / "a.html").write_text("<p>a</p>")
    (tmp_path / "secret.txt").write_text("do not serve")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    return root


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def test_serves_the_site_and_nothing_outside(site):
    server = make_server(site, port=0)
    assert server.server_address[0] == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        assert get(port, "/index.html") == (200, b"<p>hello</p>")
        assert get(port, "/examples/a.html")[0] == 200
        for path in ["/../secret.txt", "/%2e%2e/secret.txt", "/examples/../../secret.txt", "/escape"]:
            status, body = get(port, path)
            assert status == 404 and b"do not serve" not in body, path
    finally:
        server.shutdown()
        server.server_close()


def test_refuses_a_folder_that_is_not_a_site(tmp_path):
    with pytest.raises(BuildError, match="no index.html"):
        make_server(tmp_path, port=0)
