"""Gradio apps of the Movability Workbench.

Apps only wire widgets to :mod:`workbench` functions; they hold no method logic of their own.
Start the workbench with ``python -m workbench app`` (or ``make demo``); see
:mod:`apps.workbench_app`, and :mod:`apps.tabs` for how to add a tab.
"""
