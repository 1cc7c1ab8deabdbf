"""A live message log for lesson 05: a thin ipywidgets view over a
:class:`helpers.pubsub.MessageListener`.

    log = MessageLog(r, patterns=["holberton*"])   # subscribed when this returns
    log                                            # shows it; lines appear live
    ...
    log.stop()                                     # or click Stop

The listener runs in a background thread and calls back for each message;
the view only formats :attr:`MessageListener.messages`. Everything it shows
can be checked without a browser through :attr:`MessageLog.listener` and
:meth:`MessageLog.text`.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterable

import ipywidgets as widgets
import redis

from helpers.pubsub import MessageListener, Notification


def format_notification(notification: Notification) -> str:
    """One log line: ``[channel] message``, with the pattern that matched if any."""
    via = f" (via {notification.pattern})" if notification.pattern else ""
    return f"[{notification.channel}]{via} {notification.data}"


class MessageLog(widgets.VBox):
    """A status line, the last ``max_lines`` messages, and a Stop button."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        channels: Iterable[str] = (),
        patterns: Iterable[str] = (),
        max_lines: int = 20,
        start: bool = True,
    ) -> None:
        self.max_lines = max_lines
        self.listener = MessageListener(
            client, channels=channels, patterns=patterns, on_message=self._on_message
        )
        self._lock = threading.Lock()
        self.status_line = widgets.HTML()
        self.lines_view = widgets.HTML(layout=widgets.Layout(min_height="6em"))
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="warning")
        self.stop_button.on_click(lambda _button: self.stop())
        super().__init__([widgets.HBox([self.status_line, self.stop_button]), self.lines_view])
        if start:
            self.start()
        else:
            self._render()

    def _subscriptions(self) -> str:
        names = self.listener.channels + self.listener.patterns
        return ", ".join(html.escape(name) for name in names)

    def text(self) -> str:
        """The lines the log shows, as plain text."""
        lines = [format_notification(n) for n in self.listener.messages]
        return "\n".join(lines[-self.max_lines :])

    def _render(self) -> None:
        with self._lock:
            count = len(self.listener.messages)
            state = "listening" if self.listener.running else "stopped"
            self.status_line.value = (
                f"<b>{state}</b> on {self._subscriptions()}: {count} message(s)"
            )
            body = html.escape(self.text()) or "<i>no message yet</i>"
            self.lines_view.value = f"<pre style='margin:0'>{body}</pre>"

    def _on_message(self, _notification: Notification) -> None:
        self._render()  # called in the listener's thread

    def start(self) -> None:
        """Subscribe (returns once the server confirmed) and listen in the background."""
        self.listener.start()
        self.stop_button.disabled = False
        self._render()

    def stop(self) -> None:
        """Stop listening; the log keeps what it received."""
        self.listener.stop()
        self.stop_button.disabled = True
        self._render()

    def close(self) -> None:
        if hasattr(self, "stop_button"):  # fully built
            self.stop()
        super().close()
