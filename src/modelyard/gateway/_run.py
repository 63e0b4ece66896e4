"""The gateway process: uvloop, signals, exit."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket

from modelyard.gateway._gateway import DEFAULT_GRACE_S, Gateway
from modelyard.gateway._options import GatewayOptions
from modelyard.net import listen_socket

logger = logging.getLogger("modelyard.gateway")


def run_gateway(options: GatewayOptions) -> None:
    """Serve until SIGTERM/SIGINT, then finish in-flight requests (up to 30 s) and return.

    Runs on uvloop. Binds ``options.host:options.port`` before anything else, so a busy
    port fails at once.

    Raises:
        OSError: the address cannot be bound.
    """
    import uvloop

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(options.log_level.upper())
    sock = listen_socket(options.host, options.port, reuse_port=False)
    uvloop.run(_serve(options, sock))


async def _serve(options: GatewayOptions, sock: socket.socket) -> None:
    gateway = Gateway(options)
    await gateway.start(sock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    logger.info("gateway listening on %s:%d", options.host, gateway.port)
    await stop.wait()
    logger.info("stopping: finishing in-flight requests")
    await gateway.close(DEFAULT_GRACE_S)
