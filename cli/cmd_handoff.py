"""`egis handoff`: the customer's one package for the fab (model + contract, labels, chips).

Checks the declared input contract on the customer's own data first (nominal accuracy under
the contract and under the obvious alternatives) and refuses, unless --force, a contract that
puts the data near chance or is clearly worse than an alternative. No image and no customer
data enters the package; per-chip accuracies only with --with-accuracies (an evaluation copy).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Optional

import typer

from egis.cli.options import layout_option, mean_option, pixel_range_option, std_option
from egis.toolkit.errors import DataError


def _contract_metadata(model_bytes: bytes, contract) -> bytes:
    """The model's bytes with its input contract in metadata_props (egis.layout, ...)."""
    import onnx

    from egis.toolkit.model import META_LAYOUT, META_MEAN, META_RANGE, META_STD

    proto = onnx.load_from_string(model_bytes)
    keys = {META_LAYOUT, META_RANGE, META_MEAN, META_STD}
    kept = [p for p in proto.metadata_props if p.key not in keys]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entries = {META_LAYOUT: contract.layout, META_RANGE: f"{contract.pixel_min:g},{contract.pixel_max:g}"}
    if contract.mean is not None:
        entries[META_MEAN] = ",".join(f"{v:.9g}" for v in contract.mean)
        entries[META_STD] = ",".join(f"{v:.9g}" for v in contract.std)
    for key, value in entries.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def _labels_csv(labels, with_accuracies: bool) -> bytes:
    handle = io.StringIO()
    writer = csv.writer(handle, lineterminator="\n")
    keep = with_accuracies and labels.accuracies is not None
    writer.writerow(["dut", "pass"] + (["accuracy"] if keep else []))
    for row, chip in enumerate(labels.ids):
        writer.writerow([chip, int(bool(labels.passed[row]))] + ([f"{labels.accuracies[row]:.6f}"] if keep else []))
    return handle.getvalue().encode()


def handoff(
    model: Path = typer.Argument(..., metavar="MODEL.onnx", help="The customer's ONNX classifier."),
    labels_path: Path = typer.Option(..., "--labels", help="Pass/fail labels (egis label) with their side file."),
    data: Path = typer.Option(..., "--data", help="The customer's labelled images, to check the contract "
                                                  "(never copied into the package)."),
    output: Path = typer.Option(..., "-o", "--output", help="Handoff folder to write."),
    chips: Optional[str] = typer.Option(None, "--chips", metavar="CHIPS",
                                        help="The chip set the labels refer to: the population spec of "
                                             "simulated chips (required for them); other chip sets are "
                                             "recorded from the labels' side file."),
    layout: Optional[str] = layout_option(), pixel_range: Optional[str] = pixel_range_option(),
    mean: Optional[str] = mean_option(), std: Optional[str] = std_option(),
    subdir: Optional[str] = typer.Option(None, help="Folder inside --data holding <class>/ (e.g. test)."),
    class_map: Optional[str] = typer.Option(None, help="Class order of --data: 'a,b,c' or a JSON file."),
    with_accuracies: bool = typer.Option(False, "--with-accuracies",
                                         help="Keep the labels' accuracy column (an evaluation copy)."),
    sign: Optional[Path] = typer.Option(None, "--sign", metavar="KEY", help="Sign the package (egis keys new)."),
    force: bool = typer.Option(False, "--force", help="Hand over even when the contract check fails."),
) -> None:
    """Write one verified package for the fab: model with its input contract, labels, chip set."""
    import dataclasses

    import egis.toolkit as toolkit
    from egis.toolkit.contract_check import check_contract
    from egis.toolkit.handoff import CHIPS_FILE, POPULATION_FILE, write_handoff
    from egis.toolkit.io import check_output_dir, sha256_bytes
    from egis.toolkit.labels import read_labels
    from egis.toolkit.model import load_model
    from egis.toolkit.population import PopulationSpec

    check_output_dir(output)
    if sign is not None:
        from egis.toolkit.signing import load_private_key

        load_private_key(sign)
    labels = read_labels(labels_path)
    loaded = load_model(model, layout=layout, pixel_range=pixel_range, mean=mean, std=std)
    meta = dict(labels.meta)
    if meta.get("model_sha256") and meta["model_sha256"] != loaded.sha256:
        raise DataError(f"{labels_path} labels chips of another model (sha256 {meta['model_sha256'][:12]}...)")
    spec = None
    if meta.get("population_sha256") or (chips and chips.endswith(".json")):
        if chips is None:
            raise DataError(f"{labels_path} labels simulated chips: give their population spec with --chips")
        spec = PopulationSpec.load(chips)
        if meta.get("population_sha256") and spec.sha256() != meta["population_sha256"]:
            raise DataError(f"{labels_path} labels another population than {chips}")
        if spec.model_sha256 != loaded.sha256:
            raise DataError(f"population {chips} was made for another model")
    elif not isinstance(meta.get("chip_identities"), dict):
        raise DataError(f"{labels_path}: its side file records no chip identities (label with egis label)")
    check = check_contract(loaded, data, class_map, subdir)
    problem = check.problem()
    if problem and not force:
        raise DataError(f"{problem}; --force hands it over anyway")
    if problem:
        typer.echo(f"warning: {problem} (handed over with --force)", err=True)
    model_bytes = _contract_metadata(model.read_bytes(), loaded.contract)
    new_sha = sha256_bytes(model_bytes)
    # the package's model must load with exactly the declared contract, and nothing else
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "m.onnx").write_bytes(model_bytes)
        if load_model(Path(tmp) / "m.onnx").contract != loaded.contract:
            raise DataError("internal: the contract written into the model does not read back the same")
    meta["model_sha256"] = new_sha
    if spec is not None:
        rebound = dataclasses.replace(spec, model_sha256=new_sha, model_path="model.onnx")
        meta["population_sha256"] = rebound.sha256()
        chips_name, chips_doc = POPULATION_FILE, rebound.to_dict()
    else:
        chips_name = CHIPS_FILE
        chips_doc = {"kind": "external", "chip_identities": meta["chip_identities"]}
    accuracies = with_accuracies and labels.accuracies is not None
    info = {"tool": {"name": "egis-toolkit", "version": toolkit.__version__},
            "model": {"original_sha256": loaded.sha256, "input_contract": loaded.contract.to_dict()},
            "contents": {"model.onnx": "the customer's model, input contract in metadata_props",
                         "labels.csv": "pass/fail of the labelled chips" + (" with accuracies" if accuracies else ""),
                         chips_name: "the chip set the labels refer to"},
            "not_included": ["images", "the customer's data"] + ([] if accuracies else ["per-chip accuracies"]),
            "accuracies_included": accuracies, "contract_check": check.to_dict(),
            "contract_check_forced": bool(problem)}
    write_handoff(output, model_bytes=model_bytes, labels_csv=_labels_csv(labels, with_accuracies),
                  labels_meta=meta, chips_name=chips_name, chips_doc=chips_doc, manifest_info=info,
                  sign_key=sign)
    typer.echo(f"{output}: model ({loaded.contract.layout}, pixels {loaded.contract.pixel_min:g}.."
               f"{loaded.contract.pixel_max:g}, mean {loaded.contract.mean}, std {loaded.contract.std}; "
               f"{100 * check.declared:.1f}% on your data), {len(labels.ids)} labelled chips"
               + ("; signed" if sign else ""))


def register(app: typer.Typer) -> None:
    app.command("handoff")(handoff)
