"""What every control panel shares: click handlers and a refresh loop in a
background thread that never print into a cell, and closing the whole widget tree."""

from __future__ import annotations

import threading
from collections.abc import Callable

import ipywidgets as widgets


class RefreshingPanel(widgets.VBox):
    """A box that refreshes itself from Redis. Subclasses define ``update()``
    and a ``status`` label (where a failed refresh is reported)."""

    refresh_thread_name = "panel-refresh"
    status: widgets.HTML | widgets.Label

    def update(self) -> object:
        raise NotImplementedError

    def _guard(self, handler: Callable[[widgets.Button], None]) -> Callable[[widgets.Button], None]:
        """Run a click handler, showing any error in the status line (never in a cell)."""

        def run(button: widgets.Button) -> None:
            try:
                handler(button)
            except Exception as error:  # shown to the user, not raised into the kernel log
                self.status.value = f"{button.description}: {type(error).__name__}: {error}"

        return run

    def start_auto_refresh(self, interval: float = 1.0) -> None:
        """Refresh from Redis every ``interval`` seconds in a daemon thread."""
        if self.auto_refreshing:
            return
        stop = self._refresh_stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval):
                try:
                    self.update()
                except Exception as error:  # Redis gone, widget closed...: say so, keep quiet
                    self.status.value = f"refresh failed: {type(error).__name__}: {error}"

        self._refresh_thread = threading.Thread(
            target=loop, name=self.refresh_thread_name, daemon=True
        )
        self._refresh_thread.start()

    def stop_auto_refresh(self, timeout: float = 10.0) -> None:
        """Stop the refresh thread and wait for it."""
        thread: threading.Thread | None = getattr(self, "_refresh_thread", None)
        if thread is not None:
            self._refresh_stop.set()
            thread.join(timeout)
            self._refresh_thread = None

    @property
    def auto_refreshing(self) -> bool:
        thread: threading.Thread | None = getattr(self, "_refresh_thread", None)
        return thread is not None and thread.is_alive()

    def close(self) -> None:
        """Stop refreshing and close every widget of the panel."""
        self.stop_auto_refresh()
        close_tree(self)


def close_tree(widget: widgets.Widget) -> None:
    """Close ``widget`` and every widget inside it (closing a box leaves its children open)."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    widgets.Widget.close(widget)
