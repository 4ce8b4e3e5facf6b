"""Reading what a flow run left in the Prefect API (artifacts, states) in tests."""

from __future__ import annotations

from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    TaskRunFilter,
)
from prefect.client.schemas.objects import Artifact
from prefect.client.schemas.sorting import ArtifactSort


def flow_run_artifacts(flow_run_id: str) -> dict[str, Artifact]:
    """The artifacts of one flow run, by key.

    Every filter field is passed: prefect 3.8's clients send the omitted ones as null,
    which the server rejects (422).
    """
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(flow_run_id)])
            ),
            flow_run_filter=FlowRunFilter(),
            task_run_filter=TaskRunFilter(),
            sort=ArtifactSort.CREATED_DESC,
            limit=200,
            offset=0,
        )
    return {a.key: a for a in artifacts if a.key}
