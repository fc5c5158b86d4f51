"""Annotation sampling: uncertainty and diversity scores, budgeted selection, formats."""

from __future__ import annotations
