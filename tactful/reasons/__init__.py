"""Reasons and sentiment from what customers write (docs/reasons.md).

- ``text``: a description or comment → a ``TicketText`` (distinct words, a sentiment score,
  a language): the text itself goes no further than this module.
- ``model``: the learned reason (TF-IDF and logistic regression trained with scikit-learn,
  kept as plain numbers and applied in pure Python, so replays give the same answer).
- ``saved``: trained models in the store, versioned; which one is active.
- ``train``: the labelled tickets of a store, held-out measurement, the quality floor.
"""
