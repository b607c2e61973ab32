"""The operator's command-line tool: `python -m ops ...` from a checkout, never published with the app.

It reads and acts through the same workflows (`shared.workflows`) and the same composition root
(`shared.app_context.services`) as the functions do, so there is no second code path to drift: it only
parses arguments, calls a workflow and prints the answer (tables and progress bars, or `--json`).
"""
