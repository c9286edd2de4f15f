"""``GET /mailbox`` (demo mode only): the mail the demo's SMTP sink received, as a page.

The same messages as ``GET /demo/mailbox`` (JSON), newest first, for people trying the
demo: the e-mails its workflows send (approval notices, reports) end up here. Message
text is shown as text, escaped like everything else on the dashboard; an HTML part is
never rendered (it could carry anything), only its size is mentioned.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from demo.standins import DemoStandins
from server.security.permissions import permission
from ui.templating import page

#: Messages shown (the newest); the JSON endpoint gives up to 200 as well.
SHOWN = 50


@get("/mailbox", opt=permission("read"), include_in_schema=False)
async def mailbox_page(
    request: Request[Any, Any, Any],
    demo: NamedDependency[DemoStandins],
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = SHOWN,
) -> Response[Any]:
    messages, total = await demo.sink.messages(limit)
    return page(
        request,
        "pages/mailbox.html",
        messages=messages,
        total=total,
        limit=limit,
        smtp_port=demo.sink.port,
    )


HANDLERS = [mailbox_page]
