"""Transports: each turns one platform's updates into the neutral model (`bot.model`) and back.

They see the bot only through `port.TransportPort` and the `Handler` their `run` is given:
never `bot.app` nor `handlers` (checked by tests/test_transport_imports.py).
"""
