"""Prometheus and friends: metrics, rule files, Alertmanager and Grafana artefacts.

Reads the results tables at scrape time (:class:`~monitor.prometheus.collector.DatabaseCollector`,
served by ``segmon run`` or pushed by one-shot commands through
:mod:`~monitor.prometheus.push`); writes files only: rule files and their promtool tests
(``segmon rules``), an Alertmanager example and the Grafana dashboards. Every metric
name comes from :mod:`~monitor.prometheus.catalog`. No job runs here.
"""
