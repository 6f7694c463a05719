"""The page shell Zendesk loads in the ticket sidebar: the session for follow-ups, the ZAF
SDK, and a few lines of script that ask ZAF for the ticket and its requester and fetch the
panel (every request names the ticket; the session the server binds to it replaces the
first). ``SCRIPT`` and ``STYLE`` are allowed by hash in the page's CSP: keep them constant."""

from __future__ import annotations

import json

ZAF_SDK_URL = "https://static.zdassets.com/zendesk_app_framework_sdk/2.0/zaf_sdk.min.js"

STYLE = """
body{font:13px/1.4 system-ui,sans-serif;margin:8px;color:#2f3941}
h2{font-size:15px;margin:4px 0}h3{font-size:13px;margin:10px 0 4px}h4{margin:8px 0 4px}
table{border-collapse:collapse}th{text-align:left;font-weight:normal;color:#68737d;padding-right:8px}
ul{padding-left:16px;margin:4px 0}.segment.out{color:#87929d}
.rule,.why{font-size:12px;color:#68737d}
.missing{color:#8c2b00}.flash.ok{color:#037f52}.flash.error{color:#cc3340;font-weight:bold}
form.action{display:inline-block;margin:2px 0}button{cursor:pointer}
"""

SCRIPT = r"""
(function () {
  var cfg = JSON.parse(document.getElementById('tactful-config').textContent);
  var root = document.getElementById('root');
  function zaf() {
    if (window.ZAFClient) return window.ZAFClient;
    try { if (window.parent && window.parent !== window) return window.parent.ZAFClient; }
    catch (e) { /* cross-origin parent: not a harness */ }
    return null;
  }
  function show(html) { root.innerHTML = html; bind(); }
  function fail(text) { root.innerHTML = '<p class="flash error"></p>';
                        root.firstChild.textContent = text; }
  function call(url, options) {
    options = options || {};
    options.headers = Object.assign({'Authorization': 'Bearer ' + cfg.session},
                                    options.headers || {});
    url += (url.indexOf('?') < 0 ? '?' : '&') + 'ticket=' + encodeURIComponent(cfg.ticket);
    return fetch(url, options).then(function (r) {
      var bound = r.headers.get('X-Tactful-Session');
      if (bound) cfg.session = bound;  // the session now belongs to this ticket
      return r.text().then(function (t) {
        if (r.status === 401) throw new Error('Session expired: reopen the ticket sidebar.');
        if (r.status === 403) throw new Error(t);
        var shown = r.ok || r.status === 422 || r.status === 502;
        if (!shown) throw new Error('Tactful: HTTP ' + r.status);
        return t;
      });
    });
  }
  function bind() {
    root.querySelectorAll('form.action').forEach(function (form) {
      form.addEventListener('submit', function (ev) {
        ev.preventDefault();
        if (form.dataset.busy) return;
        form.dataset.busy = '1';
        form.querySelectorAll('button').forEach(function (b) { b.disabled = true; });
        var body = new URLSearchParams(new FormData(form));
        call(cfg.base + '/app/sidebar/actions/' + form.dataset.action,
             {method: 'POST', body: body}).then(show, function (e) { fail(e.message); });
      });
    });
  }
  function load(email) {
    call(cfg.base + '/app/sidebar/panel?email=' + encodeURIComponent(email))
      .then(show, function (e) { fail(e.message); });
  }
  var Z = zaf();
  if (!Z) { fail('The Zendesk Apps framework did not load.'); return; }
  var client = Z.init();
  client.get(['ticket.id', 'ticket.requester.email']).then(function (data) {
    var email = data && data['ticket.requester.email'];
    cfg.ticket = data && data['ticket.id'];
    if (!cfg.ticket) { fail('Zendesk did not say which ticket this is.'); return; }
    if (!email) { fail('This ticket has no requester email.'); return; }
    load(email);
  }, function () { fail('Zendesk did not give the ticket requester.'); });
})();
"""


def shell(session: str, agent: str, base: str = "") -> str:
    config = json.dumps({"session": session, "agent": agent, "base": base})
    config = config.replace("<", "\\u003c")
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width">'
        f"<title>Tactful</title><style>{STYLE}</style></head><body>"
        f'<script type="application/json" id="tactful-config">{config}</script>'
        '<div id="root"><p class="loading">Loading…</p></div>'
        f'<script src="{ZAF_SDK_URL}"></script>'
        f"<script>{SCRIPT}</script></body></html>"
    )
