"""`egis duts make|export`: create reproducible chip populations and standalone chip files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from egis.cli.options import layout_option, load_customer_model, mean_option, pixel_range_option, std_option

duts_app = typer.Typer(help="Simulated chips (DUTs): populations and standalone chip files.",
                       no_args_is_help=True)


@duts_app.command("make")
def make(
    model: Path = typer.Argument(..., help="Customer ONNX classifier."),
    output: Path = typer.Option(..., "-o", "--output", help="Population spec to write (JSON)."),
    plugin: str = typer.Option("generic", help="Variability plugin (see `egis duts plugins`)."),
    settings: list[str] = typer.Option([], "--set", help="Plugin parameter NAME=VALUE; repeatable."),
    count: int = typer.Option(1000, "--count", min=1, help="Number of chips."),
    seed: int = typer.Option(0, "--seed", min=0, help="Master seed: chip i uses rng([seed, i])."),
    format_version: Optional[int] = typer.Option(
        None, "--format-version",
        help="Population format (default: the newest). 3 draws band-limited correlated fields "
             "(covariance within 5e-4 of exp(-lam d); 6.5-8.5x faster at the seed's lam=0.001); "
             "2 draws them exactly."),
    layout: Optional[str] = layout_option(), pixel_range: Optional[str] = pixel_range_option(),
    mean: Optional[str] = mean_option(), std: Optional[str] = std_option(),
) -> None:
    """Write a population spec; chips are rebuilt from it on demand, never stored."""
    from egis.toolkit.io import check_output_file
    from egis.toolkit.model import load_model
    from egis.toolkit.population import FORMAT_VERSION, Population, PopulationSpec, check_format_version
    from egis.toolkit.registry import load_plugin, parse_settings

    check_output_file(output)
    version = check_format_version(FORMAT_VERSION if format_version is None else format_version,
                                   "--format-version: the population to make")
    loaded = load_customer_model(model, layout, pixel_range, mean, std)
    variability = load_plugin(plugin, parse_settings(settings))
    spec = PopulationSpec(model_sha256=loaded.sha256, plugin=plugin, params=variability.params,
                          seed=seed, count=count, model_path=str(model), format_version=version)
    # Build chip 0 once, so a plugin that cannot handle this model fails now, not later.
    Population(spec, loaded).chip_matrices(0)
    spec.save(output)
    cells = sum(layer.cells for layer in loaded.layers)
    typer.echo(f"{output}: {count} chips, plugin {plugin} {variability.params}, "
               f"{len(loaded.layers)} crossbar layers, {cells} cells, format {version}, "
               f"population sha256 {spec.sha256()[:12]}")


@duts_app.command("export")
def export(
    population: Path = typer.Argument(..., help="Population spec (JSON) from `egis duts make`."),
    index: int = typer.Argument(..., help="Chip index (0-based)."),
    output: Path = typer.Option(..., "-o", "--output", help="Chip ONNX file to write."),
    model: Optional[Path] = typer.Option(None, "--model", help="Model file (default: the path stored in the spec)."),
) -> None:
    """Write chip INDEX as a standalone ONNX model any onnxruntime user can run."""
    import onnx

    from egis.toolkit.io import atomic_path, check_output_file
    from egis.toolkit.population import open_population

    check_output_file(output)
    pop = open_population(population, model)
    pop.check_index(index)
    chip = pop.chip_model(index)
    with atomic_path(output) as tmp:
        onnx.save(chip, str(tmp))
    typer.echo(f"{output}: chip {index} of {population}")


@duts_app.command("plugins")
def list_plugins() -> None:
    """List installed variability plugins and their parameters (and why one cannot run)."""
    from egis.toolkit.registry import available_plugins, plugin_class

    for name in available_plugins():
        cls = plugin_class(name)
        reason = cls.unavailable_reason()
        typer.echo(name if not reason else f"{name} (unavailable: {reason})")
        for param, (default, doc) in cls.parameters().items():
            typer.echo(f"  {param} = {default!r}: {doc}")


def register(app: typer.Typer) -> None:
    app.add_typer(duts_app, name="duts")
