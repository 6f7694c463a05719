"""Alerts over delivery health: ``[[alerts]]`` rules, checked every ``CHECK_EVERY`` seconds
by ``serve`` and ``worker`` (or once by ``tactful alerts check``), told to
``[[alert_channels]]`` (Slack incoming webhook, SMTP email, signed webhook) once when they
start firing, again every ``repeat`` while they fire, and once when they resolve.

- ``tactful.config.alerts``: the typed config of rules and channels (with the other
  sections, so that ``tactful.config`` imports nothing from here).
- ``rules``: pure evaluation of the rules over a health snapshot.
- ``policy``: pure de-duplication (what to tell whom, given what was told).
- ``notify``: the channels' clients; ``fakes``: faithful fakes of each.
- ``service``: reads the store, evaluates, notifies, persists the state (store ``meta``).
"""
