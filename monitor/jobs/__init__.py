"""Job infrastructure every stage may use: run records, the scheduler, leader election.

Writes ``job_runs`` (:func:`~monitor.jobs.runs.run_job` records each run's start, end,
status, counts and error, and hands the work its run id); runs job callables on an
APScheduler (:mod:`~monitor.jobs.scheduler`) only while this replica holds the leader
lock (:mod:`~monitor.jobs.leader`); runs a stage's batches in this process or on a Dask
cluster (:mod:`~monitor.jobs.executor`). It knows no stage: the list of jobs is wired in
:mod:`monitor.service.schedule`.
"""
