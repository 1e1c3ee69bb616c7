"""``python -m ssgan_cli`` runs the ``ssgan`` command."""

from ssgan_cli.main import app

app()
