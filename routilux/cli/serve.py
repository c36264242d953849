"""``routilux serve``: the HTTP API and the web monitor over a store (and flows).

Without ``--flows`` the server shows what the store holds (jobs, their records);
with them it also hosts those flows: their unfinished jobs are recovered and
continue, and jobs can be submitted, cancelled, paused and resumed from the page.
SIGTERM or Ctrl-C stops intake, checkpoints and exits 0.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from routilux.cli.loading import load_flow
from routilux.service import Runtime

DEFAULT_STORE = os.path.join(".routilux", "routilux.sqlite3")


@click.command()
@click.option(
    "--store",
    default=DEFAULT_STORE,
    show_default=True,
    help="Checkpoint store (SQLite file or directory) whose jobs are shown.",
)
@click.option(
    "--flows",
    "targets",
    multiple=True,
    metavar="FILE.py:NAME|module:NAME",
    help="A flow to host (repeat for several); its unfinished jobs continue.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8470, show_default=True, type=int, help="Port (0: any free port).")
@click.option(
    "--token",
    envvar="ROUTILUX_TOKEN",
    help="Require 'Authorization: Bearer TOKEN' on the API (needed beyond loopback); "
    "default: $ROUTILUX_TOKEN.",
)
def serve(store: str, targets: tuple[str, ...], host: str, port: int, token: str | None) -> None:
    """Serve the HTTP API and the live web monitor (needs routilux[web])."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not targets and not Path(store).exists():
        raise click.ClickException(
            f"no checkpoint store at {store}: name one with --store, or host flows with --flows"
        )
    flows = [load_flow(target) for target in targets]
    runtime = Runtime(store)
    try:
        for flow in flows:
            recovered = runtime.add_flow(flow)
            if recovered:
                click.echo(f"flow {flow.flow_id!r}: {len(recovered)} job(s) recovered")
        url = runtime.serve_http(host, port, token=token)
    except BaseException:
        runtime.shutdown()
        raise
    click.echo(f"routilux monitor at {url}" + (" (the API needs the token)" if token else ""))
    click.echo("Ctrl-C or SIGTERM stops it (unfinished jobs are checkpointed).")
    runtime.serve_forever()
