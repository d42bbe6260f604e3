"""The twelve streams: each module is one service of the catalogue, with its ``build(ctx)``.

A stream combines its providers' answers (through pools from ``sources``) into one payload model, with its
freshness; the scheduler (``jobs.py``) runs it on its interval and hands the payload to the hub. Streams know
nothing of sockets, and read one another only through the ports of ``ports.py``. ``base.py`` is what they share
(the Service contract, the freshness Tracker, the build context), ``cadence.py`` paces slower parts.
"""
