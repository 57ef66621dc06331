"""`egis keys new`: an Ed25519 key pair for signing bundles and handoff packages."""

from __future__ import annotations

from pathlib import Path

import typer

keys_app = typer.Typer(help="Signing keys for bundles and handoffs (Ed25519).", no_args_is_help=True)


@keys_app.command("new")
def new(output: Path = typer.Option(..., "-o", "--output", help="Folder for egis.key (private, mode 600) "
                                                                   "and egis.pub.pem (give this to testers)."),
        ) -> None:
    """Write a new key pair; an existing key is never overwritten."""
    from egis.toolkit.io import check_output_dir
    from egis.toolkit.signing import fingerprint, load_public_key, new_keys

    check_output_dir(output)
    private, public = new_keys(output)
    typer.echo(f"{private} (private, keep it on the signing machine) and {public} "
               f"(fingerprint {fingerprint(load_public_key(public))[:16]}...)")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
