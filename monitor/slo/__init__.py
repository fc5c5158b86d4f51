"""SLOs: specs, event-time error ratios and burn rates, read from stored results.

:mod:`~monitor.slo.spec`, :mod:`~monitor.slo.policy`, :mod:`~monitor.slo.duration` and
:mod:`~monitor.slo.burn` are pure (no database); :mod:`~monitor.slo.events` reads each
SLO's good and bad events over event time from the results tables (``segmon slo``, the
metrics collector and the demo use it). Prometheus rules generated from these specs live
in :mod:`monitor.prometheus`.
"""
