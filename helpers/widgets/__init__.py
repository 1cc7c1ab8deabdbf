"""Control panels for the course's notebooks (ipywidgets).

Each panel is a thin view over a model object that can be tested without a
browser. Panels live in their own modules; the common ones are re-exported
here:

- :mod:`helpers.widgets.jobs`: :class:`JobPanel` / :class:`JobPanelModel`, the
  job control panel of lesson 07 (enqueue notification jobs, start/stop
  workers, progress, requeue failed jobs);
- :mod:`helpers.widgets.stock`: :class:`StockPanel` / :class:`StockPanelModel`,
  the stock control panel (lesson 09);
- :mod:`helpers.widgets.messages`: :class:`MessageLog`, the live message log
  of lesson 05 (publish/subscribe).
"""

from helpers.widgets.jobs import JobPanel, JobPanelModel, JobRow, PanelState
from helpers.widgets.messages import MessageLog
from helpers.widgets.stock import RushResult, StockPanel, StockPanelModel

__all__ = ["JobPanel", "JobPanelModel", "JobRow", "PanelState"]
__all__ += ["RushResult", "StockPanel", "StockPanelModel"]
__all__ += ["MessageLog"]
