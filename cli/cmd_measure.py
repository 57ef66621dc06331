"""`egis measure`: run the synthetic images through every chip of a chip set and keep the
responses (D x N x M float32 + provenance), resumable chip by chip.

The production route for chips the toolkit did not simulate (physical chips behind a tester
adapter, vendor behavioural models as ONNX files): `egis compact` then trains on these
measured responses. Populations can be measured too; compact simulates them directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from egis.cli.options import layout_option, load_customer_model, mean_option, pixel_range_option, std_option


def measure_command(
    model: Path = typer.Argument(..., metavar="MODEL.onnx", help="Customer ONNX classifier."),
    chips: str = typer.Argument(..., metavar="CHIPS",
                                help="Chip set: population spec, folder/glob/list of chip ONNX files, or "
                                     "adapter:NAME:TARGET."),
    sid_dir: Path = typer.Argument(..., metavar="SID_DIR", help="Synthetic images (egis synthesize)."),
    output: Path = typer.Option(..., "-o", "--output", help="Responses folder (responses.npy + responses.json)."),
    chip_range: Optional[str] = typer.Option(None, "--chips", help="Chips of CHIPS: START:STOP or N; default all."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0.001,
                                            help="Seconds a chip may take to answer all images; then it is excluded."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="onnxruntime threads."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    layout: Optional[str] = layout_option(), pixel_range: Optional[str] = pixel_range_option(),
    mean: Optional[str] = mean_option(), std: Optional[str] = std_option(),
) -> None:
    """Measure every chip's logits on the SID images; resume an interrupted run by running it again."""
    from egis.synthesis.sid import read_sid_images
    from egis.toolkit.chipset import open_chip_set
    from egis.toolkit.io import check_output_dir
    from egis.toolkit.measure import measure
    from egis.toolkit.signatures import images_sha256

    check_output_dir(output)
    loaded = load_customer_model(model, layout, pixel_range, mean, std)
    chip_set = open_chip_set(chips, model, model=loaded, chips=chip_range, threads=threads)
    pixels = read_sid_images(sid_dir, loaded.sha256)
    result = measure(chip_set, pixels, output, images_sha256=images_sha256(pixels), timeout=timeout,
                     progress=not quiet,
                     on_excluded=lambda cid, why: typer.echo(f"warning: chip {cid} excluded: {why}", err=True))
    ok = len(result.ok_ids)
    typer.echo(f"{output}: {ok} of {len(result.chip_ids)} chips x {len(pixels)} images"
               + (f"; {len(result.chip_ids) - ok} excluded (see responses.json)" if ok < len(result.chip_ids) else ""))


def register(app: typer.Typer) -> None:
    app.command("measure")(measure_command)
