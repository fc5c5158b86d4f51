"""The wiring that knows every stage: the scheduled jobs, ``segmon run``, status, the demo.

Reads the settings and every table; :mod:`~monitor.service.schedule` builds the jobs
``segmon run`` schedules, :mod:`~monitor.service.serve` runs them with the HTTP server of
:mod:`~monitor.service.server` (``/metrics``, ``/healthz``, admin API),
:mod:`~monitor.service.status` answers ``segmon status`` and :mod:`~monitor.service.demo`
runs the whole pipeline on generated data in simulated time (``segmon demo``).
"""
