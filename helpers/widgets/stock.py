"""The stock control panel of lesson 09: a model, and a thin ipywidgets view.

:class:`StockPanelModel` does the work (read the stock, reserve one unit,
reset, fire a rush of concurrent reservations) against Redis directly, or
through the HTTP service (:mod:`helpers.api`) when given its URL. It needs no
browser: the tests drive it. :class:`StockPanel` shows it: one row per
product, and a background thread that refreshes the quantities from Redis
every ``refresh_interval`` seconds (so reservations made by anyone else show
up too). It never prints into a cell; messages go to its status line.
``panel.close()`` stops the refresh thread and closes the widgets.

Buttons (their ``description``s are stable: browser tests click by them):

- ``Reserve Suitcase 250``, ``Reserve Suitcase 450``, ``Reserve Suitcase 650``,
  ``Reserve Suitcase 1050``: reserve one unit of that product (atomic);
- ``Reset stock``: every product back to its initial quantity;
- ``Rush``: fire ``Requests`` concurrent reservations of the product chosen in
  ``Product``, the atomic way or the original's naive way (``Rush mode``),
  then show how many were confirmed against how many units were available;
- ``Refresh``: read Redis now.

What a browser test reads: each product's remaining quantity is the text
``<left> / <initial> left`` of the label with CSS class ``stock-left-<itemId>``
(e.g. ``stock-left-1``; also ``panel.left_labels[1].value``), beside a bar with
class ``stock-bar-<itemId>`` whose value is the same number. The rush result
is in the widget with class ``stock-rush-result`` (``panel.rush_result``).
"""

from __future__ import annotations

import html
import threading
import urllib.request
from dataclasses import dataclass

import ipywidgets as widgets
import redis

from helpers import stock
from helpers.server import redis_url
from helpers.widgets.panel import RefreshingPanel

NAIVE, ATOMIC = "Naive (read, then write)", "Atomic (Lua script)"


@dataclass(frozen=True)
class RushResult:
    """What a rush did: ``requests`` concurrent reservations of ``item_id``."""

    item_id: int
    requests: int
    confirmed: int
    available: int  # units in stock when the rush began
    left: int  # units in stock after it
    naive: bool

    @property
    def oversold(self) -> int:
        """Reservations confirmed beyond the units that existed."""
        return max(0, self.confirmed - self.available)

    def summary(self) -> str:
        name = stock.get_item_by_id(self.item_id)["itemName"]  # type: ignore[index]
        mode = "naive" if self.naive else "atomic"
        return (
            f"{self.requests} concurrent reservations of {name} ({mode}): "
            f"{self.confirmed} confirmed, {self.available} available, "
            f"{self.oversold} oversold, {self.left} left"
        )


class StockPanelModel:
    """State and actions of the stock panel.

    ``service_url``: reserve through the HTTP service (``GET
    /reserve_product/<id>``, or ``/reserve_product_naive/<id>``) instead of
    calling :mod:`helpers.stock` directly. Quantities and resets always go
    to Redis. A rush runs ``concurrency`` clients at once.
    """

    def __init__(
        self,
        client: redis.Redis | None = None,
        *,
        service_url: str | None = None,
        concurrency: int = 32,
    ) -> None:
        self.client = client or redis.Redis.from_url(redis_url(), decode_responses=True)
        self.service_url = service_url.rstrip("/") if service_url else None
        self.concurrency = concurrency
        self.products = stock.PRODUCTS

    def quantities(self) -> dict[int, int]:
        """Units left per product id, read in one ``MGET``."""
        ids = [p["itemId"] for p in self.products]
        values = self.client.mget([stock.item_key(i) for i in ids])
        return {
            p["itemId"]: int(v) if v is not None else p["initialAvailableQuantity"]
            for p, v in zip(self.products, values, strict=True)
        }

    def reserve(self, item_id: int) -> bool:
        """Reserve one unit, atomically; True if confirmed."""
        if self.service_url:
            return self._reserve_http(item_id, naive=False)
        return stock.reserve_stock(self.client, item_id)

    def _reserve_http(self, item_id: int, naive: bool) -> bool:
        from helpers.api import CONFIRMED_BODY  # noqa: PLC0415 - only with a service

        route = "reserve_product_naive" if naive else "reserve_product"
        with urllib.request.urlopen(f"{self.service_url}/{route}/{item_id}", timeout=10) as reply:
            return reply.read() == CONFIRMED_BODY[item_id]

    def reset(self) -> None:
        """Every product back to its initial quantity."""
        stock.reset_stock(self.client)

    def rush(self, item_id: int, requests: int = 300, *, naive: bool = False) -> RushResult:
        """Fire ``requests`` reservations of ``item_id`` from ``concurrency``
        clients at once, released together by a barrier, and count them."""
        if stock.get_item_by_id(item_id) is None:
            raise stock.ProductNotFound(f"Product not found: {item_id!r}")
        available = self.quantities()[item_id]
        if self.service_url:
            confirmed = self._rush_http(item_id, requests, naive)
        else:
            confirmed = self._rush_threads(item_id, requests, naive)
        return RushResult(
            item_id, requests, confirmed, available, self.quantities()[item_id], naive
        )

    def _rush_threads(self, item_id: int, requests: int, naive: bool) -> int:
        reserve = stock.reserve_stock_naive if naive else stock.reserve_stock
        clients = min(self.concurrency, requests)
        barrier = threading.Barrier(clients)
        counts = [0] * clients
        errors: list[BaseException] = []
        # Its own connections: one per thread, so every client really is concurrent.
        own = self.client.connection_pool
        pool = redis.Redis(
            connection_pool=redis.ConnectionPool(
                connection_class=own.connection_class, **own.connection_kwargs
            )
        )

        def client_thread(index: int) -> None:
            share = requests // clients + (1 if index < requests % clients else 0)
            try:
                pool.ping()  # connected before the start signal, like customers already on the page
                barrier.wait(timeout=30)
                counts[index] = sum(reserve(pool, item_id) for _ in range(share))
            except BaseException as error:  # reported to the caller below
                errors.append(error)

        threads = [threading.Thread(target=client_thread, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        pool.close()
        if errors:
            raise errors[0]
        return sum(counts)

    def _rush_http(self, item_id: int, requests: int, naive: bool) -> int:
        from helpers.api import CONFIRMED_BODY  # noqa: PLC0415 - only with a service
        from helpers.loadgen import run_load  # noqa: PLC0415

        route = "reserve_product_naive" if naive else "reserve_product"
        result = run_load(
            f"{self.service_url}/{route}/{item_id}",
            connections=min(self.concurrency, requests),
            duration_s=60,
            max_requests=requests,
        )
        if result.errors:
            raise RuntimeError(f"{result.errors} requests failed: is the service running?")
        return result.bodies.get(CONFIRMED_BODY[item_id], 0)


class StockPanel(RefreshingPanel):
    """The stock control panel's view (see the module doc for its buttons)."""

    refresh_thread_name = "stock-panel-refresh"

    def __init__(
        self,
        model: StockPanelModel | None = None,
        *,
        refresh_interval: float | None = 1.0,
        rush_requests: int = 300,
    ) -> None:
        self.model = model or StockPanelModel()
        self.bars: dict[int, widgets.IntProgress] = {}
        self.left_labels: dict[int, widgets.Label] = {}
        self.reserve_buttons: dict[int, widgets.Button] = {}
        rows = []
        for product in self.model.products:
            item_id, name = product["itemId"], product["itemName"]
            initial = product["initialAvailableQuantity"]
            bar = widgets.IntProgress(min=0, max=initial, value=initial, layout={"width": "200px"})
            bar.add_class(f"stock-bar-{item_id}")
            left = widgets.Label(layout={"width": "90px"})
            left.add_class(f"stock-left-{item_id}")
            button = widgets.Button(description=f"Reserve {name}", layout={"width": "190px"})
            button.on_click(self._guard(lambda _b, i=item_id: self._on_reserve(i)))
            self.bars[item_id], self.left_labels[item_id] = bar, left
            self.reserve_buttons[item_id] = button
            title = widgets.HTML(
                f"<b>{html.escape(name)}</b> · ${product['price']}", layout={"width": "170px"}
            )
            rows.append(widgets.HBox([title, bar, left, button]))

        style = {"description_width": "80px"}
        self.rush_product = widgets.Dropdown(
            options=[(p["itemName"], p["itemId"]) for p in self.model.products],
            description="Product",
            style=style,
        )
        self.rush_requests = widgets.BoundedIntText(
            value=rush_requests, min=1, max=5000, description="Requests", style=style
        )
        self.rush_mode = widgets.ToggleButtons(
            options=[ATOMIC, NAIVE], value=ATOMIC, description="Rush mode", style=style
        )
        self.rush_button = widgets.Button(description="Rush", button_style="danger")
        self.reset_button = widgets.Button(description="Reset stock", button_style="warning")
        self.refresh_button = widgets.Button(description="Refresh")
        self.rush_result = widgets.HTML()
        self.rush_result.add_class("stock-rush-result")
        self.status = widgets.Label()
        self.last_rush: RushResult | None = None
        self._view_lock = threading.Lock()

        self.rush_button.on_click(self._guard(lambda _b: self._on_rush()))
        self.reset_button.on_click(self._guard(lambda _b: self._on_reset()))
        self.refresh_button.on_click(self._guard(lambda _b: self.update()))
        super().__init__(
            [
                *rows,
                widgets.HBox([self.rush_product, self.rush_requests]),
                widgets.HBox([self.rush_mode, self.rush_button]),
                self.rush_result,
                widgets.HBox([self.reset_button, self.refresh_button]),
                self.status,
            ]
        )
        self.update()
        if refresh_interval:
            self.start_auto_refresh(refresh_interval)

    # --- actions -----------------------------------------------------------

    def _on_reserve(self, item_id: int) -> None:
        confirmed = self.model.reserve(item_id)
        quantities = self.update()
        answer = "Reservation confirmed" if confirmed else "Not enough stock available"
        name = self.reserve_buttons[item_id].description.removeprefix("Reserve ")
        self.status.value = f"{name}: {answer} ({quantities[item_id]} left)"

    def _on_reset(self) -> None:
        self.model.reset()
        self.update()
        self.status.value = "Stock reset to the initial quantities"

    def _on_rush(self) -> None:
        self.status.value = "Rush in progress..."
        result = self.model.rush(
            self.rush_product.value,
            self.rush_requests.value,
            naive=self.rush_mode.value == NAIVE,
        )
        self.last_rush = result
        self.update()
        colour = "#b00020" if result.oversold else "#1b5e20"
        self.rush_result.value = (
            f"<span style='color:{colour}'>Rush: <b>{result.confirmed}</b> confirmed vs "
            f"<b>{result.available}</b> available ({result.oversold} oversold)</span>"
        )
        self.status.value = result.summary()

    # --- view --------------------------------------------------------------
    def update(self) -> dict[int, int]:
        """Read the quantities from Redis and show them; returns them."""
        quantities = self.model.quantities()
        with self._view_lock:
            for product in self.model.products:
                item_id = product["itemId"]
                left = quantities[item_id]
                bar = self.bars[item_id]
                bar.value = max(0, min(left, bar.max))
                bar.bar_style = "success" if left > 0 else "danger"
                self.left_labels[
                    item_id
                ].value = f"{left} / {product['initialAvailableQuantity']} left"
        return quantities
