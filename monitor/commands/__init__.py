"""``segmon`` command modules, one per area; each registers on ``monitor.cli_base.app``."""
