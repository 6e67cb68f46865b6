"""The HTTP transport under python-telegram-bot: aiohttp instead of httpx, when aiohttp is installed.

Same Bot API calls, same PTB errors (TimedOut, NetworkError), at about a third of httpx's CPU per request
(0.3 ms against 1.0 ms on 127.0.0.1), which is most of what a reply costs besides the core itself
(bench/bench_telegram.py). Without aiohttp, app.py keeps PTB's own HTTPXRequest.
"""
from __future__ import annotations

import asyncio

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData


class AiohttpRequest(BaseRequest):
    """A BaseRequest on one aiohttp session with at most `pool_size` connections."""

    def __init__(self, pool_size: int = 16, timeout: float | None = 10.0) -> None:
        self._pool_size = pool_size
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=None),
                trust_env=True,  # HTTPS_PROXY and friends, as httpx honours them
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _or_default(self, value) -> float | None:
        """PTB passes a number, None (no limit), or its DEFAULT_NONE marker (use ours)."""
        return value if value is None or isinstance(value, (int, float)) else self._timeout

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout=BaseRequest.DEFAULT_NONE, write_timeout=BaseRequest.DEFAULT_NONE,
                         connect_timeout=BaseRequest.DEFAULT_NONE,
                         pool_timeout=BaseRequest.DEFAULT_NONE) -> tuple[int, bytes]:
        if self._session is None:
            await self.initialize()
        connect, pool = self._or_default(connect_timeout), self._or_default(pool_timeout)
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None if connect is None or pool is None else connect + pool,  # a free connection, then TCP
            sock_connect=connect,
            sock_read=self._or_default(read_timeout),  # getUpdates passes its long-poll time added to it
        )
        data: aiohttp.FormData | dict[str, str] | None = None
        if request_data is not None:
            files = request_data.multipart_data
            if files:
                # Raw UTF-8 file names, as httpx sends them: quoted ones would reach the user as %EC%8B%A0...
                form = aiohttp.FormData(request_data.json_parameters, quote_fields=False)
                for name, (filename, content, mime_type) in files.items():
                    form.add_field(name, content, filename=filename, content_type=mime_type)
                data = form
            else:
                data = request_data.json_parameters
        try:
            async with self._session.request(method, url, data=data, timeout=timeout) as response:
                return response.status, await response.read()
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc
