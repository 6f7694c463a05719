"""The page shell Zendesk loads in the ticket sidebar (``templates/sidebar/page.html``): the
session for follow-ups as JSON data, the ZAF SDK, and ``static/sidebar.js``, which asks ZAF
for the requester and the agent's time zone, fetches the panel and resizes the app. No
inline script or style, so the page's Content-Security-Policy can stay strict."""

from __future__ import annotations

from tactful.web.templating import render

ZAF_SDK_URL = "https://static.zdassets.com/zendesk_app_framework_sdk/2.0/zaf_sdk.min.js"
STATIC_FILES = ("garden.css", "sidebar.css", "sidebar.js")  # served under /static/


def shell(session: str, agent: str, base: str = "") -> str:
    config = {"session": session, "agent": agent, "base": base}
    return render("sidebar/page.html", config=config, base=base, zaf_sdk_url=ZAF_SDK_URL)
