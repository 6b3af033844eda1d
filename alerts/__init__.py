"""Alerts and the daily digest: events from the outbox to email, chat,
webhooks and files, at least once and never a flood.

Pure in the middle (:mod:`alerts.routing`, :mod:`alerts.folding`,
:mod:`alerts.message`, :mod:`alerts.digest` and its map,
:mod:`alerts.digest_map`), I/O at the edges (:mod:`alerts.channels`,
:mod:`alerts.delivery`, :mod:`alerts.dispatcher`, :mod:`alerts.schedule`,
:mod:`alerts.store`). The configuration is :mod:`alerts.settings`.
"""
