"""The live demo behind ``make demo`` / ``tactful demo``: no secrets, no network.

- ``tactful.demo.story``: a skincare brand's launch played on the Zendesk simulator's clock
  (irritation and wrong-item tickets spike, CSAT dips, refunds, merges, reopens,
  resolutions) plus the shop's outcome events (orders, unsubscribes, complaints, re-contacts).
- ``tactful.demo.fakes``: fake Meta, Customer.io and Standard Webhooks receiver on loopback.
- ``tactful.demo.config``: the demo's ``tactful.toml`` (starter rules, generated secrets,
  destinations pointing at the fakes).
- ``tactful.demo.runner``: starts everything, drives the story, stops cleanly.
"""

from tactful.demo.runner import DemoOptions, run_demo

__all__ = ["DemoOptions", "run_demo"]
