// The Tactful ticket sidebar: asks ZAF for the ticket, its requester's email and the agent's
// time zone, fetches the panel (every request names the ticket), shows times in that zone, submits actions, and resizes the app to its
// content (ZAF `resize`). Served as a file: the page has no inline script.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("tactful-config").textContent);
  var root = document.getElementById("root");
  var client = null;
  var zone;  // the agent's IANA time zone from Zendesk; the browser's when unknown

  function zaf() {
    if (window.ZAFClient) {
      var own = window.ZAFClient.init();
      if (own) return own;
    }
    try {
      if (window.parent && window.parent !== window && window.parent.ZAFClient) {
        return window.parent.ZAFClient.init();  // a test harness standing in for Zendesk
      }
    } catch (e) { /* cross-origin parent */ }
    return null;
  }

  function resize() {
    if (!client) return;
    var height = Math.ceil(document.body.getBoundingClientRect().height);
    client.invoke("resize", {width: "100%", height: height + "px"});
  }

  function localTimes() {
    var options = {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
                   hour12: false, timeZoneName: "short"};
    if (zone) options.timeZone = zone;
    var format;
    try { format = new Intl.DateTimeFormat("en-US", options); }
    catch (e) { delete options.timeZone; format = new Intl.DateTimeFormat("en-US", options); }
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var text = format.format(new Date(el.getAttribute("datetime")));
      el.title = text;
      if (el.classList.contains("exact")) el.textContent = text;
    });
  }

  function show(html) {
    root.innerHTML = html;
    localTimes();
    bind();
    resize();
  }

  function fail(text) {
    var p = document.createElement("p");
    p.className = "flash error";
    p.setAttribute("role", "alert");
    p.textContent = text;
    root.replaceChildren(p);
    resize();
  }

  function call(url, options) {
    options = options || {};
    options.headers = Object.assign({"Authorization": "Bearer " + cfg.session},
                                    options.headers || {});
    url += (url.indexOf("?") < 0 ? "?" : "&") + "ticket=" + encodeURIComponent(cfg.ticket);
    return fetch(url, options).then(function (r) {
      var bound = r.headers.get("X-Tactful-Session");
      if (bound) cfg.session = bound;  // the session now belongs to this ticket
      return r.text().then(function (t) {
        if (r.status === 401) throw new Error("Session expired: reopen the ticket sidebar.");
        if (r.status === 403) throw new Error(t);
        var shown = r.ok || r.status === 422 || r.status === 502;
        if (!shown) throw new Error("Tactful: HTTP " + r.status);
        return t;
      });
    });
  }

  function bind() {
    root.querySelectorAll("form.action").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        if (form.dataset.busy) return;
        form.dataset.busy = "1";
        form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
        var body = new URLSearchParams(new FormData(form));
        call(cfg.base + "/app/sidebar/actions/" + form.dataset.action,
             {method: "POST", body: body}).then(show, function (e) { fail(e.message); });
      });
    });
    root.querySelectorAll("details").forEach(function (d) {
      d.addEventListener("toggle", resize);
    });
  }

  function load(email) {
    call(cfg.base + "/app/sidebar/panel?email=" + encodeURIComponent(email))
      .then(show, function (e) { fail(e.message); });
  }

  client = zaf();
  if (!client) { fail("The Zendesk Apps framework did not load."); return; }
  var asked = ["ticket.id", "ticket.requester.email", "currentUser.timeZone"];
  client.get(asked).then(function (data) {
    var tz = data && data["currentUser.timeZone"];
    zone = tz && tz.ianaName ? tz.ianaName : undefined;
    var email = data && data["ticket.requester.email"];
    cfg.ticket = data && data["ticket.id"];
    if (!cfg.ticket) { fail("Zendesk did not say which ticket this is."); return; }
    if (!email) { fail("This ticket has no requester email."); return; }
    load(email);
  }, function () { fail("Zendesk did not give the ticket requester."); });
})();
