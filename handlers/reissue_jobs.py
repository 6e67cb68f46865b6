"""The reissue flow's periodic work under `helpdesk run`: remind idle flows once after 24 hours, drop
them after 7 days, and close approved requests whose new certificate is in the registry. What it has to
say goes through the outbox (handlers/outbox_job.py sends it); `helpdesk reissue sweep` does the same."""
from __future__ import annotations

import logging

from bot.helpdesk import Helpdesk
from bot.reissue import Reissue

log = logging.getLogger("helpdesk.reissue")
INTERVAL_SECONDS = 600.0


async def _sweep(context) -> None:
    try:
        counts = Reissue(context.job.data).sweep()
    except Exception:
        log.exception("reissue sweep failed")
        return
    if any(counts.values()):
        log.info("reissue sweep: %s", counts)


def schedule(application, hd: Helpdesk) -> None:
    application.job_queue.run_repeating(_sweep, interval=INTERVAL_SECONDS, first=20.0, data=hd, name="reissue")
