"""Command modules: each registers its typer commands on `replctl.cli.app` when imported.

Kept light at import time (no boto3, no cores): `replctl --help` imports all of them.
"""
