"""``homewatch admin broker init``: a new Mosquitto for this homewatch, written as files.

``app`` is mounted by ``homewatch admin`` (``homewatch.admin_cli``) as ``broker``. The work is
``gateway.broker_setup``'s; this module turns options into a plan, prints what was written and what to
do next, and says what is wrong in one line with exit code 2 (``homewatch.cli._fail``). Passwords are
never printed: they are in ``gateway.env`` (0600).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from homewatch.cli_common import fail as _fail

app = typer.Typer(
    help="The MQTT broker: a complete Mosquitto configuration with its accounts and TLS material.",
    no_args_is_help=True,
)


@app.callback()
def broker() -> None:
    """The MQTT broker: a complete Mosquitto configuration with its accounts and TLS material."""


@app.command("init")
def broker_init(
    out: Annotated[Path, typer.Option(help="Folder to write the broker's files into (made if missing).")],
    host: Annotated[
        list[str] | None,
        typer.Option(
            help="A host name or IP address the hubs reach the broker by; repeat for more. The first goes "
            "into each hub's hub.toml; all go into the server certificate. Default: this machine's name."
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="The hubs' listener.")] = 8883,
    tls: Annotated[
        bool, typer.Option(help="TLS on the hubs' listener (a CA and certificate are made).")
    ] = True,
    local_port: Annotated[
        int,
        typer.Option(help="A loopback listener for the gateway and administrator on this host; 0: none."),
    ] = 1883,
    bind: Annotated[
        str | None, typer.Option(help="The IP address the hubs' listener binds (default: every interface).")
    ] = None,
    admin: Annotated[str, typer.Option(help="The broker administrator's username.")] = "homewatch-admin",
    plugin: Annotated[
        Path | None, typer.Option(help="The dynamic-security plugin (default: found on this machine).")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Replace files that exist (and every account they held).")
    ] = False,
) -> None:
    """Write a new broker's files: mosquitto.conf, its accounts, TLS material and gateway.env."""
    from gateway.broker_setup import BrokerPlan, BrokerSetupError, default_host, find_plugin, write_broker

    plan = BrokerPlan(
        out_dir=out,
        hosts=tuple(host) if host else (default_host(),),
        port=port,
        tls=tls,
        local_port=local_port or None,
        bind=bind,
        admin_username=admin,
        plugin=plugin or find_plugin(),
    )
    try:
        files = write_broker(plan, force=force)
    except BrokerSetupError as exc:
        raise _fail(str(exc)) from None
    for path in files.paths:
        typer.echo(f"wrote {path}")
    if not plan.plugin.exists():
        typer.echo(f"note: {plan.plugin} is not on this machine; install mosquitto there or pass --plugin")
    folder = files.conf.parent
    typer.echo(f"next: chown -R mosquitto: {folder}; run: mosquitto -c {files.conf}")
    typer.echo(f"next: give the gateway {files.env} (systemd EnvironmentFile=) and delete the copy here")
    if files.ca_certificate is not None:
        typer.echo(
            f"next: keep {folder / 'ca.key'} off the broker (it only signs a new server certificate); "
            f"hubs get {files.ca_certificate}"
        )
