"""Model commands: train the built-in model, predict with any model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from monitor.cli.app import JsonFlag, app, app_state, emit, err, out, progress_bar
from monitor.cli.numbers import num


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", help="COCO instances JSON to train on.")],
    images: Annotated[Path, typer.Option("--images", help="Folder of the COCO file's images.")],
    weights: Annotated[
        Path, typer.Option("--out", help="Where to write the weights (*.safetensors).")
    ],
    steps: Annotated[int | None, typer.Option("--steps", help="Optimizer steps.")] = None,
    epochs: Annotated[
        float | None,
        typer.Option("--epochs", help="Passes over the data (instead of --steps)."),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per step.")] = 8,
    size: Annotated[
        int, typer.Option("--size", help="Model input side in pixels (multiple of 32).")
    ] = 256,
    width: Annotated[
        int, typer.Option("--width", help="Model size: channels of the first stage.")
    ] = 16,
    blocks: Annotated[int, typer.Option("--blocks", help="Residual blocks per stage.")] = 1,
    crop: Annotated[
        int | None,
        typer.Option("--crop", help="Train on random square crops of this side (faster on CPU)."),
    ] = None,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW).")] = 3e-3,
    augment: Annotated[
        list[str] | None,
        typer.Option(
            "--augment",
            help="Repeatable: flip, brightness, contrast, noise, blur, photometric (the "
            "four pixel ones), all.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seeds weights, batches, augmentation.")] = 0,
    init: Annotated[
        Path | None,
        typer.Option("--init", help="Start from these weights (*.safetensors) to fine-tune."),
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="cpu or cuda (default: cuda if available).")
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option("--threads", help="CPU threads for torch (1 is fastest on a busy machine)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train the built-in segmentation model on a COCO dataset; write safetensors weights."""
    from monitor.errors import ConfigError
    from monitor.model.checkpoint import load_checkpoint, save_checkpoint
    from monitor.model.data import load_coco
    from monitor.model.network import NetworkConfig
    from monitor.model.train import TrainOptions, parse_augmentations, train_network

    if weights.suffix != ".safetensors":
        raise ConfigError(f"--out must end in .safetensors, got {weights.name!r}")
    if steps is not None and epochs is not None:
        raise ConfigError("give --steps or --epochs, not both")
    if threads is not None:
        import torch

        torch.set_num_threads(max(1, threads))
    started = time.monotonic()
    initial = None
    if init is not None:  # fine-tuning keeps the architecture (and input size) of --init
        initial, _ = load_checkpoint(init)
        size = initial.config.input_size
    dataset = load_coco(data, images, size)
    if steps is None:
        steps = max(1, round((epochs if epochs is not None else 10.0) * len(dataset) / batch_size))
    chosen = parse_augmentations(augment or [])
    if initial is not None:
        config = initial.config
    else:
        config = NetworkConfig(
            categories=dataset.categories, width=width, input_size=size, blocks=blocks
        )
    options = TrainOptions(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        augment=chosen,
        device=device,
        crop=crop,
    )
    with progress_bar("train") as update:
        result = train_network(
            dataset, config, options, lambda done, _: update(done, steps), initial
        )
    training = {
        "data": data.name,
        "images": len(dataset),
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "crop": crop,
        "init": None if init is None else init.name,
        "seed": seed,
        "augment": sorted(a.value for a in chosen),
        "device": result.device,
        "final_loss": round(sum(result.losses[-20:]) / len(result.losses[-20:]), 4),
    }
    save_checkpoint(result.network, weights, training)
    payload = {
        "out": str(weights),
        **training,
        "first_loss": round(result.losses[0], 4),
        "seconds": round(time.monotonic() - started, 1),
    }
    emit(
        as_json,
        payload,
        lambda: out.print(
            f"wrote {weights} ({steps} steps, loss {num(payload['first_loss'])} -> "
            f"{num(training['final_loss'])}, {num(payload['seconds'])} s)"
        ),
    )


@app.command()
def predict(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="production (bundled), reference (models.reference as configured: file, "
            "plugin or bundled), or a .safetensors/.pt/.onnx file.",
        ),
    ],
    images: Annotated[
        Path, typer.Option("--images", help="Image folder, or a COCO JSON naming the images.")
    ],
    results: Annotated[Path, typer.Option("--out", help="COCO results JSON to write.")],
    image_root: Annotated[
        Path | None,
        typer.Option("--image-root", help="Folder a COCO file's file_names are relative to."),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per batch.")] = 16,
    device: Annotated[
        str | None, typer.Option("--device", help="cpu or cuda (default: cuda if available).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Predict instances with a model; write COCO results (and, for a folder, image ids).

    Batches run on the configured executor (README: Scaling out).
    """
    from monitor.jobs.executor import opened
    from monitor.model.loading import load_named, named_recipe
    from monitor.model.predict import list_images, predict_to_coco

    settings = app_state(ctx).settings
    categories = [c.name for c in settings.categories]
    loaded = load_named(model, settings.models, categories, device=device, batch_size=batch_size)
    entries = list_images(images, image_root)
    sidecar = results.with_name(results.stem + ".images.json") if images.is_dir() else None
    with opened(settings.executor) as running, progress_bar("predict") as update:
        recipe = (
            named_recipe(model, settings.models, categories, device=device, batch_size=batch_size)
            if running.remote
            else None
        )
        summary = predict_to_coco(
            loaded, entries, results, batch_size, update, sidecar, executor=running, recipe=recipe
        )
    payload = {
        "out": str(summary.results),
        "images_file": None if summary.images_file is None else str(summary.images_file),
        "images": summary.n_images,
        "instances": summary.n_instances,
        "model": summary.model,
        "categories": list(loaded.categories),
        "ignored": dict(sorted(summary.ignored.items())),  # counted where batches ran
    }
    if not entries:
        err.print(Text("warning:", style="yellow"), f"no images in {images}")
    emit(
        as_json,
        payload,
        lambda: out.print(
            f"{summary.model}: {summary.n_instances} instances in {summary.n_images} images "
            f"-> {summary.results}"
        ),
    )
