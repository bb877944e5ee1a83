"""A throwaway HTTP server on 127.0.0.1 for tests that fetch URLs."""
import contextlib
import http.server
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def serving(handler) -> Iterator[http.server.ThreadingHTTPServer]:
    """Serve ``handler`` on 127.0.0.1 (a free port, ``server.server_address[1]``) until the block ends."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
