"""The Prefect event a trained model emits, for downstream deployments (benchmarking a new model)
to trigger on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from globmed_data.export.events import dataset_resource_id

if TYPE_CHECKING:
    from globmed_data.train.run import TrainPlan

TRAINED = "globmed.model.trained"


def emit_trained(plan: TrainPlan, record: dict[str, Any]) -> Any:
    """Emit `globmed.model.trained` (resource: the model; related: the dataset version); returns
    the event, or None when no Prefect API is configured to receive it."""
    from prefect.events import emit_event

    v = plan.version
    return emit_event(
        event=TRAINED,
        resource={
            "prefect.resource.id": f"globmed.model.{plan.model_id}",
            "prefect.resource.name": plan.model_id,
            "globmed.dataset": v.repo_id,
            "globmed.version": v.version,
        },
        related=[
            {"prefect.resource.id": dataset_resource_id(v.repo_id), "prefect.resource.role": "dataset"},
            {
                "prefect.resource.id": f"globmed.dataset-version.{v.repo_id}@v{v.version}",
                "prefect.resource.role": "dataset-version",
            },
        ],
        payload={
            "model_id": plan.model_id,
            "model_spec": record["model_spec"],
            "base_model": plan.base,
            "repo_id": v.repo_id,
            "version": v.version,
            "fingerprint": v.fingerprint,
            "recipe_hash": plan.recipe.digest(),
            "final_loss": record.get("final_loss"),
        },
    )
