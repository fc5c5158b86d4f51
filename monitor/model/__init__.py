"""Segmentation models segmon runs: the built-in pure-torch model and adapters."""
