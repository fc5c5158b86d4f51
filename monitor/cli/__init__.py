"""The ``segmon`` command line: typer commands, thin wrappers around library functions.

:mod:`monitor.cli.app` holds the app, its state and output helpers; each
``*_commands`` module registers one area's commands on it; :mod:`monitor.cli.main`
imports them all and is the console script's entry point. Command modules import the
stages they drive inside each command, so ``segmon --help`` loads no stage.
"""
