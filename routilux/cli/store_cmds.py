"""Commands that look into a checkpoint store: ``jobs`` and ``inspect``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from routilux.checkpoint.format import MAGIC, read_header
from routilux.checkpoint.stores import DEFAULT_STORE as STORE_PATH
from routilux.checkpoint.stores import DirectoryStore, SQLiteStore
from routilux.cli.common import fail, open_store

DEFAULT_STORE = str(STORE_PATH)  # as click shows it


@click.command()
@click.option("--store", default=DEFAULT_STORE, show_default=True)
@click.option(
    "--status",
    type=click.Choice(["pending", "running", "paused", "completed", "failed", "cancelled"]),
)
def jobs(store: str, status: str | None) -> None:
    """List the jobs recorded in a checkpoint store."""
    rows = open_store(store, read_only=True).list_jobs(status=status)
    if not rows:
        click.echo("no jobs")
        return
    for row in rows:
        when = datetime.fromtimestamp(row["updated_at"]).strftime("%Y-%m-%d %H:%M:%S")
        error = f"  {row['error']}" if row.get("error") else ""
        click.echo(f"{row['job_id']}  {row['status']:9s}  {row['flow_id']}  {when}{error}")


@click.command()
@click.argument("path")
def inspect(path: str) -> None:
    """Verify and describe a checkpoint store or a checkpoint file (nothing is unpickled)."""
    target = Path(path)
    if not target.exists():
        fail(f"no such file or directory: {path}")
    if target.is_file() and target.read_bytes()[: len(MAGIC)] == MAGIC:
        store = DirectoryStore(target.parent.parent, create=False)  # <store>/<flow>/<n>.ckpt
        header, payload = read_header(target.read_bytes(), store.key, str(target))
        print_header(str(target), header, len(payload))
        return
    if target.is_dir():
        store = DirectoryStore(target, create=False)
    else:
        store = SQLiteStore(target, create=False)
    click.echo(f"store {store.location} ({type(store).__name__})")
    flows = store.list_flows()
    if not flows:
        click.echo("  no checkpoints")
    for info in flows:
        blob = store.load_latest(info["flow_id"])
        where = f"{store.location} flow {info['flow_id']!r}"
        header, payload = read_header(blob, store.key, where)
        print_header(f"flow {header['flow_id']!r}", header, len(payload), kept=info["checkpoints"])
        finished = store.load_finished(info["flow_id"])
        if finished:
            click.echo(f"  finished jobs kept: {len(finished)}, each verified")
        for record in finished:
            job_header, _ = read_header(record, store.key, f"{where} finished job")
            print_jobs(job_header)


def print_header(what: str, header: dict[str, Any], size: int, kept: int | None = None) -> None:
    """One verified checkpoint's header: format, version, time, size, then its jobs."""
    when = datetime.fromtimestamp(header["created_at"]).strftime("%Y-%m-%d %H:%M:%S")
    extra = f", {kept} kept" if kept is not None else ""
    click.echo(
        f"{what}: integrity OK; format {header['format_version']}, routilux "
        f"{header['routilux_version']}, written {when}, {size} bytes{extra}"
    )
    print_jobs(header)


def print_jobs(header: dict[str, Any]) -> None:
    """The jobs a verified header lists, one line each."""
    for job in header.get("jobs", []):
        error = f"  {job['error']}" if job.get("error") else ""
        click.echo(f"  job {job['job_id']}  {job['status']}{error}")
