"""Serves the sandbox over HTTP with Werkzeug's threaded server."""

import logging
import threading

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from integrations.sandbox.app import SandboxApp
from integrations.sandbox.config import SandboxConfig
from integrations.sandbox.state import SandboxState

logger = logging.getLogger(__name__)


class _RequestHandler(WSGIRequestHandler):
    """Sends Werkzeug's access log to this module's logger, at debug level."""

    def log_request(self, code="-", size="-") -> None:
        logger.debug("%s %s %s", self.command, self.path.split("?")[0], code)

    def log_error(self, format: str, *args) -> None:
        logger.debug("Request handler error: %s", format % args)

    def log_message(self, format: str, *args) -> None:
        logger.debug("Request handler: %s", format % args)


class SandboxServer:
    """The sandbox on a port: ``start()`` in a daemon thread, or ``serve_forever()``.

    Port 0 binds a free port; ``url`` tells which one. Also a context manager
    that starts on entry and stops on exit.
    """

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        self.state = SandboxState(self.config)
        self.app = SandboxApp(self.state)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash; known once bound."""
        if self._server is None:
            raise RuntimeError("The sandbox server is not bound yet.")
        host = self.config.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._server.server_port}"

    def bind(self) -> None:
        if self._server is None:
            self._server = make_server(
                self.config.host,
                self.config.port,
                self.app,
                threaded=True,
                request_handler=_RequestHandler,
            )
            self._server.daemon_threads = True

    def start(self) -> "SandboxServer":
        """Bind and serve in a background daemon thread."""
        self.bind()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="klaviyo-sandbox",
            daemon=True,
        )
        self._thread.start()
        logger.info("Klaviyo sandbox serving at %s", self.url)
        return self

    def serve_forever(self) -> None:
        """Bind and serve in this thread until interrupted."""
        self.bind()
        logger.info("Klaviyo sandbox serving at %s", self.url)
        try:
            self._server.serve_forever(poll_interval=0.1)
        finally:
            self._close()

    def stop(self) -> None:
        """Stop serving, cut held requests short and release the port."""
        if self._server is None:
            return
        self.state.release_hung_requests()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._close()

    def _close(self) -> None:
        if self._server is not None:
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
